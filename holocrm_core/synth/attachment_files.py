"""Small real attachment files for the sample export: proposals (PDF, Markdown), quotes (CSV), meeting notes (TXT).

The PDF writer produces a minimal but valid PDF 1.4 (catalog, one page, Helvetica text, correct xref
offsets), so extractors exercise a real parser rather than a stub.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tempfile
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from holocrm_core.attachments.detect import MEDIA_TYPES as DETECTED_MEDIA_TYPES
from holocrm_core.synth.outlook_msg import outlook_msg

MEDIA_TYPES = {"pdf": "application/pdf", "md": "text/markdown", "csv": "text/csv", "txt": "text/plain"}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def minimal_pdf(lines: list[str]) -> bytes:
    """A one-page PDF showing ``lines`` (ASCII; other characters are transliterated or dropped)."""

    def escape(line: str) -> str:
        return _ascii(line).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    text = ["BT", "/F1 11 Tf", "14 TL", "50 770 Td"]
    for line in lines:
        text.append(f"({escape(line)}) Tj T*")
    text.append("ET")
    stream = "\n".join(text).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode()
    out += b"0000000000 65535 f \n"
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def attachment_content(
    kind: str,
    number: int,
    company: str,
    person: str,
    product: str,
    value: str,
    currency: str,
    rep: str,
    day: str,
) -> tuple[str, bytes]:
    """(file name, bytes) of one attachment of ``kind`` (pdf, md, csv, txt) about a company and product."""
    slug = "".join(ch for ch in _ascii(company).lower().replace(" ", "_") if ch.isalnum() or ch == "_")[:32]
    slug = slug or "client"
    if kind == "pdf":
        lines = [
            f"Proposal: {product} for {company}",
            "",
            f"Prepared for: {person}",
            f"Prepared by: {rep}",
            f"Investment: {value} {currency} per year",
            "Scope: licences, onboarding, premium support.",
            f"Proposed start: {day}.",
            "Valid for 30 days.",
        ]
        return f"proposal_{slug}_{number:04d}.pdf", minimal_pdf(lines)
    if kind == "md":
        text = (
            f"# {product} proposal for {company}\n\n"
            f"Prepared for **{person}** by {rep}.\n\n"
            f"## Summary\n\n- Annual investment: {value} {currency}\n- Rollout: phased, starting {day}\n"
            f"- Success criteria: adoption by the sales team, weekly pipeline reporting\n\n"
            f"## Next steps\n\n1. Review with finance\n2. Security questionnaire\n3. Signature\n"
        )
        return f"summary_{slug}_{number:04d}.md", text.encode("utf-8")
    if kind == "csv":
        text = (
            "item,quantity,unit_price,currency\n"
            f"{product} licence,25,{value},{currency}\n"
            f"Onboarding services,1,2500.00,{currency}\n"
            f"Premium support,1,1200.00,{currency}\n"
        )
        return f"quote_{slug}_{number:04d}.csv", text.encode("utf-8")
    text = (
        f"Meeting notes - {company}\n"
        f"Attendees: {person}, {rep}\n"
        f"Topic: {product} evaluation\n"
        f"- Walked through current process and reporting gaps\n"
        f"- Discussed timeline; follow-up {day}\n"
    )
    return f"meeting_notes_{slug}_{number:04d}.txt", text.encode("utf-8")


# ---------------------------------------------------------------------------------------------------------
# Fact-bearing attachments of every kind (issue 16): each carries a price, a date, a competitor and a
# decision maker that appear nowhere else in the export; the hidden truth lists them with a query.
# ---------------------------------------------------------------------------------------------------------

FACT_KINDS = [
    "pdf",
    "pdf_scan",
    "docx",
    "pptx",
    "xlsx",
    "xls",
    "ods",
    "csv",
    "html",
    "eml",
    "msg",
    "rtf",
    "txt",
    "md",
    "json",
    "zip",
    "png",
    "jpeg",
    "tiff",
    "wav",
]
OCR_KINDS = {"pdf_scan", "png", "jpeg", "tiff"}
AUDIO_KINDS = {"wav"}
# the media type each generated kind is written as: the extractors' own table (a scan is a PDF)
FACT_MEDIA_TYPES = {**DETECTED_MEDIA_TYPES, "pdf_scan": DETECTED_MEDIA_TYPES["pdf"]}
# Names kept apart from the contact vocabulary so a decision maker or competitor is only in the attachment.
_FACT_FIRST = [
    "Ingrid",
    "Tobias",
    "Priya",
    "Mateo",
    "Yuki",
    "Soren",
    "Amara",
    "Dmitri",
    "Leonie",
    "Kwame",
    "Anouk",
    "Rafael",
    "Freya",
    "Idris",
    "Marisol",
    "Henrik",
    "Zara",
    "Ottilie",
    "Cyrus",
    "Elodie",
]
_FACT_LAST = [
    "Okonkwo",
    "Lindqvist",
    "Ramaswamy",
    "Castellanos",
    "Takahashi",
    "Brennan",
    "Achterberg",
    "Volkova",
    "Delacroix",
    "Mensah",
    "Haverkamp",
    "Quintero",
    "Sorensen",
    "Abernathy",
    "Ferreira",
    "Nakamura",
    "Whitlock",
    "Oyelaran",
    "Balogun",
    "Marchetti",
]
_COMPETITOR_HEAD = [
    "Valtrix",
    "Quorvane",
    "Brightwave",
    "Zentara",
    "Corvium",
    "Lumenor",
    "Trellix",
    "Nimbara",
    "Orbisys",
    "Pellucid",
    "Stratova",
    "Kinetra",
    "Veridian",
    "Axioma",
    "Solvanta",
    "Helixa",
    "Morvanta",
    "Qualtreon",
    "Ferrovia",
    "Dynexa",
    "Caldora",
    "Syntrell",
    "Obrevo",
    "Pyxella",
    "Tessarion",
    "Umbrell",
    "Xenocore",
    "Yarrowby",
    "Glintrix",
    "Ravelle",
    "Opsidian",
    "Cindrax",
]
_COMPETITOR_TAIL = ["Systems", "Analytics", "Cloud", "Software", "Labs", "Networks", "Dynamics", "Data"]
# Speech and OCR facts use words the offline recogniser knows (its dictionary has no "Quorvane").
_SPOKEN_COMPETITOR = [
    "Oracle",
    "Summit",
    "Pioneer",
    "Falcon",
    "Atlas",
    "Beacon",
    "Harbor",
    "Liberty",
    "Phoenix",
    "Mercury",
    "Orchard",
    "Granite",
]
_SPOKEN_FIRST = ["Peter", "Linda", "Frank", "Nancy", "George", "Helen", "Walter", "Carol", "Harold", "Julia"]
_SPOKEN_LAST = [
    "Walsh",
    "Carter",
    "Hughes",
    "Morgan",
    "Fisher",
    "Porter",
    "Bishop",
    "Warren",
    "Hayes",
    "Fleming",
]
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINALS = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"}


def _words(n: int) -> str:
    if n < 20:
        return _NUMBER_WORDS[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _NUMBER_WORDS[n % 10])
    if n < 1000:
        return _NUMBER_WORDS[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + _words(n % 100))
    return _words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + _words(n % 1000))


def _ordinal(n: int) -> str:
    if n in _ORDINALS:
        return _ORDINALS[n]
    if n < 20:
        return _NUMBER_WORDS[n] + "th"
    if n % 10 == 0:
        return _TENS[n // 10][:-1] + "ieth"
    return _TENS[n // 10] + " " + _ordinal(n % 10)


@dataclass
class AttachmentFacts:
    """The facts one attachment carries (and nothing else in the export does)."""

    kind: str
    company: str
    person: str
    product: str
    rep: str
    price: int
    currency: str
    month: int
    day: int
    year: int
    competitor: str
    decision_maker: str
    decision_title: str

    @property
    def price_text(self) -> str:
        return f"{self.price:,} {self.currency}"

    @property
    def date_text(self) -> str:
        return f"{self.day} {_MONTHS[self.month - 1]} {self.year}"

    def spoken(self) -> list[str]:
        """The facts as a caller would say them (numbers in words)."""
        return [
            f"The price we agreed is {_words(self.price)} dollars.",
            f"Our main competitor here is {self.competitor}.",
            f"The decision maker is {self.decision_maker}.",
            f"We start on the {_ordinal(self.day)} of {_MONTHS[self.month - 1]} {_words(self.year)}.",
        ]

    def queries(self) -> dict[str, str]:
        return {
            "price": f"price of {self.price_text}" if self.kind != "wav" else f"{_words(self.price)} dollars",
            "date": f"start date {self.date_text}",
            "competitor": f"competitor {self.competitor}",
            "decision_maker": f"decision maker {self.decision_maker}",
        }


def draw_facts(rng, kind: str, base: dict[str, str], used: set) -> AttachmentFacts:
    """One fact set for ``kind`` whose price, date, competitor and decision maker are not in ``used`` (which
    it extends), so that each fact points at exactly one attachment (rng: numpy Generator)."""
    spoken = kind in AUDIO_KINDS
    heads, tails = (_SPOKEN_COMPETITOR, [""]) if spoken else (_COMPETITOR_HEAD, _COMPETITOR_TAIL)
    firsts, lasts = (_SPOKEN_FIRST, _SPOKEN_LAST) if spoken else (_FACT_FIRST, _FACT_LAST)

    def fresh(draw):
        for _ in range(1000):
            value = draw()
            if value not in used:
                used.add(value)
                return value
        raise ValueError("ran out of distinct fact values; ask for fewer fact attachments")

    price = fresh(lambda: int(rng.integers(12, 98)) * 1000 if spoken else int(rng.integers(10_000, 990_000)))
    year, month, day = fresh(
        lambda: (int(rng.integers(2027, 2029)), int(rng.integers(1, 13)), int(rng.integers(1, 29)))
    )
    competitor = fresh(lambda: f"{heads[rng.integers(len(heads))]} {tails[rng.integers(len(tails))]}".strip())
    person = fresh(lambda: f"{firsts[rng.integers(len(firsts))]} {lasts[rng.integers(len(lasts))]}")
    title = ["Chief Financial Officer", "VP Procurement", "Head of IT", "COO"][int(rng.integers(4))]
    return AttachmentFacts(
        kind=kind,
        company=base["company"],
        person=base["person"],
        product=base["product"],
        rep=base["rep"],
        price=price,
        currency="USD" if spoken else base["currency"],
        month=month,
        day=day,
        year=year,
        competitor=competitor,
        decision_maker=person,
        decision_title=title,
    )


def _fact_lines(f: AttachmentFacts) -> list[str]:
    return [
        f"Commercial proposal: {f.product} for {f.company}",
        f"Prepared for {f.person} by {f.rep}.",
        f"Total price: {f.price_text} per year, licences and onboarding included.",
        f"Planned start date: {f.date_text}.",
        f"Competing offer on the table: {f.competitor}, who bid lower on services.",
        f"Final decision maker: {f.decision_maker}, {f.decision_title}, signs off the budget.",
    ]


def _slug(f: AttachmentFacts) -> str:
    slug = "".join(ch for ch in _ascii(f.company).lower().replace(" ", "_") if ch.isalnum() or ch == "_")
    return slug[:28] or "client"


def multipage_pdf(pages: list[list[str]]) -> bytes:
    """A PDF with one page per entry of ``pages`` (lines of ASCII text)."""

    def escape(line: str) -> str:
        return _ascii(line).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, lines in enumerate(pages):
        stream = "\n".join(
            ["BT", "/F1 11 Tf", "14 TL", "50 770 Td"] + [f"({escape(x)}) Tj T*" for x in lines] + ["ET"]
        ).encode("ascii")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R "
            f">> >> /Contents {5 + 2 * i} 0 R >>".encode()
        )
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
        )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref_at = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n".encode()
    return bytes(out)


def render_text_image(lines: list[str], width: int = 1000, size: int = 30, noise: float = 0.0, seed: int = 0):
    """A PIL image of ``lines`` in black on white, like a scan (optional speckle noise and slight tilt)."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=size)
    height = 60 + int(size * 1.6) * len(lines)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((40, 30 + int(size * 1.6) * i), line, fill=20, font=font)
    if noise:
        import numpy as np

        rng = np.random.default_rng(seed)
        pixels = np.asarray(image).astype(np.int16)
        pixels = pixels - (rng.random(pixels.shape) < noise) * 90
        image = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).rotate(
            0.6, fillcolor=255, expand=True
        )
    return image


def _image_bytes(image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _docx(f: AttachmentFacts) -> bytes:
    import docx

    document = docx.Document()
    document.core_properties.title = f"Proposal {f.company}"
    document.add_heading(f"{f.product} proposal for {f.company}", 0)
    document.add_paragraph(f"Prepared for {f.person} by {f.rep}.")
    document.add_heading("Commercial terms", 1)
    document.add_paragraph(f"The total price is {f.price_text} per year. Planned start date: {f.date_text}.")
    document.add_heading("Competitive situation", 1)
    document.add_paragraph(f"The client is also evaluating {f.competitor}.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Decision maker", "Title"
    table.cell(1, 0).text, table.cell(1, 1).text = f.decision_maker, f.decision_title
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _pptx(f: AttachmentFacts) -> bytes:
    from pptx import Presentation

    deck = Presentation()
    slides = [
        (f"{f.product} for {f.company}", f"Discovery summary for {f.person}", ""),
        ("Commercials", f"Annual price: {f.price_text}\nStart: {f.date_text}", ""),
        (
            "Landscape",
            "Where we win: reporting, onboarding, support",
            f"Speaker notes: {f.competitor} is the competitor to beat. "
            f"{f.decision_maker} ({f.decision_title}) makes the final call.",
        ),
    ]
    for title, body, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def _price_rows(f: AttachmentFacts) -> list[list]:
    return [
        ["item", "amount", "currency", "note"],
        [f"{f.product} annual licence", f.price, f.currency, f"total price {f.price_text}"],
        ["Start date", f.date_text, "", "planned start"],
        ["Competitor quote", "", "", f"{f.competitor} bid"],
        ["Approver", f.decision_maker, "", f"decision maker, {f.decision_title}"],
    ]


def _xlsx(f: AttachmentFacts) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Price sheet"
    for row in _price_rows(f):
        sheet.append(row)
    book.create_sheet("Terms").append(["Payment", "annual in advance"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xls(f: AttachmentFacts) -> bytes:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("Price sheet")
    for r, row in enumerate(_price_rows(f)):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _ods(f: AttachmentFacts) -> bytes:
    from xml.sax.saxutils import escape

    def cell(value) -> str:
        if isinstance(value, (int, float)):
            return (
                f'<table:table-cell office:value-type="float" office:value="{value}"><text:p>{value}</text:p>'
                "</table:table-cell>"
            )
        return (
            f'<table:table-cell office:value-type="string"><text:p>{escape(str(value))}</text:p>'
            "</table:table-cell>"
        )

    rows = "".join(
        "<table:table-row>" + "".join(cell(v) for v in row) + "</table:table-row>" for row in _price_rows(f)
    )
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="Price sheet">{rows}</table:table>'
        "</office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
        'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" '
        'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("META-INF/manifest.xml", manifest, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _eml(f: AttachmentFacts) -> bytes:
    from email.message import EmailMessage

    inner = EmailMessage()
    inner["From"], inner["To"] = f"{f.person} <client@example.com>", f"{f.rep} <rep@example.com>"
    inner["Subject"], inner["Date"] = f"Re: {f.product} pricing", "Mon, 05 Oct 2026 09:12:00 +0000"
    inner.set_content(
        f"Thanks. For the record, {f.decision_maker} ({f.decision_title}) will sign.\n"
        f"We are also talking to {f.competitor}.\n"
    )
    outer = EmailMessage()
    outer["From"], outer["To"] = f"{f.rep} <rep@example.com>", "deal-desk@example.com"
    outer["Subject"], outer["Date"] = (
        f"Fwd: {f.product} pricing for {f.company}",
        "Tue, 06 Oct 2026 10:00:00 +0000",
    )
    outer.set_content(f"Forwarding the thread below. Planned start date {f.date_text}.\n")
    outer.add_attachment(inner)
    quote = (
        "item,amount,currency\n"
        f"{f.product} annual licence,{f.price},{f.currency}\n"
        f'total price,"{f.price_text}",\n'
    ).encode()
    outer.add_attachment(quote, maintype="text", subtype="csv", filename="quote.csv")
    # the email package draws a random boundary (its digit count, so the file's size, varies): one from the facts
    outer.set_boundary("=_holocrm_" + hashlib.sha1(repr(f).encode()).hexdigest()[:24])
    return bytes(outer)


def _msg(f: AttachmentFacts) -> bytes:
    body = (
        f"Hi team,\n\n{f.decision_maker} ({f.decision_title}) approves the budget.\n"
        f"Start date agreed: {f.date_text}.\n\nBest, {f.rep}\n"
    )
    quote = f"Total price: {f.price_text}\nCompetitor: {f.competitor}\n".encode()
    return outlook_msg(
        f"{f.product} for {f.company}: approval", f.rep, f.person, body, [("terms.txt", quote)]
    )


def _rtf(f: AttachmentFacts) -> bytes:
    def esc(text: str) -> str:
        return _ascii(text).replace("\\", "\\\\").replace("{", "\\{").replace("}", "\\}")

    body = "\\par\n".join(esc(line) for line in _fact_lines(f))
    return (
        "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times New Roman;}}\\f0\\fs22 {\\b Order form}\\par\n"
        + body
        + "\\par\n}"
    ).encode("ascii")


def _html(f: AttachmentFacts) -> bytes:
    from html import escape

    items = "".join(f"<li>{escape(line)}</li>" for line in _fact_lines(f)[2:])
    return (
        f"<!DOCTYPE html><html><head><title>Proposal {escape(f.company)}</title>"
        "<style>body{font-family:sans-serif}</style><script>var tracking = 1;</script></head>"
        f"<body><h1>{escape(f.product)} for {escape(f.company)}</h1><p>Prepared for {escape(f.person)}.</p>"
        f"<ul>{items}</ul></body></html>"
    ).encode()


def _json(f: AttachmentFacts) -> bytes:
    return json.dumps(
        {
            "quote": {
                "customer": f.company,
                "product": f.product,
                "total_price": f.price_text,
                "start_date": f.date_text,
            },
            "deal_notes": {
                "competitor": f.competitor,
                "decision_maker": f.decision_maker,
                "decision_maker_title": f.decision_title,
            },
        },
        indent=2,
    ).encode("utf-8")


def _zip(f: AttachmentFacts) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", f"Deal room export for {f.company}.\n")
        archive.writestr("terms/commercials.txt", "\n".join(_fact_lines(f)[:4]) + "\n")
        archive.writestr("terms/landscape.docx", _docx(f))
    return buffer.getvalue()


def _speech(f: AttachmentFacts) -> bytes | None:
    espeak = shutil.which("espeak-ng")
    if not espeak:
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "call.wav"
        subprocess.run(
            [espeak, "-v", "en-us+f2", "-s", "140", "-g", "6", "-w", str(path), " ".join(f.spoken())],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return path.read_bytes()


def fact_attachment(f: AttachmentFacts, number: int) -> tuple[str, bytes] | None:
    """(file name, bytes) of a fact-bearing attachment of ``f.kind``; None when its tool is missing."""
    stem = f"{_slug(f)}_{number:03d}"
    lines = _fact_lines(f)
    kind = f.kind
    if kind == "pdf":
        return f"proposal_{stem}.pdf", multipage_pdf(
            [lines[:2] + ["Scope: licences, onboarding, support."], lines[2:]]
        )
    if kind == "pdf_scan":
        image = render_text_image(lines, width=1300, size=26, noise=0.002, seed=number)
        return f"signed_order_{stem}.pdf", _image_bytes(
            image, "PDF", resolution=150, creationDate=FIXED_PDF_DATE, modDate=FIXED_PDF_DATE
        )
    if kind == "png":  # a business card photographed on a desk
        card = [
            f.decision_maker,
            f.decision_title,
            f.company,
            f"Quoted {f.price_text}",
            f"Start {f.date_text}",
            f"Rival: {f.competitor}",
        ]
        return f"business_card_{stem}.png", _image_bytes(render_text_image(card, width=760, size=30), "PNG")
    if kind == "jpeg":  # a receipt-like scan
        image = render_text_image(lines[2:], width=1300, size=26, noise=0.001, seed=number)
        return f"scan_{stem}.jpg", _image_bytes(image.convert("RGB"), "JPEG", quality=85)
    if kind == "tiff":  # a two-page fax
        pages = [
            render_text_image(lines[:3], width=1300, size=26),
            render_text_image(lines[3:], width=1300, size=26),
        ]
        buffer = io.BytesIO()
        pages[0].save(buffer, "TIFF", save_all=True, append_images=pages[1:], compression="tiff_deflate")
        return f"fax_{stem}.tif", buffer.getvalue()
    if kind == "wav":
        audio = _speech(f)
        return None if audio is None else (f"call_recording_{stem}.wav", audio)
    writers = {
        "docx": (_docx, "proposal", "docx"),
        "pptx": (_pptx, "deck", "pptx"),
        "xlsx": (_xlsx, "price_sheet", "xlsx"),
        "xls": (_xls, "price_sheet", "xls"),
        "ods": (_ods, "price_sheet", "ods"),
        "eml": (_eml, "thread", "eml"),
        "msg": (_msg, "email", "msg"),
        "rtf": (_rtf, "order_form", "rtf"),
        "html": (_html, "proposal", "html"),
        "json": (_json, "quote", "json"),
        "zip": (_zip, "deal_room", "zip"),
    }
    if kind in writers:
        writer, prefix, extension = writers[kind]
        return f"{prefix}_{stem}.{extension}", writer(f)
    if kind == "csv":
        text = "\n".join(
            ",".join(f'"{v}"' if "," in str(v) else str(v) for v in row) for row in _price_rows(f)
        )
        return f"quote_{stem}.csv", (text + "\n").encode("utf-8")
    if kind == "md":
        body = "\n".join(f"- {line}" for line in lines[2:])
        return f"summary_{stem}.md", f"# {lines[0]}\n\n{lines[1]}\n\n## Terms\n\n{body}\n".encode()
    return f"call_notes_{stem}.txt", ("\n".join(lines) + "\n").encode("utf-8")


def default_fact_counts(per_text_kind: int = 6, per_ocr_kind: int = 1, audio: int = 1) -> dict[str, int]:
    """Fact-bearing files per kind; OCR and speech are kept to a handful (each costs seconds to read)."""
    return {
        k: audio if k in AUDIO_KINDS else per_ocr_kind if k in OCR_KINDS else per_text_kind
        for k in FACT_KINDS
    }


CORE_DATES = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")
FIXED_PDF_DATE = time.gmtime(1767225600)  # 2026-01-01: Pillow stamps a PDF with the save time otherwise


def stable_zip(data: bytes) -> bytes:
    """A zip-based file (docx, pptx, xlsx, odf, zip) with every entry dated 2026-01-01, so the same seed
    gives the same bytes (zip writers stamp entries with the current time); anything else unchanged."""
    if not data.startswith(b"PK\x03\x04"):
        return data
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type, info.external_attr = entry.compress_type, entry.external_attr
            content = source.read(entry.filename)
            if entry.filename == "docProps/core.xml":  # openpyxl stamps dcterms:modified with the save time
                content = CORE_DATES.sub(rb"\g<1>2026-01-01T00:00:00Z\g<2>", content)
            if entry.filename.endswith((".docx", ".pptx", ".xlsx")):
                content = stable_zip(content)
            target.writestr(info, content)
    return out.getvalue()


def write_fact_attachments(rng, hosts: list[dict], counts: dict[str, int], att_dir: Path | None):
    """Write fact-bearing attachments for ``hosts`` (one activity each: activity_id, company, person, product,
    rep, currency) and return (rows for attachments.csv, rows for the hidden truth).

    ``att_dir`` None lists the rows without writing files. A kind whose tool is missing (speech without
    espeak-ng) falls back to the recordings shipped in holocrm_core/synth/recordings, or is left out.
    """
    rows, truth, used = [], [], set()
    host = iter(hosts)
    for kind in FACT_KINDS:
        n = counts.get(kind, 0)
        if n <= 0:
            continue
        for number in range(1, n + 1):
            try:
                base = next(host)
            except StopIteration:
                return rows, truth
            facts = draw_facts(rng, kind, base, used)
            made = fact_attachment(facts, number)
            if made is None and kind in AUDIO_KINDS:
                shipped = _shipped_recording(number)
                if shipped is None:
                    continue
                name, content, own = shipped
                facts = AttachmentFacts(**{**facts.__dict__, **own})  # the recording's own facts
            elif made is None:
                continue
            else:
                name, content = made
                content = stable_zip(content)
            if att_dir is not None:
                att_dir.mkdir(parents=True, exist_ok=True)
                (att_dir / name).write_bytes(content)
            rows.append(
                {
                    "activity_id": base["activity_id"],
                    "file_name": name,
                    "media_type": FACT_MEDIA_TYPES[kind],
                    "size_bytes": len(content),
                }
            )
            for fact, query in facts.queries().items():
                value = {
                    "price": facts.price_text,
                    "date": facts.date_text,
                    "competitor": facts.competitor,
                    "decision_maker": facts.decision_maker,
                }[fact]
                truth.append(
                    {
                        "activity_id": base["activity_id"],
                        "file_name": name,
                        "kind": kind,
                        "fact": fact,
                        "value": value,
                        "query": query,
                    }
                )
    return rows, truth


def _shipped_recording(number: int):
    """(name, (bytes, facts)) of a committed espeak-ng recording, for machines without espeak-ng."""
    folder = Path(__file__).with_name("recordings")
    index = folder / "recordings.json"
    if not index.exists():
        return None
    listing = json.loads(index.read_text())
    entry = listing[(number - 1) % len(listing)]
    return entry["file_name"], (folder / entry["file_name"]).read_bytes(), entry["facts"]


def _tiny_png(width: int, height: int) -> bytes:
    """A PNG header that claims ``width`` x ``height`` pixels with almost no data (a decompression bomb)."""
    import struct
    import zlib

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
        + chunk(b"IEND", b"")
    )


def _zip_bomb(declared_mb: int) -> bytes:
    """A ZIP whose one member inflates to ``declared_mb`` MB of zeros (about 1 KB per MB compressed)."""
    buffer = io.BytesIO()
    block = b"\x00" * 2**20
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("quarterly_numbers.csv", "w", force_zip64=True) as member:
            for _ in range(declared_mb):
                member.write(block)
    return buffer.getvalue()


def _nested_zip(depth: int) -> bytes:
    data = b"innermost note\n"
    name = "note.txt"
    for level in range(depth):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name, data)
        data, name = buffer.getvalue(), f"level{level}.zip"
    return data


def hostile_corpus(folder: str | Path) -> dict[str, str]:
    """Write files that must be refused (or read with care) into ``folder``: {file name: expected rule}.

    ``""`` as the expected rule means the file is read (with a warning), not quarantined.
    """
    from pypdf import PdfReader, PdfWriter

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    facts = AttachmentFacts(
        "docx",
        "Hostile Ltd",
        "Ann Example",
        "Data Platform",
        "Rep One",
        12345,
        "EUR",
        1,
        2,
        2027,
        "Valtrix Data",
        "Ingrid Okonkwo",
        "COO",
    )
    proposal = multipage_pdf([_fact_lines(facts)])
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(proposal)))
    writer.encrypt(user_password="s3cret", owner_password="owner", algorithm="AES-128")
    encrypted = io.BytesIO()
    writer.write(encrypted)
    from msoffcrypto.format.ooxml import OOXMLFile

    locked_docx = io.BytesIO()
    OOXMLFile(io.BytesIO(_docx(facts))).encrypt("s3cret", locked_docx)
    files = {
        "truncated_proposal.docx": (_docx(facts)[:4000], "corrupt"),
        "truncated_scan.png": (_image_bytes(render_text_image(["Total 1,000 EUR"]), "PNG")[:300], "corrupt"),
        "encrypted_proposal.pdf": (encrypted.getvalue(), "encrypted"),
        "encrypted_terms.docx": (locked_docx.getvalue(), "encrypted"),
        "zip_bomb.zip": (_zip_bomb(400), "zip_bomb"),
        "ratio_bomb.zip": (_zip_bomb(60), "zip_bomb"),
        "pages_10000.pdf": (multipage_pdf([["page"]] * 10_000), "too_many_pages"),
        "pixel_bomb.png": (_tiny_png(30_000, 30_000), "too_large"),
        "nested_forever.zip": (_nested_zip(40), "nesting"),
        "invoice.pdf": (b"\x7fELF\x02\x01\x01" + b"\x00" * 500, "unsupported"),
        "contract_really_a_pdf.docx": (proposal, ""),
        "empty.txt": (b"", "unsupported"),
    }
    expected = {}
    for name, (content, rule) in files.items():
        (folder / name).write_bytes(content)
        expected[name] = rule
    with open(folder / "sparse_2gb.wav", "wb") as sparse:  # no disk used: a hole of 2 GB
        sparse.truncate(2 * 1024**3)
    expected["sparse_2gb.wav"] = "too_large"
    return expected
