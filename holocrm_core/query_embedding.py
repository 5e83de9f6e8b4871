"""Query embeddings under concurrency: cached, and micro-batched across the requests that arrive together.

A search request needs its query's vector. Embedding one short text costs a model forward pass (a few ms on
two cores, more when other requests compete for the same cores); embedding 16 texts in one pass costs
little more than one. ``BatchingQueryEmbedder`` wraps an :class:`~holocrm_core.embedding.Embedder`:

- repeated queries are answered from an LRU cache (a search box sees the same few queries again and again);
- the same query asked by several requests at once is embedded once (they share one pending result);
- the other misses wait at most ``max_wait_s`` for company, then one worker thread embeds them as one batch.

Callers block on a future (the API calls it from its thread pool, never on the event loop). The vectors are
the wrapped embedder's, bit for bit per text (batching pads, the model masks the padding).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future

import numpy as np


class BatchingQueryEmbedder:
    def __init__(self, embedder, max_batch: int = 32, max_wait_s: float = 0.002, cache_size: int = 10_000):
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._pending: dict[str, Future] = {}  # text -> its vector, once the worker has embedded it
        self._queue: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self.stats = {"hits": 0, "misses": 0, "batches": 0, "batched_texts": 0}

    def __getattr__(self, name):  # model_id, dim, ... of the wrapped embedder
        return getattr(self.embedder, name)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Vectors of ``texts`` (rows in order), from the cache or the next batch."""
        futures = [self._submit(text) for text in texts]
        if not futures:
            return self.embedder.encode([])
        return np.stack([f.result() if isinstance(f, Future) else f for f in futures])

    def _submit(self, text: str):
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                self.stats["hits"] += 1
                return cached
            self.stats["misses"] += 1
            future = self._pending.get(text)
            if future is None:
                future = self._pending[text] = Future()
                self._queue.append(text)
                self._ensure_worker()
                self._wake.notify()
            return future

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._run, name="query-embedder", daemon=True)
            self._worker.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._queue:
                    self._wake.wait()
                # the first text waits a moment for others that arrive with it
                if len(self._queue) < self.max_batch:
                    self._wake.wait(self.max_wait_s)
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                vectors = self.embedder.encode(batch)
            except BaseException as exc:  # every waiter gets the error, the worker lives on
                with self._lock:
                    for text in batch:
                        self._pending.pop(text).set_exception(exc)
                continue
            with self._lock:
                self.stats["batches"] += 1
                self.stats["batched_texts"] += len(batch)
                for text, vector in zip(batch, vectors, strict=False):
                    self._cache[text] = vector
                    self._pending.pop(text).set_result(vector)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
