"""A score's top positive and negative factors, in the words a salesperson reads.

Scorers report per-field contributions on the log-odds scale (how much the score moved because of this field,
compared with a typical record). This module picks the strongest ones and turns field + value into a short
sentence: "Job level is VP (raises the score)", "No activity for 64 days (lowers the score)".
"""

from __future__ import annotations

import math
import re

import numpy as np
import polars as pl

# Contributions smaller than this (log-odds) are noise a salesperson should not be told about.
MIN_EFFECT = 0.05

SENIORITY_WORDS = {
    "c_level": "C-level",
    "vp": "VP",
    "director": "director",
    "manager": "manager",
    "individual": "individual contributor",
}
SIZE_WORDS = {"smb": "a small business", "mid_market": "a mid-market company", "enterprise": "an enterprise"}
ACTIVITY_WORDS = {
    "email": ("email", "emails"),
    "call": ("call", "calls"),
    "meeting": ("meeting", "meetings"),
    "note": ("note", "notes"),
    "proposal": ("proposal sent", "proposals sent"),
}


def _count(n: float, one: str, many: str) -> str:
    n = int(round(n))
    return f"{n} {one if n == 1 else many}"


def _words(name: str) -> str:
    name = re.sub(r"^(cf_|company_cf_|contact_cf_|company_|contact_)", "", name)
    return name.replace("_", " ").strip().capitalize()


def describe(field: str, value, notes_phrases: list[str] | None = None) -> str:
    """Field + raw value -> a phrase. ``value`` is None when the record has no value for the field."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    if field.startswith("text_"):
        if notes_phrases:
            quoted = ", ".join(f"\u201c{p}\u201d" for p in notes_phrases)
            return f"Recent notes mention {quoted}"
        return "No recent notes" if missing or not value else "Tone of the recent notes"
    if field.startswith("emb_"):
        return "What the recent notes say"
    if field == "seniority" or field.endswith("_seniority"):
        return "Job level unknown" if missing else f"Job level is {SENIORITY_WORDS.get(value, value)}"
    if field in ("size_band", "company_size_band"):
        return "Company size unknown" if missing else f"Works at {SIZE_WORDS.get(value, value)}"
    if field in ("employees", "company_employees"):
        return "Company headcount unknown" if missing else f"{int(value):,} employees at the company"
    if field in ("industry", "company_industry"):
        return "Industry unknown" if missing else f"Industry is {value}"
    if field in ("annual_revenue", "company_annual_revenue"):
        return "Company revenue unknown" if missing else f"Company revenue {value:,.0f}"
    if field.startswith("n_") and field.removeprefix("n_").split("_")[0] in ACTIVITY_WORDS and not missing:
        kind = field.removeprefix("n_").split("_")[0]
        recent = "_30d" in field
        phrase = _count(value, *ACTIVITY_WORDS[kind])
        return f"{phrase} in the last 30 days" if recent else f"{phrase} so far"
    if field == "n_inbound" and not missing:
        return f"{_count(value, 'message', 'messages')} from them (inbound)"
    if field == "n_activities" and not missing:
        return "No activity logged" if value == 0 else f"{_count(value, 'activity', 'activities')} logged"
    if field == "n_activities_30d" and not missing:
        return f"{_count(value, 'activity', 'activities')} in the last 30 days"
    if field == "n_activities_90d" and not missing:
        return f"{_count(value, 'activity', 'activities')} in the last 90 days"
    if field == "days_since_last_activity":
        return "No activity logged yet" if missing else f"Last activity {_count(value, 'day', 'days')} ago"
    if field == "days_since_first_activity":
        return "Never contacted" if missing else f"First contacted {_count(value, 'day', 'days')} ago"
    if field == "lead_age_days" and not missing:
        return f"A lead for {_count(value, 'day', 'days')}"
    if field == "deal_age_days" and not missing:
        return f"Deal open for {_count(value, 'day', 'days')}"
    if field == "was_qualified" and not missing:
        return "Qualified by sales" if value else "Not qualified yet"
    if field == "deal_value":
        return "Deal value unknown" if missing else f"Deal value {value:,.0f}"
    if field == "product":
        return "Product unknown" if missing else f"Product is {value}"
    if field == "owner":
        return "No owner" if missing else f"Owned by {value}"
    label = _words(field)
    if missing:
        return f"{label} unknown"
    if isinstance(value, bool):
        return f"{label}: {'yes' if value else 'no'}"
    if isinstance(value, float):
        return f"{label}: {value:,.4g}"
    return f"{label}: {value}"


def reasons_from_contributions(
    contributions: np.ndarray,
    fields: list[str],
    frame: pl.DataFrame,
    top: int = 3,
    phrase_finder=None,
) -> list[list[str]]:
    """Per row: up to ``top`` factors that raised the score, then up to ``top`` that lowered it.

    ``phrase_finder(field, text, sign)`` names the note phrases behind a text field's contribution.
    """
    n = contributions.shape[0]
    columns = {f: (frame[f].to_list() if f in frame.columns else [None] * n) for f in fields}
    reasons: list[list[str]] = []
    order = np.argsort(-contributions, axis=1)
    for i in range(n):
        row = contributions[i]
        ups = [j for j in order[i, :top] if row[j] >= MIN_EFFECT]
        downs = [j for j in order[i, ::-1][:top] if row[j] <= -MIN_EFFECT]
        out = []
        for j, effect in [(j, "raises") for j in ups] + [(j, "lowers") for j in downs]:
            field, value = fields[j], columns[fields[j]][i]
            phrases = None
            if field.startswith("text_") and phrase_finder is not None and value:
                phrases = phrase_finder(field, value, 1 if effect == "raises" else -1)
            out.append(f"{describe(field, value, phrases)} ({effect} the score)")
        reasons.append(out)
    return reasons
