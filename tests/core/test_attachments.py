"""Attachment extraction: every kind by content, facts found in the text, hostile files refused with reasons."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

import numpy as np
import pytest

from holocrm_core.attachments import AttachmentReader, Context, Limits, Refused, detect_kind, extract_data
from holocrm_core.synth.attachment_files import (
    AUDIO_KINDS,
    FACT_KINDS,
    OCR_KINDS,
    draw_facts,
    fact_attachment,
    hostile_corpus,
    multipage_pdf,
)

BASE = {
    "company": "Acme Corp",
    "person": "Robert Smith",
    "product": "Data Platform",
    "rep": "Jane Doe",
    "currency": "EUR",
}
EXPECTED_KIND = {"pdf_scan": "pdf"}
TEXT_KINDS = [k for k in FACT_KINDS if k not in OCR_KINDS | AUDIO_KINDS]


def _made(kind: str, seed: int = 0):
    facts = draw_facts(np.random.default_rng(seed), kind, BASE, set())
    made = fact_attachment(facts, 1)
    if made is None:
        pytest.skip(f"{kind}: the tool that makes it is not installed")
    return facts, made


def _facts_in(text: str, facts) -> dict[str, bool]:
    return {
        "price": facts.price_text in text,
        "date": facts.date_text in text,
        "competitor": facts.competitor in text,
        "decision_maker": facts.decision_maker in text,
    }


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_every_text_kind_is_detected_by_content_and_carries_its_four_facts(kind):
    facts, (name, data) = _made(kind)
    # a wrong extension must not matter: detection reads the bytes
    assert detect_kind(data, "renamed.bin") == EXPECTED_KIND.get(kind, kind)
    extracted = extract_data(data, name)
    assert extracted.kind == EXPECTED_KIND.get(kind, kind)
    assert _facts_in(extracted.text, facts) == dict.fromkeys(
        ["price", "date", "competitor", "decision_maker"], True
    )
    assert all(s.locator and s.text.strip() for s in extracted.sections)


def test_structure_names_pages_slides_notes_sheets_and_members():
    locators = {}
    for kind in ["pdf", "pptx", "xlsx", "eml", "zip", "msg"]:
        _, (name, data) = _made(kind)
        locators[kind] = [s.locator for s in extract_data(data, name).sections]
    assert locators["pdf"] == ["page 1", "page 2"]
    assert "slide 3 notes" in locators["pptx"] and "slide 2" in locators["pptx"]
    assert locators["xlsx"] == ["sheet Price sheet", "sheet Terms"]
    assert "message / quote.csv / rows 1-2" in locators["eml"]  # attachment of the forwarded e-mail
    assert any(
        loc.startswith("terms/landscape.docx / ") for loc in locators["zip"]
    )  # document in the archive
    assert locators["msg"] == ["message", "message / terms.txt / text"]


def test_the_fact_on_a_later_page_is_located_on_that_page():
    facts, (name, data) = _made("pdf")
    pages = {s.locator: s.text for s in extract_data(data, name).sections}
    assert facts.competitor in pages["page 2"] and facts.competitor not in pages["page 1"]


def test_html_scripts_are_dropped_and_macros_reported_never_run():
    _, (name, data) = _made("html")
    assert "tracking" not in extract_data(data, name).text
    _, (docx_name, docx) = _made("docx")
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(docx)) as source, zipfile.ZipFile(buffer, "w") as target:
        for item in source.infolist():
            target.writestr(item, source.read(item))
        target.writestr("word/vbaProject.bin", b'\x00Attribute VB_Name = "AutoOpen"')
    extracted = extract_data(buffer.getvalue(), "macro.docm")
    assert any("macros" in w for w in extracted.warnings)


def test_detection_by_content_for_text_kinds():
    assert detect_kind(b'{"a": 1}', "x.txt") == "json"
    assert detect_kind(b"name,price\nA,1\nB,2\n", "x.txt") == "csv"
    assert detect_kind(b"From: a@b.c\nTo: d@e.f\nSubject: hi\n\nbody", "x.txt") == "eml"
    assert detect_kind(b"<html><body><p>hi</p></body></html>", "x.txt") == "html"
    assert detect_kind(b"# Title\n\n- one\n- two\n", "notes.txt") == "md"
    assert detect_kind(b"\x7fELF\x02\x01", "invoice.pdf") == "executable"


def test_a_member_that_fails_is_a_problem_of_its_archive_and_the_rest_is_read():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("good.txt", "Total price: 4,321 EUR")
        archive.writestr("broken.docx", b"PK\x03\x04garbage")
    extracted = extract_data(buffer.getvalue(), "deal.zip")
    assert "4,321 EUR" in extracted.text
    assert [(p.locator, p.rule) for p in extracted.problems] == [("broken.docx", "corrupt")]


def test_an_archive_that_contains_itself_is_refused_as_a_loop():
    data = b"PK\x05\x06" + b"\x00" * 18
    ctx = Context(Limits()).child(data, "outer.zip")
    with pytest.raises(Refused) as refused:
        ctx.child(data, "outer.zip / again.zip")
    assert refused.value.rule == "loop"


def test_hostile_corpus_is_quarantined_with_reasons_and_memory_stays_bounded(tmp_path):
    expected = hostile_corpus(tmp_path)
    with AttachmentReader(Limits(timeout_s=30)) as reader:
        outcomes = {name: reader.read(tmp_path / name) for name in expected}
        peak = reader.peak_rss_bytes
    got = {name: outcome.rule for name, outcome in outcomes.items()}
    assert got == expected
    assert all(o.reason for o in outcomes.values() if not o.ok)
    assert "2,048.0 MB" in outcomes["sparse_2gb.wav"].reason  # refused from stat(), nothing read
    assert "password" in outcomes["encrypted_proposal.pdf"].reason
    assert outcomes["contract_really_a_pdf.docx"].extracted.kind == "pdf"
    assert 0 < peak < 1024 * 2**20


def test_a_file_past_the_time_limit_is_killed_and_the_next_file_still_read(tmp_path):
    slow = tmp_path / "many_pages.pdf"
    slow.write_bytes(multipage_pdf([[f"line {i} of page {p}" for i in range(40)] for p in range(1900)]))
    fine = tmp_path / "note.txt"
    fine.write_text("Total price: 777 EUR")
    with AttachmentReader(Limits(timeout_s=1.0)) as reader:
        first = reader.read(slow)
        second = reader.read(fine)
        restarts = reader.restarts
    assert first.rule == "timeout" and "1 s" in first.reason
    assert second.ok and "777 EUR" in second.extracted.text
    assert restarts == 1


def test_no_network_inside_the_reader_worker():
    import socket

    from holocrm_core.attachments.extract import _no_network

    original = socket.socket, socket.create_connection, socket.getaddrinfo
    try:
        _no_network()
        with pytest.raises(OSError, match="network access is disabled"):
            socket.create_connection(("example.com", 80))
    finally:
        socket.socket, socket.create_connection, socket.getaddrinfo = original


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        pytest.skip(f"{tool} is not installed (Debian: see README 'Attachments' for apt-get install)")
    return path


@pytest.mark.parametrize("kind", sorted(OCR_KINDS))
def test_ocr_kinds_read_their_facts(kind):
    _need("tesseract")  # rapidocr (the fallback) runs words together; see media.py
    facts, (name, data) = _made(kind)
    found = _facts_in(extract_data(data, name).text, facts)
    assert sum(found.values()) >= 3, found


@pytest.mark.slow
def test_rapidocr_fallback_reads_a_business_card_offline(monkeypatch):
    monkeypatch.setenv("HOLOCRM_OCR", "rapidocr")
    facts, (name, data) = _made("png")
    text = extract_data(data, name).text.replace(" ", "")
    assert facts.competitor.split()[0] in text and facts.price_text.split()[0] in text


@pytest.mark.slow
def test_a_shipped_call_recording_is_transcribed_offline():
    import wave

    from holocrm_core.synth.attachment_files import _shipped_recording

    name, data, facts = _shipped_recording(1)
    with wave.open(io.BytesIO(data)) as source:  # the first two sentences keep the test short
        params, frames = source.getparams(), source.readframes(source.getframerate() * 8)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as target:
        target.setparams(params)
        target.writeframes(frames)
    extracted = extract_data(buffer.getvalue(), name)
    assert extracted.kind == "wav" and 7 < extracted.metadata["seconds"] <= 8
    # Whisper writes numbers as digits, pocketsphinx (the fallback) in words
    assert "47,000" in extracted.text or "forty seven thousand dollars" in extracted.text
    assert "competitor" in extracted.text.lower()
    if extracted.metadata["asr"] == "whisper":
        assert "Oracle" in extracted.text  # the name pocketsphinx loses


# ---------------------------------------------------------------- files made by other tools (skip if absent)


def test_png_jpeg_tiff_rendered_by_imagemagick_are_read(tmp_path):
    convert = shutil.which("magick") or shutil.which("convert-im6.q16") or _need("convert")
    _need("tesseract")
    for extension in ["png", "jpg", "tif"]:
        target = tmp_path / f"card.{extension}"
        done = subprocess.run(
            [
                convert,
                "-size",
                "900x120",
                "xc:white",
                "-fill",
                "black",
                "-pointsize",
                "40",
                "-annotate",
                "+20+70",
                "Quote 58,120 EUR Valtrix",
                str(target),
            ],
            capture_output=True,
            timeout=60,
        )
        if done.returncode != 0:
            pytest.skip(f"ImageMagick could not render text here: {done.stderr.decode()[:200]}")
        extracted = extract_data(target.read_bytes(), target.name)
        assert "58,120" in extracted.text and "Valtrix" in extracted.text


def test_a_pdf_made_by_tesseract_and_a_page_rendered_by_pdftoppm(tmp_path):
    _need("tesseract")
    pdftoppm = _need("pdftoppm")
    facts, (name, data) = _made("png")
    (tmp_path / name).write_bytes(data)
    subprocess.run(
        ["tesseract", str(tmp_path / name), str(tmp_path / "searchable"), "pdf"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    pdf = (tmp_path / "searchable.pdf").read_bytes()
    assert facts.competitor in extract_data(pdf, "searchable.pdf").text  # its text layer, not OCR
    subprocess.run(
        [
            pdftoppm,
            "-png",
            "-r",
            "100",
            "-singlefile",
            str(tmp_path / "searchable.pdf"),
            str(tmp_path / "page"),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert facts.decision_maker in extract_data((tmp_path / "page.png").read_bytes(), "page.png").text


def test_a_call_spoken_by_espeak_ng_is_transcribed(tmp_path):
    espeak = _need("espeak-ng")
    target = tmp_path / "call.wav"
    subprocess.run(
        [
            espeak,
            "-v",
            "en-us+f2",
            "-s",
            "125",
            "-w",
            str(target),
            "The price we agreed is fifty thousand dollars.",
        ],
        check=True,
        timeout=60,
    )
    text = extract_data(target.read_bytes(), target.name).text
    assert "50,000" in text or "thousand dollars" in text


def test_spreadsheets_and_text_made_by_other_libraries(tmp_path):
    import polars as pl
    import xlsxwriter

    book_path = tmp_path / "made_by_xlsxwriter.xlsx"
    book = xlsxwriter.Workbook(str(book_path))
    sheet = book.add_worksheet("Quote")
    sheet.write_row(0, 0, ["item", "total price"])
    sheet.write_row(1, 0, ["licences", "91,350 EUR"])
    book.close()
    assert "total price: 91,350 EUR" in extract_data(book_path.read_bytes(), book_path.name).text
    frame = pl.DataFrame({"competitor": ["Quorvane Labs"], "price": [41250]})
    assert "competitor: Quorvane Labs" in extract_data(frame.write_csv().encode(), "x.csv").text
    assert "Quorvane Labs" in extract_data(frame.write_json().encode(), "x.json").text


@pytest.mark.parametrize(
    "source_kind,target",
    [("docx", "odt"), ("docx", "rtf"), ("xlsx", "xls"), ("xlsx", "ods"), ("pptx", "pdf")],
)
def test_documents_converted_by_libreoffice(tmp_path, source_kind, target):
    office = shutil.which("soffice") or shutil.which("libreoffice")
    if not office:
        pytest.skip(
            "LibreOffice is not installed (apt-get install libreoffice-core-nogui "
            "libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui)"
        )
    facts, (name, data) = _made(source_kind)
    (tmp_path / name).write_bytes(data)
    subprocess.run(
        [office, "--headless", "--convert-to", target, "--outdir", str(tmp_path), str(tmp_path / name)],
        check=True,
        capture_output=True,
        timeout=180,
    )
    converted = tmp_path / (name.rsplit(".", 1)[0] + "." + target)
    assert facts.price_text in extract_data(converted.read_bytes(), converted.name).text  # notes do not print
