"""Attachments read offline and safely: kind by content, text by page/slide/sheet, chunks, search and fusion."""

from holocrm_core.attachments.detect import MEDIA_TYPES, detect_kind
from holocrm_core.attachments.extract import AttachmentReader, Outcome, extract_data
from holocrm_core.attachments.model import Context, Extracted, Limits, Problem, Refused, Section

__all__ = [
    "MEDIA_TYPES",
    "AttachmentReader",
    "Context",
    "Extracted",
    "Limits",
    "Outcome",
    "Problem",
    "Refused",
    "Section",
    "detect_kind",
    "extract_data",
]
