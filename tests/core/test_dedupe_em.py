"""m probabilities learned by constrained EM (``weights.learned_m``): recovered from a comparison table with
known m, never ordered against the agreement levels, floored, left at the prior where a field has too few
events; and on a companies table whose duplicates carry typos, a typo'd name without a web domain is
proposed because the table's own duplicates look like it."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import holocrm_core.dedupe.link as link_module
from holocrm_core.dedupe import duplicate_candidates, fit_match_model
from holocrm_core.dedupe.compare import DISAGREE, EXACT, LEVELS, MISSING, SIMILAR, VERY_SIMILAR
from holocrm_core.dedupe.weights import DEFAULT_M, M_FLOOR, MIN_FIELD_EVENTS, learned_m, monotone_m
from holocrm_core.schema import ENTITIES

TRUE_M = np.array([[0.05, 0.10, 0.25, 0.60], [0.02, 0.08, 0.20, 0.70], [0.30, 0.05, 0.05, 0.60]])
TRUE_U = np.array([[0.90, 0.06, 0.03, 0.01], [0.85, 0.10, 0.04, 0.01], [0.97, 0.01, 0.01, 0.01]])


def _draw(rng, probabilities: np.ndarray, n: int) -> np.ndarray:
    return np.stack([rng.choice(LEVELS, size=n, p=p / p.sum()) for p in probabilities], axis=1).astype(
        np.int8
    )


def test_em_recovers_known_m_from_a_comparison_table():
    """4,000 duplicates drawn from TRUE_M among 200,000 unrelated candidates drawn from TRUE_U: EM, started
    from the default prior, learns each level's m within 0.02, and the share of duplicates."""
    rng = np.random.default_rng(0)
    duplicates, unrelated = _draw(rng, TRUE_M, 4_000), _draw(rng, TRUE_U, 200_000)
    random_levels = _draw(rng, TRUE_U, 200_000)
    model = fit_match_model(np.vstack([duplicates, unrelated]), random_levels, ["a", "b", "c"])
    assert np.abs(model.m - TRUE_M).max() < 0.02, model.m
    assert abs(model.prior - 4_000 / 204_000) < 0.003
    # the same pairs with m held at the prior: wrong weights, so a worse estimate of the duplicates
    fixed = fit_match_model(np.vstack([duplicates, unrelated]), random_levels, ["a", "b", "c"], learn_m=False)
    assert abs(fixed.prior - 4_000 / 204_000) > abs(model.prior - 4_000 / 204_000)


def test_no_level_weighs_less_than_a_less_agreeing_one():
    """Duplicates that are 'very similar' far more often than exact (relative to unrelated pairs) cannot
    make an exact agreement weigh less than a typo: the weights log(m / u) never fall as agreement rises,
    on any field, after EM; and ``monotone_m`` keeps distributions and leaves ordered ones alone."""
    rng = np.random.default_rng(1)
    odd_m = np.array([[0.02, 0.05, 0.63, 0.30], [0.05, 0.60, 0.05, 0.30]])
    u = np.array([[0.90, 0.06, 0.03, 0.01], [0.90, 0.06, 0.03, 0.01]])
    levels = np.vstack([_draw(rng, odd_m, 3_000), _draw(rng, u, 100_000)])
    model = fit_match_model(levels, _draw(rng, u, 100_000), ["x", "y"])
    weights = model.weights()
    assert (np.diff(weights, axis=1) >= -1e-9).all(), weights
    assert np.allclose(model.m.sum(axis=1), 1.0)
    for _ in range(50):
        m = rng.dirichlet(np.ones(LEVELS), size=3)
        uu = rng.dirichlet(np.ones(LEVELS), size=3)
        out = monotone_m(m, uu)
        assert np.allclose(out.sum(axis=1), 1.0)
        assert (np.diff(np.log(out / uu), axis=1) >= -1e-9).all()
    ordered = np.array([[0.01, 0.04, 0.15, 0.80]])
    assert np.allclose(monotone_m(ordered, np.array([[0.9, 0.06, 0.03, 0.01]])), ordered)


def test_a_level_never_seen_keeps_a_floor_and_a_sparse_field_keeps_its_prior():
    """Duplicates that never disagree on a field: its 'different' m stays at the floor (a tenth of the
    prior's), not at zero (EM confirms itself: a pair that disagrees gets a low posterior, never counts).
    A field compared on fewer than MIN_FIELD_EVENTS expected duplicates keeps the prior m."""
    u = np.tile(np.array([0.9, 0.06, 0.03, 0.01]), (2, 1))
    counts = np.array([[0.0, 0.0, 100.0, 2_000.0], [0.0, 0.0, 0.0, MIN_FIELD_EVENTS / 2]])
    m = learned_m(counts, np.tile(DEFAULT_M, (2, 1)), u)
    assert m[0, DISAGREE] >= M_FLOOR * DEFAULT_M[DISAGREE] - 1e-12
    assert m[0, EXACT] > 0.9
    assert np.allclose(m[1], monotone_m(DEFAULT_M[None, :], u[1:]))


CITIES = ["Oslo", "Lima", "Perth", "Boston", "Denver", "Austin", "Berlin", "Madrid", "Lyon", "Porto"]
CITIES += ["Dublin", "Leeds", "Seoul", "Osaka", "Quito", "Cairo", "Accra", "Dakar", "Hanoi", "Delhi"]
SUFFIXES = ["Labs", "Systems", "Foods", "Logistics", "Media", "Health", "Partners", "Energy"]


def _companies_with_typo_duplicates(n: int, planted: int, seed: int = 0) -> tuple[pl.DataFrame, list]:
    """``n`` companies with made-up names, and ``planted`` copies whose name has two letters swapped and
    no web domain (as an import typed by hand), in the same city, country and industry."""
    rng = np.random.default_rng(seed)
    rows, names = [], set()
    while len(rows) < n:
        stem = "".join(rng.choice(list("bcdfgklmnprstvz")) + rng.choice(list("aeiou")) for _ in range(4))
        name = f"{stem.title()} {SUFFIXES[rng.integers(len(SUFFIXES))]}"
        if name in names:
            continue
        names.add(name)
        rows.append(
            {
                "company_id": f"c-{len(rows):05d}",
                "name": name,
                "domain": f"{stem}{len(rows)}.example",
                "country": ["US", "GB", "DE", "FR", "SE"][rng.integers(5)],
                "industry": ["software", "retail", "energy", "health", "media", "finance"][rng.integers(6)],
                "city": CITIES[rng.integers(len(CITIES))],
            }
        )
    planted_pairs = []
    for k, source in enumerate(rng.choice(n, size=planted, replace=False)):
        copy = dict(rows[source], company_id=f"d-{k:04d}", domain=None)
        name = copy["name"]
        i = int(rng.integers(1, len(name.split()[0]) - 1))
        copy["name"] = name[:i] + name[i + 1] + name[i] + name[i + 2 :]
        rows.append(copy)
        planted_pairs.append((rows[source]["company_id"], copy["company_id"]))
    schema = ENTITIES["companies"]
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema), planted_pairs


def test_a_typod_company_name_without_domain_is_proposed_when_the_data_s_duplicates_look_like_it(
    monkeypatch: pytest.MonkeyPatch,
):
    """2,000 companies and 50 duplicates, each with a typo in the name and no domain. EM learns that a
    duplicate's name is often 'nearly identical', so these pairs score above the 0.9 of a merge proposal
    (and nothing else does); with the kind's fixed m (0.04 for that level) they scored about 0.83."""
    companies, planted = _companies_with_typo_duplicates(2_000, 50)

    def scores() -> tuple[np.ndarray, int]:
        found = duplicate_candidates(None, companies, min_score=0.5)
        by_pair = {(a, b): s for a, b, s in found.select("id_a", "id_b", "score").rows()}
        return np.array([by_pair.get(tuple(sorted(p)), 0.0) for p in planted]), int(
            (found.get_column("score") >= 0.9).sum()
        )

    learned, proposed = scores()
    assert (learned >= 0.9).all(), np.sort(learned)[:5]
    assert proposed <= len(planted) + 1
    monkeypatch.setattr(link_module, "LEARN_M", False)
    fixed, _ = scores()
    assert (fixed < 0.9).mean() > 0.5, np.median(fixed)  # what learning m changes


@pytest.mark.parametrize("level", [SIMILAR, VERY_SIMILAR])
def test_weights_of_unseen_middle_levels_stay_between_their_neighbours(level):
    """An 'exact' kind never yields the middle levels; whatever m they get, their weight lies between
    'different' and 'identical' (they cannot outweigh an exact agreement)."""
    rng = np.random.default_rng(2)
    m = np.array([[0.1, 0.0, 0.0, 0.9]])
    u = np.array([[0.95, 0.0, 0.0, 0.05]])
    levels = np.vstack([_draw(rng, m + 1e-12, 500), _draw(rng, u + 1e-12, 20_000)])
    levels[levels == MISSING] = DISAGREE
    model = fit_match_model(levels, _draw(rng, u + 1e-12, 20_000), ["exact"])
    w = model.weights()[0]
    assert w[DISAGREE] <= w[level] <= w[EXACT]
