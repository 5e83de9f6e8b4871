"""Duplicate detection at scale: what the ``duplicate_candidates`` asset does (the engine over staged contacts
and companies, merge proposals, clusters), timed per stage with its peak memory, and scored against the
generator's hidden truth (planted duplicate pairs). Prints JSON.

    nice -n 15 .venv/bin/python benchmarks/dedupe_scale.py --contacts 200000 --work /tmp/dedupe-200k
    nice -n 15 .venv/bin/python benchmarks/dedupe_scale.py --work /tmp/dedupe-200k --vectors   # + vector pass
    nice -n 10 .venv/bin/python benchmarks/dedupe_scale.py --home /work/scale1m/home \
        --truth /work/scale1m/out-generate/truth        # score a home's served table (e.g. the 1M run)

``--work`` keeps the generated export, its staged contacts / companies (and the deal and activity references
the merge proposals count) as Parquet, so a second run measures the engine alone. ``--vectors`` embeds the
contact and company documents with the static tier once (kept in ``--work``) and passes them as the asset
does (a lazy scan: read only where the vector pass runs, below ``blocking.VECTOR_BLOCKING_MAX_ROWS``).

Figures: wall and CPU seconds (on a shared machine the CPU seconds are the comparable figure), peak resident
memory of the process (``ru_maxrss``) and sampled per stage, candidate pairs, and precision / recall / F1 of
the pairs at the asset's threshold (LIKELY_DUPLICATE, 0.9) and at 0.5 per entity, next to plain baselines
(the same e-mail; the same first + last name at the same company; companies: the same web domain).

``--home`` scores what a home's ``duplicate_candidates`` table serves (its pairs at the asset's threshold, 0.9:
the table holds no lower-scored pairs) against ``--truth`` (the generator's truth folder: ``benchmarks/scale.py``
writes it to ``WORK/out-generate/truth`` beside the export), with the same baselines over the home's staged
contacts and companies (read as scans of the baselines' columns only). Nothing is re-run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polars as pl  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


class Stages:
    """Wall / CPU seconds and the peak resident memory (sampled every 50 ms) of named stages."""

    def __init__(self):
        self.current = "load"
        self.figures: dict[str, dict] = {}
        self._peak = 0.0
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        while True:
            self._peak = max(self._peak, _rss_mb())
            time.sleep(0.05)

    def run(self, name: str, function, *args, **kwargs):
        self._peak = _rss_mb()
        wall, cpu = time.perf_counter(), time.process_time()
        out = function(*args, **kwargs)
        self.figures[name] = {
            "seconds": round(time.perf_counter() - wall, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1),
            "peak_mb": round(max(self._peak, _rss_mb())),
        }
        return out


def prepare(work: Path, contacts: int, seed: int, vectors: bool) -> None:
    from holocrm_core.ingest import ingest_export
    from holocrm_core.synth import generate_export

    if not (work / "contacts.parquet").exists():
        generate_export(
            work / "export",
            n_contacts=contacts,
            seed=seed,
            truth_dir=work / "truth",
            with_attachment_files=False,
        )
        staged = ingest_export(work / "export").tables
        for name in ("contacts", "companies"):
            staged[name].write_parquet(work / f"{name}.parquet")
        for name in ("deals", "activities"):  # the references merge_proposals counts
            frame = staged.get(name)
            if frame is not None:
                columns = [c for c in ("contact_id", "company_id") if c in frame.columns]
                frame.select(columns).write_parquet(work / f"{name}.parquet")
        (work / "config.json").write_text(json.dumps({"contacts": contacts, "seed": seed}))
    if vectors and not (work / "vectors.parquet").exists():
        import numpy as np

        from holocrm_core.embedding import DIM, load_embedder
        from holocrm_core.text import entity_documents

        tables = {name: pl.read_parquet(work / f"{name}.parquet") for name in ("contacts", "companies")}
        documents = entity_documents(tables)
        encoded = load_embedder(tier="static").encode(documents.get_column("text").to_list())
        documents.select("entity_type", "entity_id").with_columns(
            pl.Series("vector", np.asarray(encoded, dtype=np.float32), dtype=pl.Array(pl.Float32, DIM))
        ).write_parquet(work / "vectors.parquet")


def _prf(predicted: set, truth: set) -> dict:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "predicted": len(predicted),
        "true": len(truth),
    }


def quality(scored: pl.DataFrame, truth: pl.DataFrame) -> dict:
    out = {}
    for entity_type, entity in (("contact", "contacts"), ("company", "companies")):
        true = {
            tuple(sorted(p)) for p in truth.filter(pl.col("entity") == entity).select("id_a", "id_b").rows()
        }
        for threshold in (0.9, 0.5):
            mine = scored.filter((pl.col("entity_type") == entity_type) & (pl.col("score") >= threshold))
            out[f"{entity_type}@{threshold}"] = _prf(
                {tuple(sorted(r)) for r in mine.select("id_a", "id_b").rows()}, true
            )
    return out


def _same_key_pairs(table: pl.DataFrame, id_column: str, key: pl.Expr) -> set:
    """Every pair of records whose non-empty ``key`` is equal (the plain baseline's proposals)."""
    groups = (
        table.select(pl.col(id_column).alias("id"), key.alias("key"))
        .filter(pl.col("key").is_not_null() & (pl.col("key") != ""))
        .group_by("key")
        .agg("id")
        .filter(pl.col("id").list.len() > 1)
    )
    pairs = set()
    for ids in groups.get_column("id").to_list():
        ids = sorted(ids)
        pairs.update((a, b) for k, a in enumerate(ids) for b in ids[k + 1 :])
    return pairs


def baselines(contacts: pl.DataFrame, companies: pl.DataFrame, truth: pl.DataFrame) -> dict:
    """Plain rules on the strongest identifiers, scored like the engine: contacts with the same e-mail
    (trimmed, lower case), contacts with the same first + last name at the same company, companies with the
    same web domain (lower case, without www.)."""

    def true(entity):
        rows = truth.filter(pl.col("entity") == entity).select("id_a", "id_b").rows()
        return {tuple(sorted(p)) for p in rows}

    def folded(column):
        return pl.col(column).cast(pl.String).str.strip_chars().str.to_lowercase()

    name_company = pl.concat_str(
        [folded("first_name"), folded("last_name"), pl.col("company_id")], separator="|"
    )
    domain = folded("domain").str.replace(r"^(https?://)?(www\.)?", "").str.strip_chars_end("/")
    out = {
        "contact_same_email": _prf(
            _same_key_pairs(contacts, "contact_id", folded("email")), true("contacts")
        ),
        "contact_same_name_and_company": _prf(
            _same_key_pairs(contacts, "contact_id", name_company), true("contacts")
        ),
    }
    if "domain" in companies.columns:
        out["company_same_domain"] = _prf(_same_key_pairs(companies, "company_id", domain), true("companies"))
    return out


def score_home(home: Path, truth_dir: Path, table: Path | None = None) -> dict:
    """Quality of a home's served ``duplicate_candidates`` (pairs at 0.9) against the generator's truth, next
    to the plain baselines over its staged tables."""
    warehouse = home / "warehouse"
    truth_file = truth_dir / "duplicate_pairs.csv"
    if not truth_file.exists():
        raise SystemExit(f"{truth_file} not found: --truth must be the generator's truth folder")
    truth = pl.read_csv(truth_file, infer_schema=False)
    served = pl.read_parquet(table or warehouse / "duplicate_candidates.parquet")
    contacts = pl.scan_parquet(warehouse / "staged_contacts.parquet")
    companies = pl.scan_parquet(warehouse / "staged_companies.parquet")
    columns = ["contact_id", "first_name", "last_name", "email", "company_id"]
    contacts = contacts.select(columns).collect()
    companies = companies.select(
        [c for c in ("company_id", "domain") if c in companies.collect_schema().names()]
    ).collect()
    manifest = truth_dir / "manifest.json"
    return {
        "home": str(home),
        "table": str(table or warehouse / "duplicate_candidates.parquet"),
        "truth": str(truth_dir),
        "generator": {
            k: v
            for k, v in (json.loads(manifest.read_text()) if manifest.exists() else {}).items()
            if k in ("seed", "n_contacts", "duplicate_pairs")
        },
        "rows": {"contacts": len(contacts), "companies": len(companies)},
        "served_pairs": len(served),
        "quality": {k: v for k, v in quality(served, truth).items() if k.endswith("@0.9")},
        "baselines": baselines(contacts, companies, truth),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="export, staged Parquet and vectors (kept)")
    parser.add_argument("--vectors", action="store_true", help="embed (static tier) and pass the vectors")
    parser.add_argument("--home", type=Path, help="score this home's duplicate_candidates table (no re-run)")
    parser.add_argument("--truth", type=Path, help="with --home: the generator's truth folder")
    parser.add_argument(
        "--table", type=Path, help="with --home: score this Parquet (an older version) instead"
    )
    args = parser.parse_args()
    if args.home:
        if not args.truth:
            parser.error("--home needs --truth (the generator's truth folder)")
        print(json.dumps(score_home(args.home, args.truth, args.table), indent=2))
        return
    if not args.work:
        parser.error("--work (or --home with --truth) is required")
    args.work.mkdir(parents=True, exist_ok=True)
    prepare(args.work, args.contacts, args.seed, args.vectors)

    from holocrm_core.dedupe import clusters, duplicate_candidates, merge_proposals

    stages = Stages()
    contacts = pl.read_parquet(args.work / "contacts.parquet")
    companies = pl.read_parquet(args.work / "companies.parquet")
    references = {
        name: pl.read_parquet(args.work / f"{name}.parquet")
        for name in ("deals", "activities")
        if (args.work / f"{name}.parquet").exists()
    }
    vectors = pl.scan_parquet(args.work / "vectors.parquet") if args.vectors else None
    load_mb = _rss_mb()
    wall, cpu = time.perf_counter(), time.process_time()
    # as the asset: likely pairs (0.9) for the proposals; the 0.5 pairs too, for the quality at 0.5
    scored = stages.run("duplicate_candidates", duplicate_candidates, contacts, companies, vectors, 0.5)
    candidates = scored.filter(pl.col("score") >= 0.9)
    proposals = stages.run(
        "merge_proposals",
        merge_proposals,
        candidates,
        contacts,
        companies,
        deals=references.get("deals"),
        activities=references.get("activities"),
    )
    groups = stages.run("clusters", clusters, candidates)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    truth = pl.read_csv(args.work / "truth" / "duplicate_pairs.csv", infer_schema=False)
    report = {
        "config": json.loads((args.work / "config.json").read_text()) | {"vectors": args.vectors},
        "rows": {"contacts": len(contacts), "companies": len(companies)},
        "seconds": round(time.perf_counter() - wall, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "peak_mb": round(usage.ru_maxrss / 1024),
        "after_load_mb": round(load_mb),
        "stages": stages.figures,
        "pairs_at_0.9": len(candidates),
        "clusters": groups.get_column("cluster_id").n_unique() if len(groups) else 0,
        "merge_proposals": len(proposals),
        "quality": quality(scored, truth),
        "baselines": baselines(contacts, companies, truth),
        "load_avg_1_5_15": list(os.getloadavg()),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
