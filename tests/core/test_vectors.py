"""The vector engine (holocrm_core.vectors) on its own: the HNSW graph, the quantized inverted file, exclusion,
threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from holocrm_core import vectors as engine


def _clustered(n: int, seed: int = 3, dim: int = 96) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(60, dim))
    vectors = centres[rng.integers(0, 60, n)] + 0.6 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _exact(vectors: np.ndarray, q: int, k: int = 10, allowed: np.ndarray | None = None) -> set[int]:
    sims = vectors @ vectors[q]
    if allowed is not None:
        sims = np.where(allowed, sims, -np.inf)
    sims[q] = -np.inf
    return set(np.argsort(-sims)[:k].tolist())


@pytest.fixture
def inverted_file(monkeypatch):
    monkeypatch.setattr(engine, "EXACT_MAX_ROWS", 0)
    monkeypatch.setattr(engine, "IVF_MIN_ROWS", 0)
    monkeypatch.setattr(engine, "QUANTIZED_GRAPH", False)  # the IVF-PQ path (the default)


def test_the_quantized_inverted_file_finds_the_exact_neighbours_without_the_record(inverted_file):
    vectors = _clustered(4000)
    index = engine.VectorIndex(vectors, quantized=True)
    assert "4-bit PQ codes" in index.kind
    assert index.nprobe >= int(index.coarse_index.nlist * engine.QUANTIZED_PROBE_SHARE)
    assert index.prefix_pool == engine.QUANTIZED_PREFIX_POOL  # the codes' pool, narrowed on the exact prefix
    recall, filtered = [], []
    allowed = np.arange(len(vectors)) % 3 != 0
    for q in range(0, 600, 15):
        found, sims = index.search(vectors[q], 10, exclude=[q])
        assert len(found) == 10 and q not in found.tolist()
        assert np.all(np.diff(sims) <= 1e-6)  # best first
        np.testing.assert_allclose(sims, vectors[found] @ vectors[q], atol=1e-5)  # exact cosines
        recall.append(len(set(found.tolist()) & _exact(vectors, q)) / 10)
        found, _ = index.search(vectors[q], 10, mask=allowed, exclude=[q])
        assert len(found) == 10 and allowed[found].all() and q not in found.tolist()
        filtered.append(len(set(found.tolist()) & _exact(vectors, q, allowed=allowed)) / 10)
    assert np.mean(recall) >= 0.95 and np.mean(filtered) >= 0.95


@pytest.mark.parametrize("quantized", [False, True])
def test_excluded_rows_never_come_back_and_k_rows_still_do(inverted_file, quantized):
    vectors = _clustered(3000, seed=4)
    index = engine.VectorIndex(vectors, quantized=quantized)
    q = 7
    nearest, _ = index.search(vectors[q], 5)
    assert nearest[0] == q  # the record is its own nearest row
    skip = nearest[:3].tolist()
    found, _ = index.search(vectors[q], 5, exclude=skip)
    assert len(found) == 5 and not set(skip) & set(found.tolist())
    assert found[:2].tolist() == nearest[3:5].tolist()
    # every row excluded but one: the one left comes back, alone
    everyone_else = [i for i in range(len(vectors)) if i != 11]
    assert index.search(vectors[q], 5, exclude=everyone_else)[0].tolist() == [11]


def test_exact_path_excludes_without_a_mask():
    vectors = _clustered(500, seed=5)
    index = engine.VectorIndex(vectors)
    assert index.kind == "exact"
    found, sims = index.search(vectors[0], 4, exclude=[0])
    assert 0 not in found.tolist() and set(found.tolist()) == _exact(vectors, 0, 4)
    assert np.isfinite(sims).all()
    assert index.search(vectors[0], 3, exclude=list(range(500)))[0].tolist() == []


def test_concurrent_queries_answer_as_serial_ones(inverted_file):
    """No lock serialises the faiss scans any more: threads searching at once get the serial answers."""
    vectors = _clustered(3000, seed=6)
    index = engine.VectorIndex(vectors, quantized=True)
    queries = list(range(0, 400, 4))
    serial = {q: index.search(vectors[q], 10, exclude=[q])[0].tolist() for q in queries}
    answers: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def work(part):
        try:
            for q in part:
                answers[q] = index.search(vectors[q], 10, exclude=[q])[0].tolist()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(queries[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and answers == serial


@pytest.fixture(scope="module")
def graph():
    """60k clustered rows: above IVF_MIN_ROWS, so with HOLOCRM_SIMILAR_INDEX=hnsw the similarity store's
    (quantized) index is the HNSW graph."""
    vectors = _clustered(60_000, seed=8)
    assert len(vectors) > engine.IVF_MIN_ROWS
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "QUANTIZED_GRAPH", True)
        index = engine.VectorIndex(vectors, quantized=True)
    return vectors, index


def test_the_hnsw_graph_finds_the_exact_neighbours_without_the_record(graph):
    vectors, index = graph
    assert "HNSW" in index.kind and index.ef_search == engine.HNSW_EF_SEARCH
    recall = []
    for q in range(0, 60_000, 600):
        found, sims = index.search(vectors[q], 10, exclude=[q])
        assert len(found) == 10 and q not in found.tolist()
        assert np.all(np.diff(sims) <= 1e-6)  # best first
        np.testing.assert_allclose(sims, vectors[found] @ vectors[q], atol=1e-5)  # exact cosines
        recall.append(len(set(found.tolist()) & _exact(vectors, q)) / 10)
    assert np.mean(recall) >= 0.95


@pytest.mark.parametrize("share", [0.5, 0.1])  # both above SELECTIVE_FILTER_SHARE: the graph answers
def test_the_hnsw_graph_honours_filters(graph, share):
    vectors, index = graph
    allowed = np.random.default_rng(2).random(len(vectors)) < share
    recall = []
    for q in range(3, 60_000, 1200):
        found, _ = index.search(vectors[q], 10, mask=allowed, exclude=[q])
        assert len(found) == 10 and allowed[found].all() and q not in found.tolist()
        recall.append(len(set(found.tolist()) & _exact(vectors, q, allowed=allowed)) / 10)
    assert np.mean(recall) >= 0.95


def test_the_hnsw_graph_excludes_rows_and_answers_selective_filters_exactly(graph):
    vectors, index = graph
    q = 5
    nearest, _ = index.search(vectors[q], 5)
    assert nearest[0] == q  # the record is its own nearest row
    found, _ = index.search(vectors[q], 5, exclude=nearest[:3].tolist())
    assert found[:2].tolist() == nearest[3:5].tolist() and not set(nearest[:3].tolist()) & set(found.tolist())
    allowed = np.zeros(len(vectors), dtype=bool)
    allowed[::50] = True  # 2% of the rows: the exact scan of those rows
    found, _ = index.search(vectors[q], 10, mask=allowed, exclude=[q])
    assert set(found.tolist()) == _exact(vectors, q, allowed=allowed)
