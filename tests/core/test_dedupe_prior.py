"""Duplicate precision that holds as a table grows: the random-pair prior and term-frequency weights.

A coincidental same-name pair becomes more frequent as a table grows; the prior of two random records being
one falls as fast, so the number of proposals follows the duplicates, not the coincidences."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from holocrm_core.dedupe import Comparator, duplicate_candidates, fit_match_model
from holocrm_core.dedupe.compare import DISAGREE, EXACT, MISSING
from holocrm_core.dedupe.weights import _tf_shift
from holocrm_core.schema import ENTITIES


def _frame(entity: str, rows: list[dict]) -> pl.DataFrame:
    schema = ENTITIES[entity]
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema)


def _pairs(found: pl.DataFrame) -> set:
    return set(found.filter(pl.col("entity_type") == "contact").select("id_a", "id_b").rows())


SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "zo", "pa", "de", "fu", "go", "hi"]
FIRSTS = [(a + b).title() for a, b in itertools.product(SYLLABLES, SYLLABLES)][:80]
LASTS = [(a + b + c).title() for a, b, c in itertools.product(SYLLABLES, SYLLABLES, "nrs")][:120]


def _people(n: int, seed: int, planted_share: float = 0.01) -> tuple[pl.DataFrame, pl.DataFrame, set]:
    """``n`` contacts named from a pool of 80 x 120 names (coincidental same-name pairs grow as n^2), one
    company per 8 contacts, and planted duplicates: the same person again at the same company under a new
    e-mail (half of them keep the phone)."""
    rng = np.random.default_rng(seed)
    n_comp = max(4, n // 8)
    companies = _frame(
        "companies",
        [
            {"company_id": f"co-{k}", "name": f"Company {k} Ltd", "domain": f"c{k}.example"}
            for k in range(n_comp)
        ],
    )
    rows = []
    for i in range(n):
        first, last, comp = (
            FIRSTS[rng.integers(len(FIRSTS))],
            LASTS[rng.integers(len(LASTS))],
            int(rng.integers(n_comp)),
        )
        rows.append(
            {
                "contact_id": f"p-{i:06d}",
                "first_name": first,
                "last_name": last,
                "email": f"{first}.{last}.{i}@c{comp}.example".lower(),
                "phone": f"+44 20 7{rng.integers(10**6, 10**7)}" if rng.random() < 0.8 else None,
                "title": ["Buyer", "Engineer", "Manager", "Director", "Analyst"][rng.integers(5)],
                "company_id": f"co-{comp}",
            }
        )
    truth = set()
    for k, src in enumerate(rng.choice(n, size=int(n * planted_share), replace=False)):
        copy = dict(rows[src])
        copy["contact_id"] = f"p-dup-{k:05d}"
        copy["email"] = f"{copy['first_name']}{k}@gmail.com".lower()
        if rng.random() < 0.5:
            copy["phone"] = None
        rows.append(copy)
        truth.add(tuple(sorted((rows[src]["contact_id"], copy["contact_id"]))))
    return _frame("contacts", rows), companies, truth


def test_proposals_follow_the_planted_duplicates_as_the_table_grows():
    """Same-name pairs multiply 16-fold from 1,500 to 6,000 contacts (about 9 to 150 at the same company
    or with the same title); the proposals stay the planted duplicates. The candidate-share prior proposed
    73 pairs for the 60 planted at 6,000 (precision 0.82)."""
    for n in (1500, 6000):
        contacts, companies, truth = _people(n, seed=n)
        found = _pairs(duplicate_candidates(contacts, companies))
        true_positives = len(found & truth)
        assert true_positives / max(len(found), 1) >= 0.95, (n, len(found), len(truth))
        assert true_positives / len(truth) >= 0.9, (n, true_positives, len(truth))
        assert len(found) <= 1.1 * len(truth)


def _bare(cid: str, first: str, last: str, phone: str | None = None, email: str | None = None) -> dict:
    return {"contact_id": cid, "first_name": first, "last_name": last, "phone": phone, "email": email}


def test_a_common_name_alone_is_no_duplicate_but_a_rare_name_and_a_phone_are():
    """Records that name only a person: 40 share the most common name and nothing else (no company, no
    phone): none of their 780 pairs is proposed. Two that share a rare name and a phone number are."""
    rng = np.random.default_rng(3)
    rows = [
        _bare(f"bg-{i:03d}", FIRSTS[i % 30], LASTS[(i * 7 + i // 30) % 24], f"+4420{7000000 + i * 7919}")
        for i in range(600)
    ]
    rows += [
        _bare(f"js-{i:02d}", "John", "Smith", email=f"js{i}@mail{rng.integers(99)}.example")
        for i in range(40)
    ]
    rows += [
        _bare("xq-1", "Xiomara", "Quintanilla", phone="+1 415 555 0123"),
        _bare("xq-2", "Xiomara", "Quintanilla", phone="(415) 555-0123", email="xq@gmail.com"),
    ]
    found = duplicate_candidates(_frame("contacts", rows), None)
    pairs = _pairs(found)
    assert ("xq-1", "xq-2") in pairs
    assert not any(a.startswith("js-") for a, _ in pairs), sorted(pairs)[:5]
    reasons = found.filter(pl.col("id_a") == "xq-1").get_column("reasons")[0]
    # the rare name weighs more than an average name (term frequencies), and the reasons say so
    weights = {r.rsplit(" (", 1)[0]: float(r.rsplit("(", 1)[1].rstrip(")")) for r in reasons}
    assert weights["same first name"] > 4 and weights["same last name"] > 4


def test_term_frequency_shifts_move_weight_from_common_values_to_rare_ones():
    values = ["smith"] * 50 + ["jones"] * 30 + [f"pair{i // 2}" for i in range(20)] + [None, ""]
    comp = Comparator("last", kind="exact").with_term_frequencies(values)
    assert comp.tf_codes[-1] == comp.tf_codes[-2] == -1  # empty values have no frequency
    counts = comp.tf_counts
    assert counts.sum() == 100
    shift = _tf_shift(counts)
    smith, jones, pair = comp.tf_codes[0], comp.tf_codes[50], comp.tf_codes[80]
    assert shift[smith] < 0 < shift[jones] < shift[pair]  # most agreements are on "smith"
    # averaged over the agreements of random pairs (probability c (c - 1)) the shift is about zero:
    # the level's weight, measured on random pairs, stays where it is
    agreeing = counts * (counts - 1) / (counts * (counts - 1)).sum()
    assert abs(float(agreeing @ shift)) < 0.5
    comp.tf_shift = shift
    got = comp.pair_tf_shift(np.array([0, 80, 0]), np.array([1, 81, 100]))
    assert got[0] == shift[smith] and got[1] == shift[pair] and got[2] == 0.0
    # values that are each held by one record or one duplicate pair (an e-mail, a tax id): no shift, the
    # pair's own shared value does not count as common
    unique = _tf_shift(np.array([1.0] * 50 + [2.0] * 5))
    assert np.allclose(unique, 0.0)


def test_the_random_pair_prior_counts_duplicates_not_coincidences():
    """100 pairs that agree on everything among candidates padded with 1,000 or 10,000 same-name pairs
    that differ elsewhere: the expected number of duplicates (prior x record pairs) stays near 100, where
    the share of the candidates would be learned from whatever the blocking brought in."""
    fields = ["first", "last", "company", "email"]
    rng = np.random.default_rng(0)
    random_levels = np.where(rng.random((20_000, 4)) < 0.01, EXACT, DISAGREE).astype(np.int8)
    strong = np.full((100, 4), EXACT, dtype=np.int8)
    estimates = []
    for coincidences in (1_000, 10_000):
        names_only = np.tile(np.array([EXACT, EXACT, DISAGREE, MISSING], dtype=np.int8), (coincidences, 1))
        levels = np.vstack([strong, names_only])
        model = fit_match_model(levels, random_levels, fields, learn_m=False, record_pairs=5e8)
        estimates.append(model.prior * 5e8)
    assert all(80 <= d <= 130 for d in estimates), estimates
    assert abs(estimates[1] - estimates[0]) < 10


def test_an_unknown_prior_is_refused():
    from holocrm_core.dedupe import link_records

    frame = pl.DataFrame({"name": ["a", "b", "c"]})
    with pytest.raises(ValueError, match="prior must be"):
        link_records(frame, [Comparator("name")], [pl.col("name")], prior="blocked")
