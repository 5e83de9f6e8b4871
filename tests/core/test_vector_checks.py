"""The embedding step's vector checks read the vectors in slices (``quality.vector_checks``): the same
outcomes as ``vector_dimension`` and ``unit_norm_no_nan`` on one matrix of every vector."""

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
