"""Company duplicates proposed on a public directory without planted duplicates, printed as JSON: the YC
company directory (../shared/data/yc_companies, 4,663 companies; 59 names are shared by different
companies). A pair proposed at the served 0.9 is a false pair unless the two rows are the same company
(same website); the count before / after a change of the weights is a held-out check of precision.

    nice -n 10 .venv/bin/python benchmarks/dedupe_yc.py
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("HOLOCRM_SHARED_DATA", ROOT.parent / "shared" / "data"))

import polars as pl  # noqa: E402


def main() -> None:
    from holocrm_core.dedupe import duplicate_candidates

    path = SHARED / "yc_companies" / "yc_companies.csv"
    if not path.exists():
        print(json.dumps({"skipped": f"{path} absent"}))
        return
    raw = pl.read_csv(path, infer_schema=False)
    companies = raw.select(
        pl.col("company_id"),
        pl.col("company_name").alias("name"),
        pl.col("website").str.replace(r"^https?://(www\.)?", "").str.strip_chars_end("/").alias("domain"),
        pl.col("location").str.split(",").list.first().str.strip_chars().alias("city"),
        pl.col("country"),
        pl.col("tags").str.extract(r"'([^']+)'").alias("industry"),
    )
    found = duplicate_candidates(None, companies, min_score=0.5)
    site = dict(companies.select("company_id", "domain").rows())
    out = {"companies": len(companies)}
    for threshold in (0.9, 0.5):
        pairs = found.filter(pl.col("score") >= threshold)
        same_site = sum(1 for a, b in pairs.select("id_a", "id_b").rows() if site[a] and site[a] == site[b])
        out[f"proposed@{threshold}"] = len(pairs)
        out[f"same_website@{threshold}"] = same_site
    names = dict(companies.select("company_id", "name").rows())
    out["examples"] = [
        [names[a], names[b], round(s, 3)] for a, b, s in found.select("id_a", "id_b", "score").head(10).rows()
    ]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
