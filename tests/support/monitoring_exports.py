"""Generated exports for the monitoring tests: one export, the same world re-exported, a shifted one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import polars as pl

SHARED_DATA = Path(
    os.environ.get("HOLOCRM_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
).resolve()
IBM_WIN_LOSS = SHARED_DATA / "ibm_sales_win_loss" / "WA_Fn-UseC_-Sales-Win-Loss.csv"
IFOOD = SHARED_DATA / "ifood_campaign" / "ml_project1_data.csv"


def generated_export(folder: Path, n_contacts: int = 1500, seed: int = 7) -> Path:
    from holocrm_core.synth import generate_export

    export = folder / "export"
    generate_export(
        export, n_contacts=n_contacts, seed=seed, truth_dir=folder / "truth", with_attachment_files=False
    )
    return export


def edited_export(source: Path, target: Path, edits: dict) -> Path:
    """A copy of an export folder with some CSV files rewritten by ``edits[file stem](frame, rng)``.

    Every cell is read and written as text, so what is not edited reaches the reader byte-for-byte alike.
    """
    shutil.copytree(source, target)
    rng = np.random.default_rng(11)
    for stem, edit in edits.items():
        path = target / f"{stem}.csv"
        frame = pl.read_csv(path, infer_schema=False)
        edit(frame, rng).write_csv(path)
    return target


def shift_industry(share: float, to: str = "software"):
    """Move ``share`` of the companies (at random) into one industry."""

    def edit(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        moved = pl.Series(rng.random(frame.height) < share)
        return frame.with_columns(
            pl.when(moved).then(pl.lit(to)).otherwise(pl.col("industry")).alias("industry")
        )

    return edit


def double_values(frame: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    doubled = (pl.col("value").cast(pl.Float64, strict=False) * 2).round(2).cast(pl.String)
    return frame.with_columns(pl.coalesce(doubled, pl.col("value")).alias("value"))  # "twelve grand" stays


def resampled(frame: pl.DataFrame, id_column: str, seed: int) -> pl.DataFrame:
    """The same distribution re-drawn: rows sampled with replacement, every row under a new id."""
    drawn = frame.sample(n=frame.height, with_replacement=True, seed=seed)
    return drawn.with_columns(pl.format("NEW-{}", pl.int_range(pl.len()).cast(pl.String)).alias(id_column))
