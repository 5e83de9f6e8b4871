"""A small writer of Outlook .msg files (OLE2 compound files, MS-OXMSG) for the sample export's forwarded e-mails.

No Python package writes .msg files, and the reader side (extract-msg over olefile) needs real ones. The
compound file uses 512-byte sectors; streams under 4,096 bytes live in the mini stream, as the format
requires (extract-msg opens files with olefile's strict checks). Directory
siblings are chained as a right-leaning binary search tree in the order the format compares names
(length, then upper case), which is all a reader walks.
"""

from __future__ import annotations

import struct

_FREE, _END, _FATSECT, _NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF
_PT_UNICODE, _PT_BINARY, _PT_LONG = 0x001F, 0x0102, 0x0003


class _Node:
    def __init__(self, name: str, kind: int, data: bytes = b""):
        self.name, self.kind, self.data = name, kind, data
        self.children: list[_Node] = []
        self.start, self.id = _END, 0


def _string(prop: int, text: str) -> _Node:
    return _Node(f"__substg1.0_{prop:04X}{_PT_UNICODE:04X}", 2, text.encode("utf-16-le"))


def _properties(header: bytes, fixed: list[tuple[int, int, int]]) -> _Node:
    entries = b"".join(struct.pack("<IIQ", (prop << 16) | kind, 0x6, value) for prop, kind, value in fixed)
    return _Node("__properties_version1.0", 2, header + entries)


def outlook_msg(subject: str, sender: str, to: str, body: str, attachments: list[tuple[str, bytes]]) -> bytes:
    """The bytes of an Outlook message (IPM.Note) with plain-text ``body`` and attached files."""
    root = _Node("Root Entry", 5)
    root.children = [
        _string(0x001A, "IPM.Note"),
        _string(0x0037, subject),
        _string(0x0C1A, sender),
        _string(0x0E04, to),
        _string(0x1000, body),
    ]
    header = struct.pack("<8xIIII8x", 1, len(attachments), 0, len(attachments))
    root.children.append(_properties(header, []))
    named = _Node("__nameid_version1.0", 1)  # the named-property map readers insist on, here empty
    named.children = [_Node(f"__substg1.0_000{i}0102", 2) for i in (2, 3, 4)]
    root.children.append(named)
    for number, (name, data) in enumerate(attachments):
        storage = _Node(f"__attach_version1.0_#{number:08X}", 1)
        storage.children = [
            _string(0x3707, name),
            _string(0x3704, name[:12]),
            _Node(f"__substg1.0_3701{_PT_BINARY:04X}", 2, data),
            _properties(b"\x00" * 8, [(0x3705, _PT_LONG, 1), (0x0E20, _PT_LONG, len(data))]),
        ]
        root.children.append(storage)
    return _compound_file(root)


def _walk(node: _Node) -> list[_Node]:
    out = [node]
    for child in node.children:
        out.extend(_walk(child))
    return out


def _compound_file(root: _Node) -> bytes:
    nodes = _walk(root)
    for index, node in enumerate(nodes):
        node.id = index
    sectors: list[bytes] = []
    fat: list[int] = []

    def place(data: bytes) -> int:
        if not data:
            return _END
        first = len(sectors)
        count = (len(data) + 511) // 512
        for i in range(count):
            sectors.append(data[i * 512 : (i + 1) * 512].ljust(512, b"\x00"))
            fat.append(first + i + 1 if i < count - 1 else _END)
        return first

    mini, minifat = bytearray(), []
    for node in nodes:
        if node.kind == 2 and len(node.data) >= 4096:
            node.start = place(node.data)
        elif node.kind == 2 and node.data:  # small streams live in 64-byte mini sectors (MS-CFB 2.3)
            node.start = len(mini) // 64
            count = (len(node.data) + 63) // 64
            minifat.extend(node.start + i + 1 if i < count - 1 else _END for i in range(count))
            mini += node.data.ljust(count * 64, b"\x00")
    root.start, root.size = place(bytes(mini)), len(mini)
    minifat_bytes = b"".join(struct.pack("<I", v) for v in minifat)
    minifat_start = place(minifat_bytes.ljust(-(-len(minifat_bytes) // 512) * 512, b"\xff"))
    n_minifat = -(-len(minifat_bytes) // 512)
    directory = b"".join(_entry(node) for node in nodes)
    directory += b"\x00" * (-len(directory) % 512)
    # Unused directory slots must read as empty entries (all sibling/child ids NOSTREAM).
    empty = _entry(_Node("", 0))
    directory = b"".join(
        directory[i : i + 128] if directory[i : i + 128].strip(b"\x00") else empty
        for i in range(0, len(directory), 128)
    )
    dir_start = place(directory)
    n_fat = 1
    while (len(fat) + n_fat) > n_fat * 128:
        n_fat += 1
    fat_start = len(sectors)
    fat.extend([_FATSECT] * n_fat)
    fat_bytes = b"".join(struct.pack("<I", v) for v in fat).ljust(n_fat * 512, b"\xff")
    difat = [fat_start + i for i in range(n_fat)] + [_FREE] * (109 - n_fat)
    head = struct.pack(
        "<8s16sHHHHH6xIIIIIIIII",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\x00" * 16,
        0x3E,
        3,
        0xFFFE,
        9,
        6,
        0,
        n_fat,
        dir_start,
        0,
        4096,
        minifat_start,
        n_minifat,
        _END,
        0,
    )
    head += b"".join(struct.pack("<I", v) for v in difat)
    return head + b"".join(sectors) + fat_bytes


def _sort_key(node: _Node) -> tuple[int, str]:
    return (len(node.name), node.name.upper())


def _entry(node: _Node) -> bytes:
    name = node.name.encode("utf-16-le") + b"\x00\x00" if node.name else b""
    child = _NOSTREAM
    if node.children:
        ordered = sorted(node.children, key=_sort_key)
        for left, right in zip(ordered, ordered[1:]):
            left.right = right.id  # type: ignore[attr-defined]
        child = ordered[0].id
    right = getattr(node, "right", _NOSTREAM)
    size = len(node.data) if node.kind == 2 else getattr(node, "size", 0)
    start = node.start if node.kind in (2, 5) else 0
    return struct.pack(
        "<64sHBBIII16sIQQIQ",
        name.ljust(64, b"\x00"),
        len(name),
        node.kind,
        1,
        _NOSTREAM,
        right,
        child,
        b"\x00" * 16,
        0,
        0,
        0,
        start,
        size,
    )
