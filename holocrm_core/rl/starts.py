"""Episode starts from an export: the open contacts as the CRM shows them now, with deal value and lead score.

Each open contact (lead, qualified, customer) becomes one possible episode start: its seniority, its
company's industry and size band, its lifecycle stage, the days since its last outbound touch, the value of
a deal with it (its own open deals' mean, else the mean deal of its company size band: deal values are
fitted from the deals table) and its lead score (the conversion rate of decided leads of its seniority and
size band in the outcome history, smoothed toward the overall rate). Values are normalised by the mean deal
value so rewards are about 1 per won deal whatever the currency scale. The industry vocabulary is the
export's own (``export_industries``), not the sample generator's.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from holocrm_core.outcomes import default_as_of, normalise_tables
from holocrm_core.rl.world import (
    MAX_DAYS,
    MAX_INDUSTRIES,
    MIN_INDUSTRY_COUNT,
    SENIORITIES,
    SIZE_BANDS,
    EpisodeStarts,
    check_industries,
    codes,
    fit_industries,
    industry_codes,
    lifecycle_codes,
)

OPEN_LIFECYCLES = ("lead", "qualified", "customer")
TOUCH_TYPES = ("email", "call", "meeting", "proposal")
SMOOTHING = 20.0  # decided leads' worth of prior toward the overall conversion rate


def _contact_frame(tables: dict[str, pl.DataFrame]) -> pl.DataFrame:
    t = normalise_tables(tables)
    companies = t["companies"].select("company_id", "industry", "size_band").unique("company_id")
    return (
        t["contacts"]
        .select("contact_id", "seniority", "company_id", "lifecycle_status")
        .join(companies, on="company_id", how="left")
    )


def _lead_scores(contacts: pl.DataFrame) -> pl.DataFrame:
    decided = contacts.filter(pl.col("lifecycle_status").is_in(["customer", "disqualified"])).with_columns(
        (pl.col("lifecycle_status") == "customer").cast(pl.Float64).alias("converted")
    )
    overall = float(decided["converted"].mean()) if decided.height else 0.3
    return decided.group_by("seniority", "size_band").agg(
        ((pl.col("converted").sum() + SMOOTHING * overall) / (pl.len() + SMOOTHING)).alias("lead_score")
    ), overall


def export_industries(
    tables: dict[str, pl.DataFrame], max_industries: int = MAX_INDUSTRIES, min_count: int = MIN_INDUSTRY_COUNT
) -> tuple[str, ...]:
    """The export's industry vocabulary: its contacts' companies' most frequent industries (each seen on
    ``min_count`` contacts or more, at most ``max_industries``); an export whose contacts have no company
    industry is counted over its companies instead."""
    vocabulary = fit_industries(_contact_frame(tables)["industry"], max_industries, min_count)
    if not vocabulary:
        companies = normalise_tables(tables)["companies"]
        vocabulary = fit_industries(companies["industry"], max_industries, min_count)
    return vocabulary


def episode_starts(
    tables: dict[str, pl.DataFrame],
    as_of: datetime | None = None,
    industries: tuple[str, ...] | None = None,
) -> EpisodeStarts:
    """One start per open contact of the export (``tables``: staged or plain entity names), its industry in
    the slots of ``industries`` (None: ``export_industries(tables)``)."""
    industries = export_industries(tables) if industries is None else check_industries(industries)
    t = normalise_tables(tables)
    as_of = as_of or default_as_of(tables)
    contacts = _contact_frame(tables)
    scores, overall = _lead_scores(contacts)
    last_touch = (
        t["activities"]
        .filter(pl.col("type").is_in(TOUCH_TYPES) & (pl.col("occurred_at") < as_of))
        .group_by("contact_id")
        .agg(pl.col("occurred_at").max().alias("last_touch_at"))
    )
    deals = (
        t["deals"]
        .with_columns(pl.col("value").cast(pl.Float64).alias("amount"))
        .filter(pl.col("amount").is_not_null() & (pl.col("amount") > 0))
    )
    mean_value = float(deals["amount"].mean()) if deals.height else 1.0
    currency = (
        deals["currency"].mode().first()
        if deals.height and deals["currency"].null_count() < deals.height
        else "USD"
    )
    by_contact = deals.group_by("contact_id").agg(pl.col("amount").mean().alias("contact_value"))
    by_band = (
        deals.join(contacts.select("contact_id", "size_band"), on="contact_id", how="left")
        .group_by("size_band")
        .agg(pl.col("amount").mean().alias("band_value"))
    )
    open_contacts = (
        contacts.filter(pl.col("lifecycle_status").is_in(OPEN_LIFECYCLES))
        .join(scores, on=["seniority", "size_band"], how="left")
        .join(last_touch, on="contact_id", how="left")
        .join(by_contact, on="contact_id", how="left")
        .join(by_band, on="size_band", how="left", nulls_equal=True)
        .with_columns(
            ((pl.lit(as_of) - pl.col("last_touch_at")).dt.total_seconds() / 86_400)
            .clip(0, MAX_DAYS)
            .fill_null(MAX_DAYS)
            .alias("days"),
            (pl.coalesce("contact_value", "band_value", pl.lit(mean_value)) / mean_value).alias("value"),
            pl.col("lead_score").fill_null(overall),
        )
        .sort("contact_id")
    )
    return EpisodeStarts(
        contact_id=open_contacts["contact_id"].to_numpy().astype(str),
        seniority=codes(open_contacts["seniority"], SENIORITIES),
        industry=industry_codes(open_contacts["industry"], industries),
        size_band=codes(open_contacts["size_band"], SIZE_BANDS),
        lifecycle=lifecycle_codes(open_contacts["lifecycle_status"]),
        days_since_last_touch=np.round(open_contacts["days"].to_numpy()).astype(np.int64),
        value=open_contacts["value"].to_numpy().astype(np.float64),
        lead_score=open_contacts["lead_score"].to_numpy().astype(np.float64),
        mean_deal_value=mean_value,
        currency=str(currency),
        industries=industries,
    )
