"""Millions of string ids held as numpy arrays instead of Python objects: ``IdList`` (position -> id) and
``IdIndex`` (id -> position), both backed by UTF-8 byte strings (numpy ``S``), so they can be written once
and memory-mapped by every server process (``np.load(mmap_mode="r")``: the pages are shared through the page
cache).

Why: a Python ``list`` of 1M ids is about 65 MB and the ``{id: position}`` dict over it another 113 MB, per
process, per table (1M-contact server: about 250 MB for the three served tables, twice over for a second
worker). The arrays are about 10-20 MB a table and are shared.

``IdIndex`` answers as the dict ``{id: i for i, id in enumerate(ids)}`` does, duplicates included (the last
position of a repeated id wins): a binary search over the ids sorted once (stable), about 2 us a lookup.
Ids must be strings without NUL characters (numpy's ``S`` strips trailing NULs); ``encodable`` says whether
a list qualifies, and callers keep the Python containers otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import numpy as np


def encodable(ids: list) -> bool:
    """True when every id is a str without NUL characters (what the byte arrays hold faithfully)."""
    return all(isinstance(i, str) and "\x00" not in i for i in ids)


def id_bytes(ids: Iterable[str]) -> np.ndarray:
    """The ids as a numpy ``S`` array of their UTF-8 bytes (one fixed width: the longest id's)."""
    encoded = [i.encode() for i in ids]
    width = max((len(b) for b in encoded), default=0) or 1
    return np.array(encoded, dtype=f"S{width}")


class IdList:
    """Position -> id over an ``S`` array; behaves like the list of ids for reads (len, [i], iteration)."""

    __slots__ = ("values",)

    def __init__(self, values: np.ndarray):
        self.values = values

    def __len__(self) -> int:
        return len(self.values)

    def __bool__(self) -> bool:
        return len(self.values) > 0

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [v.decode() for v in self.values[position].tolist()]
        return self.values[position].decode()

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self.values), 65_536):
            yield from (v.decode() for v in self.values[start : start + 65_536].tolist())

    def tolist(self) -> list[str]:
        return list(self)


class IdIndex(Mapping):
    """Id -> position over the ids sorted once; the answers of ``{id: i for i, id in enumerate(ids)}``."""

    __slots__ = ("sorted_ids", "order", "_distinct")

    def __init__(self, sorted_ids: np.ndarray, order: np.ndarray):
        self.sorted_ids = sorted_ids  # S array, ascending
        self.order = order  # int64: the position of each sorted id
        self._distinct: int | None = None

    @classmethod
    def build(cls, values: np.ndarray) -> IdIndex:
        """From the ids in position order (an ``S`` array)."""
        order = np.argsort(values, kind="stable").astype(np.int64)
        return cls(values[order], order)

    def get(self, key, default=None):
        if not isinstance(key, str):
            return default
        try:
            needle = key.encode()
        except UnicodeEncodeError:
            return default
        if len(needle) > self.sorted_ids.dtype.itemsize or b"\x00" in needle:
            return default
        # the last of equal ids: what a dict built by enumerate keeps
        i = int(np.searchsorted(self.sorted_ids, needle, side="right")) - 1
        if i < 0 or self.sorted_ids[i] != needle:
            return default
        return int(self.order[i])

    def __getitem__(self, key) -> int:
        position = self.get(key)
        if position is None:
            raise KeyError(key)
        return position

    def __contains__(self, key) -> bool:
        return self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        """Each distinct id once, in the order of the ids sorted (a dict would give first-seen order)."""
        previous = None
        for value in self.sorted_ids.tolist():
            if value != previous:
                yield value.decode()
                previous = value

    def __len__(self) -> int:
        if self._distinct is None:  # counted once (a filter asks for it on every query)
            n = len(self.sorted_ids)
            self._distinct = n and int(1 + np.count_nonzero(self.sorted_ids[1:] != self.sorted_ids[:-1]))
        return self._distinct
