"""The API's answers to a fixed sample of read requests, as JSON: run it on two trees (before / after a
serving change) over the same home and compare the files.

    PYTHONPATH=/work/main .venv/bin/python benchmarks/served_answers.py --home H --out before.json
    PYTHONPATH=$PWD .venv/bin/python benchmarks/served_answers.py --home H --out after.json
    .venv/bin/python benchmarks/served_answers.py --compare before.json after.json

The sample (``--per-endpoint`` ids each, drawn with a fixed seed from the staged and scored tables): similar
contacts (with and without a filter), similar companies and deals where indexed, contact and deal scores,
recommendations, the duplicates' first page. In process (FastAPI's TestClient), no reload thread. Only the
fields that change per process (``loaded_at``, request ids, timings) are left out of the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VOLATILE = {"loaded_at", "request_id", "took_ms", "elapsed_ms", "served_at", "as_of_served", "load_seconds"}


def _clean(value):
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def collect(home: Path, per_endpoint: int, seed: int) -> dict:
    import polars as pl
    from fastapi.testclient import TestClient

    os.environ["HOLOCRM_HOME"] = str(home)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    from holocrm_api.config import ServingSettings
    from holocrm_api.main import create_app
    from holocrm_core.warehouse import Warehouse

    wh = Warehouse(home / "warehouse")
    rng = random.Random(seed)

    def sample(table: str, column: str) -> list[str]:
        if not wh.exists(table):
            return []
        ids = wh.read(table).get_column(column).cast(pl.String).to_list()
        return rng.sample(ids, min(per_endpoint, len(ids)))

    contacts = sample("staged_contacts", "contact_id")
    paths = []
    for c in contacts:
        paths += [f"/api/contacts/{c}/similar?limit=10", f"/api/contacts/{c}/recommendation"]
    paths += [f"/api/similar/contact/{c}?limit=5&filter=lifecycle_status=lead" for c in contacts[:20]]
    paths += [f"/api/contacts/{c}/score" for c in sample("scored_leads", "contact_id")]
    paths += [f"/api/deals/{d}/score" for d in sample("scored_deals", "deal_id")]
    paths += [f"/api/similar/deal/{d}?limit=10" for d in sample("staged_deals", "deal_id")[:20]]
    paths += [f"/api/similar/company/{c}?limit=10" for c in sample("staged_companies", "company_id")[:20]]
    paths += [
        "/api/duplicates?limit=20",
        "/api/contacts/no-such-contact/similar",
        "/api/deals/no-such-deal/score",
    ]
    settings = ServingSettings.from_env(reload_interval_s=0)
    answers = {}
    with TestClient(create_app(settings)) as client:
        for path in paths:
            response = client.get(path)
            try:
                body = response.json()
            except ValueError:
                body = response.text
            answers[path] = {"status": response.status_code, "body": _clean(body)}
    return answers


def compare(before: dict, after: dict) -> dict:
    differ = [p for p in before if before[p] != after.get(p)]
    statuses: dict[str, int] = {}
    for answer in before.values():
        statuses[str(answer["status"])] = statuses.get(str(answer["status"]), 0) + 1
    return {
        "requests": len(before),
        "statuses": statuses,
        "same": len(before) - len(differ),
        "differ": differ[:20],
        "only_after": sorted(set(after) - set(before))[:20],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--per-endpoint", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", nargs=2, type=Path)
    args = parser.parse_args()
    if args.compare:
        result = compare(*(json.loads(p.read_text()) for p in args.compare))
        print(json.dumps(result, indent=1))
        sys.exit(0 if not result["differ"] and not result["only_after"] else 1)
    answers = collect(args.home, args.per_endpoint, args.seed)
    args.out.write_text(json.dumps(answers, indent=0, sort_keys=True, default=str))
    print(json.dumps({"requests": len(answers), "out": str(args.out)}))


if __name__ == "__main__":
    main()
