"""What an attachment extractor returns (text by section, metadata, problems) and the limits it works within."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """Bounds on one attachment; anything beyond them is refused with a reason, never half-read silently.

    The defaults fit CRM attachments (proposals, decks, price sheets, short calls) with a wide margin; a
    deployment changes them by configuration.
    """

    max_bytes: int = 50 * 1024 * 1024  # file size, checked with stat() before a byte is read
    max_pages: int = 2_000  # PDF pages / TIFF frames / slides
    max_cells: int = 500_000  # spreadsheet cells over all sheets
    max_decompressed_bytes: int = 200 * 1024 * 1024  # all archive members together (zip bombs)
    max_ratio: int = 200  # uncompressed / compressed for one member
    max_members: int = 1_000  # archive members, e-mail parts
    max_depth: int = 4  # archive in e-mail in archive ...
    max_text_chars: int = 5_000_000  # extracted text kept per file
    max_image_pixels: int = 40_000_000  # decompression bombs in images
    max_audio_seconds: int = 900
    timeout_s: float = 60.0  # per file; the worker process is killed past it
    max_rss_bytes: int = 2 * 1024 * 1024 * 1024  # worker resident memory; killed past it


class Refused(Exception):
    """The attachment cannot be read: ``rule`` is a machine code, ``reason`` a sentence a person can act on."""

    def __init__(self, rule: str, reason: str):
        super().__init__(reason)
        self.rule = rule
        self.reason = reason


@dataclass
class Section:
    """A located piece of text: ``locator`` is what a person looks up ("page 3", "slide 2 notes")."""

    locator: str
    text: str


@dataclass
class Problem:
    """Something inside an attachment that was not read (an encrypted archive member, a corrupt e-mail part)."""

    locator: str
    rule: str
    reason: str


@dataclass
class Extracted:
    kind: str
    media_type: str
    sections: list[Section] = field(default_factory=list)
    metadata: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n\n".join(s.text for s in self.sections if s.text.strip())


@dataclass
class Context:
    """Where an extraction stands inside containers: depth, the ancestors' hashes (loops) and byte budget."""

    limits: Limits
    depth: int = 0
    ancestors: tuple[str, ...] = ()
    budget: list[int] = field(default_factory=lambda: [0])  # decompressed bytes used, shared by the tree

    def child(self, data: bytes, locator: str) -> Context:
        digest = hashlib.sha256(data).hexdigest()
        if digest in self.ancestors:
            raise Refused("loop", f"{locator} contains itself (an archive that loops back on its own bytes)")
        if self.depth + 1 > self.limits.max_depth:
            raise Refused(
                "nesting", f"{locator} is nested {self.depth + 1} levels deep (limit {self.limits.max_depth})"
            )
        return Context(self.limits, self.depth + 1, self.ancestors + (digest,), self.budget)

    def spend(self, n: int, locator: str) -> None:
        self.budget[0] += n
        if self.budget[0] > self.limits.max_decompressed_bytes:
            raise Refused(
                "zip_bomb",
                f"{locator}: decompressed content passes "
                f"{self.limits.max_decompressed_bytes // 2**20} MB (a zip bomb?)",
            )
