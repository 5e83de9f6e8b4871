"""The embedding step holds fewer copies of its vectors (memory at 1M contacts): the checks read them in
slices (``quality.vector_checks``) and long texts' vectors are normalised in place, with the same outcomes
and the same vectors as on whole matrices."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from holocrm_core import quality
from holocrm_core.embedding import DIM, vectors_matrix


def _frame(matrix: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"vector": pl.Series(matrix, dtype=pl.Array(pl.Float32, matrix.shape[1]))})


def _whole(frame: pl.DataFrame, dimension: int):
    matrix = vectors_matrix(frame)
    return [quality.vector_dimension(matrix, dimension), quality.unit_norm_no_nan(matrix)]


@pytest.mark.parametrize("rows", [1, 7, 100, 65_536])
@pytest.mark.parametrize("case", ["unit", "one_off", "nan", "inf_then_off", "empty"])
def test_sliced_vector_checks_equal_the_whole_matrix_checks(case, rows):
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=(0 if case == "empty" else 250, DIM)).astype(np.float32)
    if len(matrix):
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    if case == "one_off":
        matrix[133] *= 1.01  # past the tolerance, in a later slice
    if case == "nan":
        matrix[249, 5] = np.nan  # the last row
    if case == "inf_then_off":
        matrix[3, 0] = np.inf
        matrix[200] *= 2.0
    frame = _frame(matrix)
    got = quality.vector_checks(frame, DIM, rows=rows)
    want = _whole(frame, DIM)
    for a, b in zip(got, want, strict=True):
        assert (a.name, a.passed) == (b.name, b.passed)
        assert a.metadata.keys() == b.metadata.keys()
        for key, value in b.metadata.items():
            assert a.metadata[key] == value or (value != value and a.metadata[key] != a.metadata[key])
    assert got[1].passed == (case in ("unit", "empty"))


def test_sliced_checks_see_a_wrong_dimension():
    frame = _frame(np.eye(4, 8, dtype=np.float32))
    got = quality.vector_checks(frame, DIM, rows=3)
    assert not got[0].passed and got[0].metadata == {"dimension": 8} and got[1].passed


class HashEmbedder:
    """Deterministic unit vectors from each text's bytes (no model): enough to compare two code paths."""

    def encode(self, texts):
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            rng = np.random.default_rng(abs(hash(text)) % 2**32)
            out[i] = rng.normal(size=DIM)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def _reference_embed_texts(embedder, texts):
    """The two-copy version this replaced: gather, then normalise into a new array."""
    from holocrm_core.embedding import _normalise
    from holocrm_core.text import chunk_spans

    spans = [chunk_spans(t) for t in texts]
    counts = np.array([len(s) for s in spans])
    pieces = [t[a:b] for t, s in zip(texts, spans, strict=True) for a, b in s]
    piece_vectors = embedder.encode(pieces)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    vectors = piece_vectors[first]
    for i in np.flatnonzero(counts > 1):
        vectors[i] = piece_vectors[first[i] : first[i] + counts[i]].sum(axis=0)
    chunks, offset = [], 0
    for s in spans:
        chunks.append(piece_vectors[offset : offset + len(s)] if len(s) > 1 else None)
        offset += len(s)
    return _normalise(vectors), chunks


def test_long_texts_normalised_in_place_give_the_same_vectors(monkeypatch):
    from holocrm_core import embedding

    monkeypatch.setattr(embedding, "PROGRESS_SLICE", 7)
    words = [f"word{i}" for i in range(400)]
    texts = [" ".join(words[: 5 + 37 * k % 390]) for k in range(60)]  # short ones and several chunks long
    assert sum(len(t) > 900 for t in texts) >= 10
    vectors, chunks, spans = embedding._embed_texts(HashEmbedder(), texts)
    want, want_chunks = _reference_embed_texts(HashEmbedder(), texts)
    assert vectors.dtype == np.float32 and np.array_equal(vectors, want)
    for got, ref, span in zip(chunks, want_chunks, spans, strict=True):
        assert (got is None) == (ref is None) == (span is None)
        if got is not None:
            assert np.array_equal(got, ref) and len(span) == len(got)
