"""Records like this one, answered by a cold process without importing LanceDB (2.5 s of CPU on its own).

``CachedSimilarity`` quacks like ``SimilarityStore`` for ``similar``: the first call on a table version loads
the in-memory vectors through the store (as before) and keeps them in one ``.npz`` under
``<HOLOCRM_HOME>/cache/vectors/``; later processes read that file while the table's version listing
(``<type>.lance/_versions``) is unchanged. The neighbours come from the same ``EntityVectors`` ranking, so
the answer is the one the store (and the API) gives. Local folders only; any other URI goes to the store.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from holocrm_core.text import ENTITY_TABLES

CACHE_FORMAT = 1


def table_stamp(uri: str, entity_type: str) -> str | None:
    """A fingerprint of the table's committed versions (names, sizes, times of its manifests), or None."""
    versions = Path(uri) / f"{entity_type}.lance" / "_versions"
    try:
        entries = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(versions))
    except OSError:
        return None
    return hashlib.sha1(repr((CACHE_FORMAT, entries)).encode()).hexdigest()[:16] if entries else None


class CachedSimilarity:
    """``entity_types()`` and ``similar(...)`` of the LanceDB index under ``uri``, from a vector cache."""

    def __init__(self, uri: str, cache_dir: Path | None = None):
        self.uri = str(uri)
        self.cache_dir = Path(cache_dir) if cache_dir else Path(self.uri).parent / "cache" / "vectors"
        self._store = None
        self._loaded: dict = {}

    def entity_types(self) -> list[str]:
        return [t for t in ENTITY_TABLES if table_stamp(self.uri, t) is not None]

    def _open_store(self):
        if self._store is None:
            from holocrm_core.store import SimilarityStore

            self._store = SimilarityStore(self.uri)
        return self._store

    def _path(self, entity_type: str, stamp: str) -> Path:
        return self.cache_dir / f"{entity_type}-{stamp}.npz"

    def entity_vectors(self, entity_type: str):
        """The table's ``EntityVectors``: from the cache when it matches the table, else loaded and cached."""
        if entity_type in self._loaded:
            return self._loaded[entity_type]
        stamp = table_stamp(self.uri, entity_type)
        loaded = self._read(entity_type, stamp) if stamp else None
        if loaded is None:
            loaded = self._open_store().entity_vectors(entity_type)
            if stamp and stamp == table_stamp(self.uri, entity_type):  # unchanged while we read it
                self._write(entity_type, stamp, loaded)
        self._loaded[entity_type] = loaded
        return loaded

    def _read(self, entity_type: str, stamp: str):
        import numpy as np

        from holocrm_core.store import EntityVectors

        path = self._path(entity_type, stamp)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                categories = json.loads(str(data["categories"]))
                codes = {c: data[f"code_{n}"] for n, c in enumerate(categories)}
                return EntityVectors(data["ids"].tolist(), data["vectors"], data["coarse"], codes, categories)
        except (OSError, ValueError, KeyError):
            return None  # a damaged or old file: load from the store and write it again

    def _write(self, entity_type: str, stamp: str, loaded) -> None:
        import numpy as np

        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            for old in self.cache_dir.glob(f"{entity_type}-*.npz"):
                old.unlink(missing_ok=True)
            columns = list(loaded.categories)
            arrays = {
                "ids": np.array(list(loaded.ids), dtype=str),
                "vectors": loaded.vectors,
                "coarse": loaded.coarse,
                "categories": np.array(json.dumps({c: list(v) for c, v in loaded.categories.items()})),
                **{f"code_{n}": loaded.codes[c] for n, c in enumerate(columns)},
            }
            partial = self.cache_dir / f".{entity_type}-{stamp}.{os.getpid()}.npz"
            np.savez(partial, **arrays)
            os.replace(partial, self._path(entity_type, stamp))
        except OSError:
            pass  # a read-only home: answer anyway, without the cache

    def similar(self, *args, **kwargs) -> list[dict]:
        """What ``SimilarityStore.similar`` answers: its own code, over this object's ``entity_vectors``."""
        from holocrm_core.store import SimilarityStore

        return SimilarityStore.similar(self, *args, **kwargs)
