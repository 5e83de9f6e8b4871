"""Small real attachment files for the sample export: proposals (PDF, Markdown), quotes (CSV), meeting notes (TXT).

The PDF writer produces a minimal but valid PDF 1.4 (catalog, one page, Helvetica text, correct xref
offsets), so extractors exercise a real parser rather than a stub.
"""

from __future__ import annotations

import unicodedata

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


def attachment_content(kind: str, number: int, company: str, person: str, product: str, value: str,
                       currency: str, rep: str, day: str) -> tuple[str, bytes]:
    """(file name, bytes) of one attachment of ``kind`` (pdf, md, csv, txt) about a company and product."""
    slug = "".join(ch for ch in _ascii(company).lower().replace(" ", "_") if ch.isalnum() or ch == "_")[:32]
    slug = slug or "client"
    if kind == "pdf":
        lines = [f"Proposal: {product} for {company}", "", f"Prepared for: {person}", f"Prepared by: {rep}",
                 f"Investment: {value} {currency} per year", "Scope: licences, onboarding, premium support.",
                 f"Proposed start: {day}.", "Valid for 30 days."]
        return f"proposal_{slug}_{number:04d}.pdf", minimal_pdf(lines)
    if kind == "md":
        text = (f"# {product} proposal for {company}\n\n"
                f"Prepared for **{person}** by {rep}.\n\n"
                f"## Summary\n\n- Annual investment: {value} {currency}\n- Rollout: phased, starting {day}\n"
                f"- Success criteria: adoption by the sales team, weekly pipeline reporting\n\n"
                f"## Next steps\n\n1. Review with finance\n2. Security questionnaire\n3. Signature\n")
        return f"summary_{slug}_{number:04d}.md", text.encode("utf-8")
    if kind == "csv":
        text = ("item,quantity,unit_price,currency\n"
                f"{product} licence,25,{value},{currency}\n"
                f"Onboarding services,1,2500.00,{currency}\n"
                f"Premium support,1,1200.00,{currency}\n")
        return f"quote_{slug}_{number:04d}.csv", text.encode("utf-8")
    text = (f"Meeting notes - {company}\n"
            f"Attendees: {person}, {rep}\n"
            f"Topic: {product} evaluation\n"
            f"- Walked through current process and reporting gaps\n"
            f"- Discussed timeline; follow-up {day}\n")
    return f"meeting_notes_{slug}_{number:04d}.txt", text.encode("utf-8")
