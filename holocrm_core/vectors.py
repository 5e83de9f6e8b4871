"""The one vector engine: nearest neighbours by cosine over unit vectors, exact or approximate, filtered.

Used by the similarity store (``holocrm_core.store``: similar / search_vector / the vector half of hybrid
search) and by duplicate blocking (``holocrm_core.dedupe``: each record's nearest neighbours). Rows are
positions ``0..n-1``; the caller maps them to its ids.

Paths, chosen by size (the vectors live in memory, read once per index version):
- up to ``EXACT_MAX_ROWS`` rows: an exact scan of the full vectors;
- above: a faiss index over the coarse vectors (the 96-dim spectral prefix when the caller has one) gives
  candidates that are reranked exactly on the full vectors. A flat (exact) coarse index up to
  ``IVF_MIN_ROWS``, an inverted file above: for the similarity store (``quantized``) of 4-bit PQ codes
  scanned by faiss's fast-scan kernels (``IndexIVFPQFastScan``, sqrt(n) lists, 3/16 probed, 600 code
  candidates narrowed to 100 on the exact prefix, then reranked), for dedupe's batch neighbours
  ``IndexIVFFlat`` (about 6% of the lists probed). ``HOLOCRM_SIMILAR_INDEX=hnsw`` swaps the store's inverted
  file for an HNSW graph over the prefix (``QUANTIZED_GRAPH``: measured, not good enough on the served
  contacts at 1M, so off by default).
- the query record itself (``exclude``) is dropped from the answer, not masked: a mask makes faiss test
  every scanned row against a bitmap and widens the probes.
- filters are boolean masks over the rows: faiss skips the rows they exclude during the scan
  (``IDSelectorBitmap``), so a filtered query still returns ``k`` rows; a very selective filter (at most
  5% of the rows) scans only the rows it lets through, exactly.

Why faiss and not LanceDB's own ANN index: LanceDB's IVF_HNSW_SQ meets the bars in isolation (STACK.md:
p95 3.5 ms, recall@10 0.98 at 100k) but costs 48 s to build at 100k and 20 to 50 ms per query once the
point lookup and the round trip are counted on this 2-core machine under load; an in-memory faiss inverted
file builds in about a second and answers well under a millisecond. LanceDB stays the storage (versions,
full-text index, filters); this module is the only place vectors are ranked.

Measured (benchmarks/semantic_speed.py --skip-embedding --sizes 100000, SimilarityStore.similar end to end,
100k clustered 384-dim vectors, 200 queries, 2 cores shared with other work; p95 is mostly the scheduler):
- before, hand-written k-means inverted file (load 4.7 to 5.9, numpy exact scan p50 33 ms in the same run):
  p50 1.03 / p95 16.8 ms, recall@10 0.995; filtered (industry, 1 of 5) p50 2.3 / p95 18.6 ms, recall 0.988.
- after, this module (load 8.6 to 8.9, numpy exact scan p50 45 ms in the same run): p50 1.26 / p95 21.7 ms,
  recall@10 0.9965; filtered p50 1.8 / p95 21.9 ms, recall 0.977. Engine alone (--paths 100000): inverted
  file p50 0.91 / p95 6.6 ms, recall 0.999, built in 0.9 s; flat prefix scan p50 6.6 / p95 14.3 ms.
Same figures within the noise of a loaded machine.

At 1M rows (the scale run's `similar`: p50 77 / p95 144 ms at 10 clients) the flat inverted file was both
slow and, on real vectors, inexact: the static tier's contact vectors form a continuum, not clusters, so a
record's neighbours spread over many lists (recall@10 0.84 at 6% probed, 0.93 at 14%, on 200k generated
contacts; exact flat scan of the 96-dim prefix + rerank: 1.0, so the prefix is not the problem). Probing a
quarter of the lists of 4-bit codes costs about what 6% of float lists did and finds them (0.966); the
record masked out through a bitmap had cost 3x the query. benchmarks/similar_latency.py has the figures
(README "Similar entities, search, duplicates").
"""

from __future__ import annotations

import os
import threading

import numpy as np

# Up to this size the full vectors are scanned exactly (about 1 ms at 5k x 384 on one thread).
EXACT_MAX_ROWS = 5_000
# From this size an inverted file replaces the flat coarse scan (the flat scan is bound by memory bandwidth:
# 5.7 / 9.5 ms p50 / p95 at 100k under load, against well under 1 ms for the inverted file).
IVF_MIN_ROWS = 50_000
# Candidates taken from the coarse index for the exact rerank: max(RERANK_FACTOR * k, RERANK_MIN).
RERANK_FACTOR = 10
RERANK_MIN = 100
# ``quantized`` indexes (the similarity store's, from IVF_MIN_ROWS rows) hold the coarse vectors as 4-bit
# product-quantization codes, PQ_DIMS_PER_CODE dimensions per code, scanned by faiss's fast-scan kernels
# (IndexIVFPQFastScan: 48 bytes a row at 96 dimensions instead of 384, about 5x faster per list scanned). A
# query probes QUANTIZED_PROBE_SHARE of the lists and takes QUANTIZED_PREFIX_POOL candidates from the codes;
# the best max(RERANK_FACTOR * k, QUANTIZED_RERANK_MIN) of them by the exact prefix (float32, in memory
# anyway) are reranked on the full vectors. On the 1M run's served contacts (benchmarks/similar_latency.py
# --lancedb, 300 queries, one run at load 3) the codes limit recall more than the probes do: a quarter
# probed and 300 code candidates reranked on the full vectors gave recall@10 0.971 at 3.8 ms CPU p50 (with
# 100 candidates: 0.911); 3/16 probed and 600 code candidates narrowed to 100 on the prefix: 0.964 at 3.0 ms.
PQ_DIMS_PER_CODE = 1
QUANTIZED_PROBE_SHARE = 0.1875
QUANTIZED_RERANK_MIN = 100
QUANTIZED_PREFIX_POOL = 600
# HOLOCRM_SIMILAR_INDEX=hnsw (QUANTIZED_GRAPH) makes the ``quantized`` indexes an HNSW graph over the float32
# prefix instead (faiss IndexHNSWFlat, inner product, built on all cores, queried on one): its distances are
# the exact prefix, so its best max(RERANK_FACTOR * k, QUANTIZED_RERANK_MIN) candidates go straight to the
# full-vector rerank. Off by default: on the 1M run's served contacts (benchmarks/similar_latency.py --lancedb
# --hnsw, 300 queries, load 3-4) M 16 / efConstruction 40 built in 156-209 s (+510 MB) and found recall@10
# 0.76 at efSearch 128 (1.0 ms CPU p50) and 0.82 at 256 (1.5 ms), against the inverted file's 0.964 at 3.0 ms;
# the prefixes normalised first: the same (0.77 / 0.83); M 32 (241 s): 0.93 at 2.2 ms, 0.95 at 4.2 ms. HNSW_M / HNSW_EF_CONSTRUCTION / HNSW_EF_SEARCH: M
# links a node, the beam while building, the beam while searching (at least the candidates wanted).
QUANTIZED_GRAPH = os.environ.get("HOLOCRM_SIMILAR_INDEX", "ivfpq").lower() == "hnsw"
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 128
# The all-rows neighbour query (duplicate blocking) scans about this many rows per row in an inverted file
# (nprobe from the mean list size), in batches of NEIGHBOUR_BATCH rows: its time grows with n, not n^1.5,
# and the gathered candidate vectors of a batch stay near 100 MB.
NEIGHBOUR_SCAN_ROWS = 2_000
NEIGHBOUR_BATCH = 2048
# A filter letting through at most this share of the rows is answered by an exact scan of those rows.
SELECTIVE_FILTER_SHARE = 0.05

_THREAD = threading.local()


def _faiss():
    import faiss

    return faiss


def _single_threaded(faiss) -> None:
    """One OpenMP thread for this thread's single queries: on shared cores a thread team per query only
    contends. OpenMP's thread count is per calling thread (a new thread starts at the machine's default), so
    each serving thread sets it once and concurrent queries run side by side without a lock (faiss releases
    the GIL while it searches)."""
    if not getattr(_THREAD, "single", False):
        faiss.omp_set_num_threads(1)
        _THREAD.single = True


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite scores, best first."""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    index = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    index = index[np.isfinite(scores[index])]
    return index[np.argsort(-scores[index], kind="stable")]


# OpenBLAS runs a matrix-vector product on all cores from about 460k elements; on 2 cores shared with other
# work that cost a full scheduler slice (12 ms for a 10k x 384 product that takes 1 ms on one thread), so
# products are computed in blocks below that size, each on one thread.
_BLOCK_ELEMENTS = 393_216


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """matrix @ vector, in single-threaded blocks (see ``_BLOCK_ELEMENTS``)."""
    rows = max(1, _BLOCK_ELEMENTS // max(1, matrix.shape[1]))
    if len(matrix) <= rows:
        return (matrix @ vector).astype(np.float32, copy=False)
    out = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), rows):
        out[start : start + rows] = matrix[start : start + rows] @ vector
    return out


class VectorIndex:
    """Nearest rows by cosine (inner product of unit vectors), with masks; see the module docstring.

    ``vectors``: (n, d) unit rows, float32 or float16 (float16 halves memory for the rerank, cosine error
    about 1e-3). ``coarse``: optional (n, d') unit rows the candidates come from (default: the vectors).
    ``ivf_min_rows``: the size from which an inverted file replaces the flat coarse scan (default
    ``IVF_MIN_ROWS``; duplicate blocking, which queries every row, switches earlier).
    """

    def __init__(
        self,
        vectors: np.ndarray,
        coarse: np.ndarray | None = None,
        seed: int = 0,
        quantized: bool = False,
        ivf_min_rows: int | None = None,
    ):
        self.vectors = vectors if vectors.dtype in (np.float16, np.float32) else vectors.astype(np.float32)
        self.coarse = np.ascontiguousarray(self.vectors if coarse is None else coarse, dtype=np.float32)
        self.kind = "exact"
        self.coarse_index = None
        self.nprobe = 0
        self.rerank_min = RERANK_MIN
        self.prefix_pool = 0
        self.ef_search = 0
        n = len(self.vectors)
        if n > EXACT_MAX_ROWS:
            faiss = _faiss()
            dim = self.coarse.shape[1]
            if n < (IVF_MIN_ROWS if ivf_min_rows is None else ivf_min_rows):
                self.coarse_index = faiss.IndexFlatIP(dim)
                self.kind = "flat coarse scan + exact rerank"
            elif quantized and QUANTIZED_GRAPH:
                self._build_graph(faiss, dim)
                return
            else:
                lists = max(16, int(round(np.sqrt(n))))
                quantizer = faiss.IndexFlatIP(dim)
                quantized = quantized and dim % PQ_DIMS_PER_CODE == 0
                if quantized:
                    # built on this thread's one OpenMP thread: a team of two on shared, busy cores spins
                    # (the 96 small PQ trainings took 132 s instead of 3 s at load 10)
                    _single_threaded(faiss)
                    codes = dim // PQ_DIMS_PER_CODE
                    index = faiss.IndexIVFPQFastScan(
                        quantizer, dim, lists, codes, 4, faiss.METRIC_INNER_PRODUCT
                    )
                else:
                    index = faiss.IndexIVFFlat(quantizer, dim, lists, faiss.METRIC_INNER_PRODUCT)
                rng = np.random.default_rng(seed)
                per_list = 40 if quantized else 48  # faiss asks for 39 a list
                sample = self.coarse[np.sort(rng.choice(n, min(n, per_list * lists), replace=False))]
                index.cp.seed = seed
                if (
                    quantized
                ):  # a large share of the lists is probed: a coarser k-means does (train 59 -> 22 s at 1M)
                    index.cp.niter = 10
                index.train(sample)
                if quantized:
                    self.nprobe = max(16, int(np.ceil(lists * QUANTIZED_PROBE_SHARE)))
                    self.rerank_min = QUANTIZED_RERANK_MIN
                    self.prefix_pool = QUANTIZED_PREFIX_POOL
                    self.kind = (
                        f"faiss inverted file of {codes} x 4-bit PQ codes, fast scan ({lists} lists, "
                        f"{self.nprobe} probed) + exact rerank"
                    )
                else:
                    # about 6% of the lists: recall@10 0.99 at 100k clustered rows before the rerank
                    self.nprobe = max(16, lists // 16)
                    self.kind = f"faiss inverted file ({lists} lists, {self.nprobe} probed) + exact rerank"
                self.coarse_index = index
            self.coarse_index.add(self.coarse)

    # -- written once, read by every server process (holocrm_core.store.EntityVectors.save / open) ----------
    SAVED = ("kind", "nprobe", "rerank_min", "prefix_pool", "ef_search")

    def saved_state(self) -> dict:
        """What ``restore`` needs beside the arrays and the faiss index file (``coarse_index``)."""
        return {name: getattr(self, name) for name in self.SAVED}

    @classmethod
    def restore(cls, vectors: np.ndarray, coarse: np.ndarray, coarse_index, state: dict) -> VectorIndex:
        """The index as it was built (``saved_state``), over ``vectors`` / ``coarse`` as given (memory-mapped
        arrays stay mapped) and the faiss index read back (``faiss.read_index``): the same answers, without
        the k-means training and the adding of every row (23 s for 1M rows on this machine)."""
        index = cls.__new__(cls)
        index.vectors = vectors
        index.coarse = coarse
        index.coarse_index = coarse_index
        for name in cls.SAVED:
            setattr(index, name, state[name])
        return index

    def _build_graph(self, faiss, dim: int) -> None:
        """The HNSW coarse index (see ``QUANTIZED_GRAPH``), built on all cores, queried on one."""
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        try:
            index.add(self.coarse)
        finally:
            faiss.omp_set_num_threads(1)
            _THREAD.single = True
        self.coarse_index = index
        self.ef_search = HNSW_EF_SEARCH
        self.rerank_min = QUANTIZED_RERANK_MIN
        self.kind = (
            f"faiss HNSW graph over the prefix (M {HNSW_M}, efConstruction {HNSW_EF_CONSTRUCTION}, "
            f"efSearch {self.ef_search}) + exact rerank"
        )

    def __len__(self) -> int:
        return len(self.vectors)

    def _full(self, positions: np.ndarray) -> np.ndarray:
        return self.vectors[positions].astype(np.float32, copy=False)

    def search(
        self,
        query: np.ndarray,
        k: int,
        coarse_query: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        exclude=(),
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, cosine similarities) of the ``k`` rows nearest to ``query``, best first.

        ``mask``: rows allowed (None: all); ``exclude``: positions never returned (the query record itself).
        ``coarse_query``: the query in the coarse space (default: ``query`` when the spaces agree).
        """
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if k <= 0 or len(self) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        exclude = np.unique(np.asarray(list(exclude), dtype=np.int64))
        if len(exclude) and mask is not None:
            mask = mask.copy()
            mask[exclude] = False
        # Without a filter the excluded rows (the query record itself) are dropped from the answer, not masked:
        # a mask makes faiss test every row it scans against a bitmap and widens the probes (measured at 1M
        # rows: 13 ms p50 against 4.5 ms for the same answer, benchmarks/similar_latency.py).
        dropped = exclude if mask is None else exclude[:0]
        allowed = len(self) - len(dropped) if mask is None else int(mask.sum())
        if allowed <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if self.coarse_index is None or allowed <= SELECTIVE_FILTER_SHARE * len(self):
            positions = np.arange(len(self)) if mask is None else np.flatnonzero(mask)
            scores = _dot(
                self.vectors if mask is None else self.vectors[positions], query.astype(self.vectors.dtype)
            ).astype(np.float32, copy=False)
            scores[dropped] = -np.inf  # positions are the rows themselves when nothing is masked
            best = _top(scores, k)
            return positions[best], scores[best].astype(np.float32)
        if coarse_query is None:
            coarse_query = query if self.coarse.shape[1] == len(query) else None
        if coarse_query is None:
            raise ValueError("this index ranks candidates in a coarse space: pass coarse_query")
        coarse_query = np.asarray(coarse_query, dtype=np.float32)
        want = max(RERANK_FACTOR * k, self.rerank_min)
        candidates = self._coarse_candidates(
            coarse_query,
            max(want, self.prefix_pool) + len(dropped),
            mask,
            allowed if mask is not None else len(self),
        )
        if len(dropped) == 1:  # the record itself: one comparison (np.isin costs 0.5 ms a query at 1M)
            candidates = candidates[candidates != dropped[0]]
        elif len(dropped):
            candidates = candidates[~np.isin(candidates, dropped)]
        if len(candidates) > want:  # the codes' pool narrowed on the exact prefix (``prefix_pool``)
            prefix = self.coarse[candidates] @ coarse_query
            candidates = candidates[np.argpartition(-prefix, want - 1)[:want]]
        scores = self._full(candidates) @ query
        best = _top(scores, k)
        return candidates[best], scores[best]

    def _coarse_candidates(
        self, query: np.ndarray, want: int, mask: np.ndarray | None, allowed: int
    ) -> np.ndarray:
        faiss = _faiss()
        params = None
        bitmap = None
        if mask is not None:
            bitmap = np.packbits(mask, bitorder="little")  # kept alive while faiss reads it
            selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bitmap))
        want = min(want, allowed)
        nprobe = self.nprobe
        if nprobe and mask is not None:
            # a filter moves the nearest passing rows further out: widen the scan with its selectivity
            nprobe = min(self.coarse_index.nlist, nprobe * min(4, int(np.ceil(np.sqrt(len(self) / allowed)))))
        ef = max(self.ef_search, want)
        if self.ef_search and mask is not None:  # the same widening for the graph's beam
            ef = min(len(self), ef * min(4, int(np.ceil(np.sqrt(len(self) / allowed)))))
        while True:
            if self.ef_search:
                params = (
                    faiss.SearchParametersHNSW(efSearch=ef, sel=selector)
                    if mask is not None
                    else faiss.SearchParametersHNSW(efSearch=ef)
                )
            elif self.nprobe:
                params = (
                    faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
                    if mask is not None
                    else faiss.SearchParametersIVF(nprobe=nprobe)
                )
            elif mask is not None:
                params = faiss.SearchParameters(sel=selector)
            _single_threaded(faiss)
            _, found = self.coarse_index.search(query[None, :], want, params=params)
            found = found[0]
            found = found[found >= 0]
            if self.ef_search:
                if len(found) >= want or ef >= len(self):
                    del bitmap
                    return found.astype(np.int64)
                ef = min(len(self), ef * 2)  # the filter cut the beam short
                continue
            if len(found) >= want or not self.nprobe or nprobe >= self.coarse_index.nlist:
                del bitmap
                return found.astype(np.int64)
            nprobe = min(self.coarse_index.nlist, nprobe * 2)  # too few passing rows in the nearest lists

    def neighbours(self, k: int, min_similarity: float = -1.0) -> np.ndarray:
        """(i, j) pairs: each row with its ``k`` nearest other rows at cosine >= ``min_similarity``.

        The all-rows query duplicate blocking needs, batched through the same coarse index and rerank.
        """
        n = len(self)
        if n < 2:
            return np.zeros((0, 2), dtype=np.int64)
        k = min(k, n - 1)
        out = []
        if self.coarse_index is None:
            full = self._full(np.arange(n))
            for start in range(0, n, 2048):
                sims = full[start : start + 2048] @ full.T
                rows = np.arange(start, min(start + 2048, n))
                sims[np.arange(len(rows)), rows] = -np.inf
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
                keep = np.take_along_axis(sims, top, axis=1) >= min_similarity
                out.append(
                    np.stack(
                        [np.repeat(rows, k)[keep.reshape(-1)], top.reshape(-1)[keep.reshape(-1)]], axis=1
                    )
                )
            return np.concatenate(out)
        faiss = _faiss()
        want = min(n, max(2 * (k + 1), 64 if self.prefix_pool else 32))  # 4-bit codes: a wider pool
        nprobe = self.nprobe
        if nprobe:  # a bounded scan per row: about NEIGHBOUR_SCAN_ROWS rows, whatever the table's size
            nprobe = min(nprobe, max(1, int(np.ceil(NEIGHBOUR_SCAN_ROWS * self.coarse_index.nlist / n))))
        params = faiss.SearchParametersIVF(nprobe=nprobe) if nprobe else None
        # one thread: on two cores shared with other work, OpenMP's spinning threads cost more than they
        # bring (measured: the 2-thread all-rows query of 100k rows took 419 s under load 11)
        _single_threaded(faiss)
        for start in range(0, n, NEIGHBOUR_BATCH):
            rows = np.arange(start, min(start + NEIGHBOUR_BATCH, n))
            _, found = self.coarse_index.search(self.coarse[rows], want, params=params)
            found = np.where(found < 0, rows[:, None], found)
            sims = np.einsum(
                "ij,ikj->ik", self._full(rows), self._full(found.reshape(-1)).reshape(len(rows), want, -1)
            )
            sims[found == rows[:, None]] = -np.inf
            top = np.argsort(-sims, axis=1)[:, :k]
            best = np.take_along_axis(found, top, axis=1)
            keep = np.take_along_axis(sims, top, axis=1) >= min_similarity
            out.append(
                np.stack([np.repeat(rows, k)[keep.reshape(-1)], best.reshape(-1)[keep.reshape(-1)]], axis=1)
            )
        return np.concatenate(out)
