"""The note rater learns buying signals and warnings from outcomes; single-record and batch scoring agree."""

from __future__ import annotations

import numpy as np
import polars as pl

from holocrm_core.scoring.calibration import ece_noise_floor, expected_calibration_error
from holocrm_core.scoring.notes import NoteRater
from tests.support.notes import note_records


def test_rater_finds_signals_and_warnings_and_both_paths_agree():
    record, notes, y = note_records(1500)
    rater = NoteRater().fit(record, notes, y, 1500)
    probes = [
        "Call with Ana. Budget approved for this quarter.",
        "Call with Ben. Went with a competitor for now.",
        "Call with Chen. Walked through the demo.",
    ]
    signal, warning = rater.rate(probes)
    assert signal[0] > 0.5 and warning[0] < 0.5
    assert warning[1] > 0.5 and signal[1] < 0.5
    assert signal[2] < 0.5 and warning[2] < 0.5
    batch_signal, batch_warning = rater.rate_series(pl.Series(notes[:200]))
    one_signal, one_warning = rater.rate(notes[:200])
    np.testing.assert_allclose(batch_signal, one_signal, atol=1e-9)
    np.testing.assert_allclose(batch_warning, one_warning, atol=1e-9)
    assert {"budget approved", "competitor"} <= set(rater.phrase_weights())


def test_single_record_path_matches_the_batch_path():
    from holocrm_core.outcomes import build_outcome_dataset
    from holocrm_core.scoring import train_scorer
    from tests.support.crm import toy_crm

    tables, _ = toy_crm(900, seed=5)
    trained = train_scorer(build_outcome_dataset(tables), "contact", epochs=6, patience=2)
    rows = trained.validation.head(40)
    batch = trained.scorer.predict_proba(rows)[:, 1]
    single = [trained.scorer.score_record(rows.row(i, named=True)) for i in range(rows.height)]
    np.testing.assert_allclose(single, batch, atol=1e-6)


def test_calibration_gate_allows_for_chance_on_small_slices():
    rng = np.random.default_rng(1)
    p = rng.uniform(0.05, 0.95, 90)
    floor = ece_noise_floor(p)
    assert 0.08 < floor < 0.25  # 90 outcomes: a perfectly calibrated score still shows about 0.1
    assert ece_noise_floor(rng.uniform(0.05, 0.95, 20000)) < 0.02
    y = (rng.random(90) < p).astype(int)
    assert expected_calibration_error(y, p) <= floor
