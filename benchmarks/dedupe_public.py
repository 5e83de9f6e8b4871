"""Duplicate detection on the public sets, next to a plain exact-name baseline, printed as JSON: the held-out
check of the dedupe engine's weights (nothing is tuned on these sets).

- within one table (febrl dataset1, dataset3; soc_sec_id dropped): the model ``duplicate_candidates`` uses
  (random-pair prior, term frequencies) on hand-built person comparators (``semantic_quality.febrl``), and
  the baseline "same given name and surname";
- across two sources (febrl dataset4a <-> 4b, dblp_acm, abt_buy), staged through a YAML mapping and linked
  by ``link_sources`` (``semantic_quality.two_source_set``), and the baseline "same name" (title for
  dblp_acm; trimmed, lower case; febrl: given name and surname), best-one-per-record not applied.

    nice -n 10 .venv/bin/python benchmarks/dedupe_public.py [--sets febrl1 febrl3 febrl4 abt_buy dblp_acm]

Public data is read from ../shared/data (override with HOLOCRM_SHARED_DATA); a set whose data is absent says
"skipped". F1 at the threshold each set's benchmark uses (0.5).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import polars as pl  # noqa: E402
from semantic_quality import SHARED, TWO_SOURCE_SETS, _prf, febrl, two_source_set  # noqa: E402

WITHIN = {"febrl1": "dataset1", "febrl3": "dataset3"}
ACROSS = {"febrl4": "febrl_dataset4a_4b", "abt_buy": "abt_buy", "dblp_acm": "dblp_acm"}


def _folded(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()


def within_baseline(dataset: str) -> dict:
    """Every pair of records with the same (trimmed, lower-case, non-empty) given name and surname."""
    path = SHARED / "febrl" / f"{dataset}.csv"
    if not path.exists():
        return {"skipped": f"{path} absent"}
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.rename({c: c.strip() for c in frame.columns}).with_row_index("row")
    entity = frame.get_column("rec_id").str.extract(r"rec-(\d+)-").to_list()
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(entity):
        groups.setdefault(e, []).append(i)
    truth = {(a, b) for rows in groups.values() for k, a in enumerate(rows) for b in rows[k + 1 :]}
    key = pl.concat_str([_folded("given_name"), _folded("surname")], separator="|")
    predicted = set()
    named = frame.filter(_folded("given_name").fill_null("") != "", _folded("surname").fill_null("") != "")
    for rows in named.group_by(key.alias("k")).agg("row").get_column("row").to_list():
        rows = sorted(rows)
        predicted.update((a, b) for k, a in enumerate(rows) for b in rows[k + 1 :])
    return _prf(predicted, truth)


def across_baseline(name: str) -> dict:
    """Every (left, right) pair with the same (trimmed, lower-case, non-empty) name."""
    spec = TWO_SOURCE_SETS[name]
    folder = SHARED / spec["folder"]
    if not (folder / spec["left"]).exists():
        return {"skipped": f"{folder / spec['left']} absent"}

    def read(file_name):
        frame = pl.read_csv(folder / file_name, infer_schema=False, encoding="utf8-lossy")
        frame = frame.rename({c: c.strip() for c in frame.columns})
        if "given_name" in frame.columns:
            frame = frame.with_columns(
                pl.concat_str([_folded("given_name"), _folded("surname")], separator="|").alias("_key")
            )
        else:
            column = "title" if "title" in frame.columns else "name"
            frame = frame.with_columns(_folded(column).alias("_key"))
        ids = "rec_id" if "rec_id" in frame.columns else "id"
        return frame.select(pl.col(ids).str.strip_chars().alias("id"), "_key").filter(
            pl.col("_key").is_not_null() & (pl.col("_key") != "") & (pl.col("_key") != "|")
        )

    left, right = read(spec["left"]), read(spec["right"])
    predicted = set(left.join(right, on="_key").select("id", "id_right").rows())
    if spec["truth"] is None:  # febrl: rec-<n>-org in 4a pairs with rec-<n>-dup-0 in 4b
        k = lambda f: f.select("id", pl.col("id").str.extract(r"rec-(\d+)-").alias("k"))  # noqa: E731
        truth = set(k(left).join(k(right), on="k").select("id", "id_right").rows())
    else:
        file_name, a, b = spec["truth"]
        frame = pl.read_csv(folder / file_name, infer_schema=False, encoding="utf8-lossy")
        truth = {(str(x).strip(), str(y).strip()) for x, y in frame.select(a, b).rows()}
    return _prf(predicted, truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="*", default=list(WITHIN) + list(ACROSS))
    args = parser.parse_args()
    report = {}
    for name in args.sets:
        started, cpu = time.perf_counter(), time.process_time()
        if name in WITHIN:
            engine = febrl(WITHIN[name], prior="records", term_frequencies=True)
            baseline = within_baseline(WITHIN[name])
        elif name in ACROSS:
            engine = two_source_set(ACROSS[name])
            engine.pop("example_reasons", None)
            baseline = across_baseline(ACROSS[name])
        else:
            raise SystemExit(f"unknown set {name!r}: one of {sorted(WITHIN) + sorted(ACROSS)}")
        report[name] = {
            "engine": engine,
            "baseline_same_name": baseline,
            "cpu_seconds": round(time.process_time() - cpu, 1),
            "seconds": round(time.perf_counter() - started, 1),
        }
    report["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
