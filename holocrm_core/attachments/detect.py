"""Attachment kind detected from the bytes themselves (magic numbers, container listings), never the file name.

A CRM export carries whatever people attached: a PDF saved as ``.docx``, a CSV named ``.txt``, an executable
renamed ``invoice.pdf``. Kinds are decided by content in this order: binary signatures (PDF, ZIP, OLE2, PNG,
JPEG, TIFF, RIFF/WAVE, MP3, RTF), then the member listing of ZIP containers (Office Open XML and OpenDocument
are ZIPs: ``word/``, ``ppt/``, ``xl/``, ``mimetype``), then the stream names of OLE2 compound files (MSG, XLS,
encrypted Office documents), then text heuristics (JSON parses, HTML tags, RFC 822 headers, CSV dialect,
Markdown markers). The extension is consulted last, only to tell TXT from MD when the text carries no marks,
and a mismatch between extension and content is reported as a warning.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

# kind -> IANA media type; the kinds the extractors handle.
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xls": "application/vnd.ms-excel",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "odt": "application/vnd.oasis.opendocument.text",
    "odp": "application/vnd.oasis.opendocument.presentation",
    "csv": "text/csv",
    "html": "text/html",
    "eml": "message/rfc822",
    "msg": "application/vnd.ms-outlook",
    "rtf": "application/rtf",
    "txt": "text/plain",
    "md": "text/markdown",
    "json": "application/json",
    "zip": "application/zip",
    "png": "image/png",
    "jpeg": "image/jpeg",
    "tiff": "image/tiff",
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
}
# Detected but never extracted: reported with a reason in the quarantine.
REFUSED = {
    "executable": "an executable program (ELF/PE/Mach-O), not a document",
    "encrypted_office": "a password-protected Office document (OLE2 EncryptedPackage)",
    "ole_unknown": "an OLE2 compound file of an unknown kind (old .doc/.ppt are not read)",
    "binary": "binary content of an unknown kind",
    "empty": "an empty file",
    "gzip": "a gzip/tar stream (only ZIP archives are read)",
}
EXTENSION_KIND = {
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "tif": "tiff",
    "tiff": "tiff",
    "htm": "html",
    "markdown": "md",
    "text": "txt",
    "log": "txt",
}
_EML_HEADER = re.compile(
    rb"^(From|To|Subject|Date|Received|Return-Path|Message-ID|MIME-Version|Delivered-To):",
    re.IGNORECASE | re.MULTILINE,
)
_MD_MARK = re.compile(r"^(#{1,6} |[-*] |\d+\. |> |```)|\*\*[^*]+\*\*|\[[^\]]+\]\([^)]+\)", re.MULTILINE)


def _zip_kind(data: bytes) -> str:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        return "zip"  # truncated or odd: the ZIP extractor reports the precise reason
    top = set(names)
    if "[Content_Types].xml" in top:
        if any(n.startswith("word/") for n in names):
            return "docx"
        if any(n.startswith("ppt/") for n in names):
            return "pptx"
        if any(n.startswith("xl/") for n in names):
            return "xlsx"
    if "mimetype" in top:
        head = zipfile.ZipFile(io.BytesIO(data)).read("mimetype")[:80]
        for kind in ("spreadsheet", "text", "presentation"):
            if f"opendocument.{kind}".encode() in head:
                return {"spreadsheet": "ods", "text": "odt", "presentation": "odp"}[kind]
    return "zip"


def _ole_kind(data: bytes) -> str:
    # Stream names are stored as UTF-16LE in the directory sectors; a byte search avoids parsing the FAT
    # here (the extractor parses it properly, with olefile).
    def has(name: str) -> bool:
        return name.encode("utf-16-le") in data

    if has("EncryptedPackage") or has("EncryptionInfo"):
        return "encrypted_office"
    if has("__substg1.0_") or has("__properties_version1.0"):
        return "msg"
    if has("Workbook") or has("Book"):
        return "xls"
    return "ole_unknown"


def _text_kind(data: bytes, extension: str) -> str:
    head = data[:65536]
    if b"\x00" in head[:4096]:
        return "binary"
    text = head.decode("utf-8", errors="replace")
    stripped = text.lstrip("\ufeff \t\r\n")
    low = stripped[:2048].lower()
    if stripped[:1] in "{[":
        try:
            json.loads(data.decode("utf-8-sig"))
            return "json"
        except (ValueError, UnicodeDecodeError):
            pass
    if low.startswith(("<!doctype html", "<html")) or re.search(r"<(body|p|div|table|h1)\b", low):
        return "html"
    if len(_EML_HEADER.findall(head[:4096])) >= 2 and re.match(rb"[\w-]+:", head.lstrip()):
        return "eml"
    if extension == "md" or len(_MD_MARK.findall(stripped[:8192])) >= 2:
        return "md"
    lines = [line for line in stripped.splitlines()[:20] if line.strip()]
    if extension == "csv" and len(lines) >= 1 and any(d in lines[0] for d in ",;\t|"):
        return "csv"  # ragged rows are still a CSV when the name says so and a header is delimited
    if len(lines) >= 2:
        try:
            dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|")
            widths = {len(row) for row in csv.reader(lines, dialect)}
            if len(widths) == 1 and widths.pop() >= 2:
                return "csv"
        except csv.Error:
            pass
    return "txt"


def detect_kind(data: bytes, file_name: str = "") -> str:
    """The attachment kind of ``data`` (a key of MEDIA_TYPES, or of REFUSED when it is not to be read)."""
    extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    extension = EXTENSION_KIND.get(extension, extension)
    if not data:
        return "empty"
    if data.startswith(b"%PDF-") or b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return _zip_kind(data)
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _ole_kind(data)
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data.startswith(b"ID3") or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data.startswith(b"{\\rtf"):
        return "rtf"
    if data.startswith((b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")):
        return "executable"
    if data.startswith(b"\x1f\x8b"):
        return "gzip"
    return _text_kind(data, extension)


def extension_warning(kind: str, file_name: str) -> str | None:
    """A sentence when the file's extension names another kind than its content (None when they agree)."""
    if "." not in file_name:
        return None
    extension = file_name.rsplit(".", 1)[-1].lower()
    extension = EXTENSION_KIND.get(extension, extension)
    text_kinds = {"txt", "md", "csv", "json", "html", "eml"}
    if extension == kind or (extension in text_kinds and kind in text_kinds) or extension not in MEDIA_TYPES:
        return None
    return f"named .{extension} but the content is {kind.upper()}: read as {kind.upper()}"
