"""Text out of documents: PDF (text layer, scanned pages by OCR), DOCX, PPTX with notes, RTF, HTML, TXT, MD, JSON.

Libraries, measured on the generated attachments (benchmarks/attachments.py):
- PDF: pypdf (pure Python, reads text layers and embedded page images, reports encryption; no rendering or
  JavaScript). pdfminer-based pdfplumber is 3-5x slower for the same text on these files and pypdfium2 is
  a native renderer we do not need: scanned pages carry their scan as an image XObject, which pypdf hands
  to the OCR engine directly.
- DOCX / PPTX: python-docx / python-pptx read the XML parts; macros (vbaProject.bin) are never executed,
  their presence is reported. Slides and their speaker notes become separate sections.
- RTF: striprtf (a regular-expression state machine, no embedded objects run).
- HTML: BeautifulSoup over lxml; scripts and styles dropped, nothing fetched.
"""

from __future__ import annotations

import io
import json
import re

from holocrm_core.attachments.model import Context, Extracted, Refused, Section

_BLANKS = re.compile(r"[ \t]+")


def decode_text(data: bytes) -> str:
    """Text of ``data``: UTF-8 (with or without BOM) first, else charset-normalizer's best guess."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:2_000_000]).best()
        return str(best) if best is not None else data.decode("latin-1")


def tidy(text: str) -> str:
    lines = [_BLANKS.sub(" ", line).strip() for line in text.splitlines()]
    out, blank = [], False
    for line in lines:
        if not line:
            if not blank and out:
                out.append("")
            blank = True
            continue
        out.append(line)
        blank = False
    return "\n".join(out).strip()


def _macro_warning(data: bytes, out: Extracted) -> None:
    if b"vbaProject.bin" in data:
        out.warnings.append("contains macros (vbaProject.bin): never run, text read only")


def extract_pdf(data: bytes, ctx: Context, out: Extracted) -> None:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            # Owner-password-only PDFs (print/copy restrictions) open with the empty user password.
            try:
                opened = reader.decrypt("")
            except Exception:  # noqa: BLE001 - pypdf raises several kinds for unsupported ciphers
                opened = 0
            if not opened:
                raise Refused("encrypted", "the PDF is password-protected: ask the sender for an open copy")
            out.warnings.append("PDF is encrypted with an empty user password: read")
        try:  # the page tree's own count first: walking 10,000 pages only to refuse them costs seconds
            declared = int(reader.trailer["/Root"]["/Pages"]["/Count"])
        except (KeyError, TypeError, ValueError):
            declared = 0
        if declared > ctx.limits.max_pages:
            raise Refused(
                "too_many_pages", f"the PDF has {declared:,} pages (limit {ctx.limits.max_pages:,})"
            )
        pages = len(reader.pages)
    except Refused:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError) as exc:
        raise Refused(
            "corrupt", f"the PDF cannot be parsed ({type(exc).__name__}: {str(exc)[:120]})"
        ) from exc
    if pages > ctx.limits.max_pages:
        raise Refused("too_many_pages", f"the PDF has {pages:,} pages (limit {ctx.limits.max_pages:,})")
    info = reader.metadata or {}
    out.metadata.update(
        {"pages": pages, "title": str(info.get("/Title") or ""), "author": str(info.get("/Author") or "")}
    )
    ocr_pages = 0
    for number, page in enumerate(reader.pages, start=1):
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # noqa: BLE001 - a broken content stream spoils one page, not the file
            out.warnings.append(f"page {number}: text layer unreadable ({type(exc).__name__})")
            text = ""
        if len(text.strip()) < 16:
            text = (text + "\n" + _ocr_page_images(page, number, ctx, out)).strip()
            ocr_pages += bool(text)
        out.sections.append(Section(f"page {number}", tidy(text)))
    out.metadata["ocr_pages"] = ocr_pages


def _ocr_page_images(page, number: int, ctx: Context, out: Extracted) -> str:
    from holocrm_core.attachments.media import ocr_image

    texts = []
    try:
        images = list(page.images)
    except Exception as exc:  # noqa: BLE001
        out.warnings.append(f"page {number}: images unreadable ({type(exc).__name__})")
        return ""
    for image in images[:8]:
        try:
            texts.append(ocr_image(image.image, ctx))
        except Refused as exc:
            out.warnings.append(f"page {number}: {exc.reason}")
        except Exception as exc:  # noqa: BLE001
            out.warnings.append(f"page {number}: image unreadable ({type(exc).__name__})")
    return "\n".join(t for t in texts if t)


def extract_docx(data: bytes, ctx: Context, out: Extracted) -> None:
    import docx

    _macro_warning(data, out)
    document = docx.Document(io.BytesIO(data))
    props = document.core_properties
    out.metadata.update({"title": props.title or "", "author": props.author or ""})
    heading, lines = "start", []

    def flush() -> None:
        if any(line.strip() for line in lines):
            out.sections.append(Section(f"section {heading}"[:120], tidy("\n".join(lines))))

    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith(("Heading", "Title")) and paragraph.text.strip():
            flush()
            heading, lines = paragraph.text.strip(), [paragraph.text]
        else:
            lines.append(paragraph.text)
    flush()
    for number, table in enumerate(document.tables, start=1):
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        out.sections.append(Section(f"table {number}", tidy("\n".join(rows))))
    out.metadata["paragraphs"] = len(document.paragraphs)


def _shape_texts(shapes) -> list[str]:
    texts = []
    for shape in shapes:
        if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            texts.append(shape.text_frame.text)
        if getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                texts.append(" | ".join(cell.text for cell in row.cells))
        if shape.shape_type == 6:  # group: its own shapes
            texts.extend(_shape_texts(shape.shapes))
    return texts


def extract_pptx(data: bytes, ctx: Context, out: Extracted) -> None:
    from pptx import Presentation

    _macro_warning(data, out)
    deck = Presentation(io.BytesIO(data))
    slides = len(deck.slides)
    if slides > ctx.limits.max_pages:
        raise Refused("too_many_pages", f"the deck has {slides:,} slides (limit {ctx.limits.max_pages:,})")
    out.metadata.update({"slides": slides, "title": deck.core_properties.title or ""})
    for number, slide in enumerate(deck.slides, start=1):
        out.sections.append(Section(f"slide {number}", tidy("\n".join(_shape_texts(slide.shapes)))))
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text if slide.notes_slide.notes_text_frame else ""
            if notes.strip():
                out.sections.append(Section(f"slide {number} notes", tidy(notes)))


def extract_opendocument(data: bytes, ctx: Context, out: Extracted) -> None:
    """ODT / ODP: paragraphs and headings of content.xml (pages of a presentation become slides)."""
    import zipfile

    from lxml import etree

    text_ns = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
    draw_ns = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        info = archive.getinfo("content.xml")
        if info.file_size > ctx.limits.max_decompressed_bytes:
            raise Refused("zip_bomb", f"content.xml inflates to {info.file_size / 2**20:,.0f} MB")
        root = etree.fromstring(
            archive.read(info),
            parser=etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False),
        )
    pages = root.iter(f"{{{draw_ns}}}page") if out.kind == "odp" else [root]
    for number, page in enumerate(pages, start=1):
        lines = ["".join(node.itertext()) for node in page.iter(f"{{{text_ns}}}p", f"{{{text_ns}}}h")]
        out.sections.append(
            Section(f"slide {number}" if out.kind == "odp" else "document", tidy("\n".join(lines)))
        )


def extract_rtf(data: bytes, ctx: Context, out: Extracted) -> None:
    from striprtf.striprtf import rtf_to_text

    text = rtf_to_text(data.decode("latin-1"), errors="ignore")
    out.sections.append(Section("document", tidy(text)))


def html_text(data: bytes) -> tuple[str, str]:
    """(title, visible text) of an HTML document."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(data), "lxml")
    for tag in soup(["script", "style", "noscript", "template", "iframe", "object", "embed"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    return title, tidy(soup.get_text("\n"))


def extract_html(data: bytes, ctx: Context, out: Extracted) -> None:
    title, text = html_text(data)
    out.metadata["title"] = title
    out.sections.append(Section("page", text))


def extract_txt(data: bytes, ctx: Context, out: Extracted) -> None:
    out.sections.append(Section("text", tidy(decode_text(data))))


def extract_md(data: bytes, ctx: Context, out: Extracted) -> None:
    heading, lines = "start", []
    for line in decode_text(data).splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            if any(x.strip() for x in lines):
                out.sections.append(Section(f"section {heading}"[:120], tidy("\n".join(lines))))
            heading, lines = match.group(1).strip(), []
        lines.append(re.sub(r"[*_`]{1,3}", "", line))
    if any(x.strip() for x in lines):
        out.sections.append(Section(f"section {heading}"[:120], tidy("\n".join(lines))))


def _flatten(value, path: str, lines: list[str], depth: int = 0) -> None:
    if depth > 64:
        raise Refused("nesting", "the JSON nests more than 64 levels deep")
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), lines, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", lines, depth + 1)
    elif value is not None:
        lines.append(f"{path}: {value}")


def extract_json(data: bytes, ctx: Context, out: Extracted) -> None:
    try:
        document = json.loads(decode_text(data))
    except (ValueError, RecursionError) as exc:
        raise Refused("corrupt", f"the JSON does not parse ({str(exc)[:120]})") from exc
    items = document.items() if isinstance(document, dict) else [("document", document)]
    for key, value in items:
        lines: list[str] = []
        _flatten(value, str(key), lines)
        out.sections.append(Section(f"key {key}"[:120], "\n".join(lines)))
