"""splink 5 (DuckDB backend) on the sets benchmarks/semantic_quality.py scores HoloCRM's own engine on, printed
as JSON: febrl dataset3 (dedupe, soc_sec_id dropped), febrl dataset4a <-> 4b and dblp_acm (two-source links).

splink is not a HoloCRM dependency: this compares the engine with it (docs/architecture.md keeps the
figures). It needs ``splink==5.0.0`` importable, e.g. in a throwaway virtual environment that sees the
project's packages:

    python -m venv /tmp/splenv && .venv/bin/python -c "import site; print(site.getsitepackages()[0])" \
        > /tmp/splenv/lib/python3.11/site-packages/holocrm.pth && /tmp/splenv/bin/pip install splink==5.0.0
    HOLOCRM_SHARED_DATA=../shared/data /tmp/splenv/bin/python benchmarks/splink_quality.py

The recipe is splink's documented one (u by random sampling, the share of matches from deterministic rules,
m by EM sessions blocked on different fields, predictions from several blocking rules) with a pair counted
as a match at probability 0.5, the threshold semantic_quality.py uses for febrl.
"""

from __future__ import annotations

import itertools
import json
import os
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("HOLOCRM_SHARED_DATA", ROOT.parent / "shared" / "data"))
THRESHOLD = 0.5


def _prf(predicted: set, truth: set) -> dict:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "true_pairs": len(truth),
    }


def _clean(frame: pl.DataFrame, id_column: str) -> pl.DataFrame:
    """Trimmed, lower-cased values (the id column only trimmed: the truth files spell ids as given)."""
    frame = frame.rename({c: c.strip() for c in frame.columns})
    return frame.with_columns(
        pl.col(pl.String).exclude(id_column).str.strip_chars().str.to_lowercase().replace("", None),
        pl.col(id_column).str.strip_chars(),
    )


def _febrl_settings(link_type: str):
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    return SettingsCreator(
        link_type=link_type,
        unique_id_column_name="rec_id",
        comparisons=[
            cl.NameComparison("given_name"),
            cl.NameComparison("surname"),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("street_number", [1]),
            cl.JaroWinklerAtThresholds("address_1", [0.95, 0.88]),
            cl.JaroWinklerAtThresholds("address_2", [0.95, 0.88]),
            cl.JaroWinklerAtThresholds("suburb", [0.95, 0.88]),
            cl.DamerauLevenshteinAtThresholds("postcode", [1, 2]),
            cl.ExactMatch("state"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name", "surname"),
            block_on("surname", "date_of_birth"),
            block_on("given_name", "date_of_birth"),
            block_on("postcode", "street_number"),
            block_on("suburb", "address_1"),
            block_on("substr(surname, 1, 2)", "substr(given_name, 1, 2)", "postcode"),
        ],
        retain_intermediate_calculation_columns=False,
    )


def _train_and_predict(linker, deterministic, em_rules) -> pl.DataFrame:
    linker.training.estimate_probability_two_random_records_match(deterministic, recall=0.7)
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=0)
    for rule in em_rules:
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=0.01)
    return pl.from_pandas(predictions.as_pandas_dataframe())


def febrl3() -> dict:
    from splink import DuckDBAPI, Linker, block_on

    path = SHARED / "febrl" / "dataset3.csv"
    if not path.exists():
        return {"skipped": f"{path} absent"}
    started = time.perf_counter()
    frame = _clean(pl.read_csv(path, infer_schema=False), "rec_id").drop("soc_sec_id")
    entity = frame.get_column("rec_id").str.extract(r"rec-(\d+)-").to_list()
    groups: dict[str, list[str]] = {}
    for rec, e in zip(frame.get_column("rec_id").to_list(), entity, strict=True):
        groups.setdefault(e, []).append(rec)
    truth = {tuple(sorted(p)) for recs in groups.values() for p in itertools.combinations(recs, 2)}
    db = DuckDBAPI()
    linker = Linker(db.register(frame.to_pandas()), _febrl_settings("dedupe_only"))
    scored = _train_and_predict(
        linker,
        [block_on("given_name", "surname", "date_of_birth")],
        [block_on("date_of_birth"), block_on("surname"), block_on("postcode")],
    )
    predicted = {
        tuple(sorted(p))
        for p in scored.filter(pl.col("match_probability") >= THRESHOLD).select("rec_id_l", "rec_id_r").rows()
    }
    return {
        "records": len(frame),
        "threshold": THRESHOLD,
        **_prf(predicted, truth),
        "seconds": round(time.perf_counter() - started, 2),
    }


def febrl4() -> dict:
    from splink import DuckDBAPI, Linker, block_on

    left_path, right_path = SHARED / "febrl" / "dataset4a.csv", SHARED / "febrl" / "dataset4b.csv"
    if not left_path.exists():
        return {"skipped": f"{left_path} absent"}
    started = time.perf_counter()
    left = _clean(pl.read_csv(left_path, infer_schema=False), "rec_id").drop("soc_sec_id")
    right = _clean(pl.read_csv(right_path, infer_schema=False), "rec_id").drop("soc_sec_id")
    key = lambda f: f.select("rec_id", pl.col("rec_id").str.extract(r"rec-(\d+)-").alias("k"))  # noqa: E731
    truth = set(key(left).join(key(right), on="k").select("rec_id", "rec_id_right").rows())
    db = DuckDBAPI()
    linker = Linker(
        [db.register(left.to_pandas(), table_name="a"), db.register(right.to_pandas(), table_name="b")],
        _febrl_settings("link_only"),
    )
    scored = _train_and_predict(
        linker,
        [block_on("given_name", "surname", "date_of_birth")],
        [block_on("date_of_birth"), block_on("surname"), block_on("postcode")],
    )
    kept = scored.filter(pl.col("match_probability") >= THRESHOLD)
    predicted = {
        (a, b) if sa == "a" else (b, a)
        for sa, a, b in kept.select("source_dataset_l", "rec_id_l", "rec_id_r").rows()
    }
    return {
        "left": len(left),
        "right": len(right),
        "threshold": THRESHOLD,
        **_prf(predicted, truth),
        "seconds": round(time.perf_counter() - started, 2),
    }


def dblp_acm() -> dict:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    folder = SHARED / "er_benchmarks" / "dblp_acm"
    if not (folder / "DBLP2.csv").exists():
        return {"skipped": f"{folder} absent"}
    started = time.perf_counter()

    def read(name: str) -> pl.DataFrame:
        frame = pl.read_csv(folder / name, infer_schema=False, encoding="latin-1")
        return _clean(frame, "id")

    left, right = read("DBLP2.csv"), read("ACM.csv")
    mapping = pl.read_csv(folder / "DBLP-ACM_perfectMapping.csv", infer_schema=False, encoding="utf8-lossy")
    truth = {(str(a).strip(), str(b).strip()) for a, b in mapping.select("idDBLP", "idACM").rows()}
    settings = SettingsCreator(
        link_type="link_only",
        unique_id_column_name="id",
        comparisons=[
            cl.JaroWinklerAtThresholds("title", [0.97, 0.9, 0.8]),
            cl.JaroWinklerAtThresholds("authors", [0.95, 0.85, 0.7]),
            cl.JaroWinklerAtThresholds("venue", [0.9, 0.7]),
            cl.ExactMatch("year"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("substr(title, 1, 8)"),
            block_on("year", "substr(authors, 1, 6)"),
            block_on("substr(reverse(title), 1, 8)"),
        ],
    )
    db = DuckDBAPI()
    linker = Linker(
        [db.register(left.to_pandas(), table_name="dblp"), db.register(right.to_pandas(), table_name="acm")],
        settings,
    )
    scored = _train_and_predict(
        linker, [block_on("title", "year")], [block_on("year"), block_on("substr(title, 1, 8)")]
    )
    kept = scored.filter(pl.col("match_probability") >= THRESHOLD)
    predicted = {
        (a, b) if sa == "dblp" else (b, a)
        for sa, a, b in kept.select("source_dataset_l", "id_l", "id_r").rows()
    }
    return {
        "left": len(left),
        "right": len(right),
        "threshold": THRESHOLD,
        **_prf(predicted, truth),
        "seconds": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    try:
        import splink
    except ImportError:
        print(json.dumps({"skipped": "splink is not installed here (see this script's docstring)"}))
        return
    report = {"splink": splink.__version__, "backend": "duckdb"}
    parts = {"febrl_dataset3": febrl3, "febrl_dataset4a_4b": febrl4, "dblp_acm": dblp_acm}
    chosen = sys.argv[1:] or list(parts)  # part names to run (default: all)
    for name, part in ((n, parts[n]) for n in chosen):
        try:
            report[name] = part()
        except Exception as exc:  # a failed part is reported, the others still run
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
