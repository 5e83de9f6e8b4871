"""Freshness: how old each asset is against the age it may reach (the export, the index, each model).

The age of an asset is read from what it leaves on disk (a warehouse table, the LanceDB folder), so the
API's ``/health``, ``holocrm monitor`` and Prometheus read the same answer without asking Dagster or MLflow.
A model's age is that of the table it last scored: every run re-judges the model in use and re-scores with
it. Limits come from ``HOLOCRM_FRESHNESS_<NAME>_HOURS`` (e.g. ``HOLOCRM_FRESHNESS_EXPORT_HOURS=48``); the
defaults fit the daily refresh (03:00 UTC) with two hours of slack, a week for the policies.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from holocrm_core.settings import HoloPaths, lancedb_uri, open_warehouse


@dataclass(frozen=True)
class FreshnessPolicy:
    name: str  # what a person calls it: export, index, lead_model ...
    asset: str  # the Dagster asset whose materialization renews it
    source: str  # warehouse table name, or "lancedb" for the index folder
    max_age_hours: float

    def limit_hours(self, environ=None) -> float:
        env = os.environ if environ is None else environ
        raw = env.get(f"HOLOCRM_FRESHNESS_{self.name.upper()}_HOURS")
        if not raw:
            return self.max_age_hours
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"HOLOCRM_FRESHNESS_{self.name.upper()}_HOURS={raw!r} is not a number") from None
        if value <= 0:
            raise ValueError(f"HOLOCRM_FRESHNESS_{self.name.upper()}_HOURS must be positive, got {value}")
        return value


DAILY = 26.0
POLICIES = (
    FreshnessPolicy("export", "staged_contacts", "staged_contacts", DAILY),
    FreshnessPolicy("index", "similarity_index", "lancedb", DAILY),
    FreshnessPolicy("lead_model", "lead_scoring_model", "scored_leads", DAILY),
    FreshnessPolicy("deal_model", "deal_scoring_model", "scored_deals", DAILY),
    FreshnessPolicy("action_policy", "policy_evaluation", "recommendations", 7 * 24.0),
    FreshnessPolicy("outreach_policy", "outreach_policy", "outreach_policy_report", 7 * 24.0),
)


@dataclass(frozen=True)
class Freshness:
    name: str
    asset: str
    updated_at: str | None  # ISO time, None when never built
    age_hours: float | None
    limit_hours: float
    stale: bool
    words: str

    def as_dict(self) -> dict:
        return asdict(self)


def _newest_mtime(path: Path) -> float | None:
    """The newest modification time in a folder (one level of children: LanceDB's table folders)."""
    if not path.exists():
        return None
    if path.is_file():
        return path.stat().st_mtime
    times = [child.stat().st_mtime for child in path.iterdir() if not child.name.startswith(".")]
    return max(times) if times else None


def _lancedb_updated(uri: str) -> float | None:
    """When the LanceDB index last committed: its folder's newest table here; on object storage the newest
    table version's time (LanceDB's own record, one small read per table)."""
    if "://" not in uri:
        return _newest_mtime(Path(uri))
    from holocrm_core.settings import connect_lancedb

    try:
        db = connect_lancedb(uri)
        times = [db.open_table(name).list_versions()[-1]["timestamp"] for name in db.table_names()]
    except Exception:  # noqa: BLE001 - an unreachable or empty index reads as never built
        return None
    return max(t.timestamp() for t in times) if times else None


def _age_words(hours: float) -> str:
    if hours < 1:
        return f"{hours * 60:.0f} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def asset_freshness(
    paths: HoloPaths | None = None,
    policies: tuple[FreshnessPolicy, ...] = POLICIES,
    now: datetime | None = None,
    environ=None,
) -> list[Freshness]:
    """Each policy's asset: when it was last built, its age, and whether it is past its limit."""
    paths = paths or HoloPaths.default()
    now = now or datetime.now(UTC)
    answers = []
    warehouse = None
    for policy in policies:
        limit = policy.limit_hours(environ)
        if policy.source == "lancedb":
            mtime = _lancedb_updated(lancedb_uri(paths))
        else:
            if warehouse is None:
                warehouse = open_warehouse(paths)
            built = warehouse.modified_at(policy.source)  # a folder or object storage
            mtime = built.timestamp() if built is not None else None
        if mtime is None:
            answers.append(
                Freshness(
                    policy.name,
                    policy.asset,
                    None,
                    None,
                    limit,
                    True,
                    f"{policy.name}: never built ({policy.asset} has not run here)",
                )
            )
            continue
        updated = datetime.fromtimestamp(mtime, UTC)
        age = max(0.0, (now - updated).total_seconds() / 3600)
        stale = age > limit
        verdict = (
            f"STALE, past its {_age_words(limit)} limit" if stale else f"fresh (limit {_age_words(limit)})"
        )
        answers.append(
            Freshness(
                policy.name,
                policy.asset,
                updated.isoformat(timespec="seconds"),
                round(age, 3),
                limit,
                stale,
                f"{policy.name}: built {_age_words(age)} ago by {policy.asset}, {verdict}",
            )
        )
    return answers


def policy_for(name: str) -> FreshnessPolicy:
    for policy in POLICIES:
        if policy.name == name or policy.asset == name:
            return policy
    raise ValueError(f"no freshness policy named {name!r}; known: {', '.join(p.name for p in POLICIES)}")


def limit(policy: FreshnessPolicy) -> timedelta:
    return timedelta(hours=policy.limit_hours())
