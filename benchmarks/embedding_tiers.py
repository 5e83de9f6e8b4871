"""Embedding tiers side by side, printed as JSON: retrieval quality and texts/s of MiniLM (the packaged
all-MiniLM-L6-v2 through the product's default backend), the static tier (model2vec, distilled here from it,
``holocrm_core.static_embedding``) and the plain baselines (TF-IDF, BM25) on the same texts.

Quality, on data no tier was tuned on (the static model's only parameters are model2vec's defaults and the
384 dimensions the index schema needs):
- generated export (holocrm_core.synth, its hidden truth): "contacts like X" precision@10 (a neighbour is
  right when it has X's industry and seniority in the truth), and recall@10 of the planted duplicates (the
  other record of a planted pair among a record's 10 nearest), contacts and companies;
- ../shared/data/yc_companies: the search set of benchmarks/semantic_search_quality.py (queries in a user's
  words, P@10 of vector / full-text / hybrid search through SimilarityStore, TF-IDF and BM25 beside them)
  and "companies like X" of benchmarks/semantic_quality.py (P@10 of neighbours sharing a tag).
Speed: texts/s on the generated export's documents (every entity type, the mix the pipeline embeds).

Run: .venv/bin/python benchmarks/embedding_tiers.py [--tiers minilm static] [--contacts 3000] [--skip-yc]
Public data is read from ../shared/data (override with HOLOCRM_SHARED_DATA); absent data says "skipped".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LANCEDB_LOG", "error")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _top_k(matrix: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """The k nearest rows (cosine) of each query row, itself excluded, best first."""
    out = []
    for start in range(0, len(queries), 512):
        block = queries[start : start + 512]
        sims = matrix[block] @ matrix.T
        sims[np.arange(len(block)), block] = -np.inf
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out.append(np.take_along_axis(top, order, axis=1))
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def _tfidf_matrix(texts: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    sparse = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2).fit_transform(texts)
    return sparse.toarray().astype(np.float32)


def _generated(n_contacts: int, seed: int, work: Path) -> tuple[pl.DataFrame, dict]:
    from holocrm_core.ingest import ingest_export
    from holocrm_core.synth import generate_export, load_truth
    from holocrm_core.text import entity_documents

    generate_export(work / "export", n_contacts=n_contacts, seed=seed, truth_dir=work / "truth")
    staged = ingest_export(work / "export").tables
    return entity_documents(staged), load_truth(work / "truth")


def _like_x_precision(top: np.ndarray, queries: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(labels[top] == labels[queries][:, None]))


def _duplicate_recall(top: np.ndarray, ids: list[str], pairs: list[tuple[str, str]]) -> float:
    position = {entity_id: i for i, entity_id in enumerate(ids)}
    found = []
    for a, b in pairs:
        if a in position and b in position:
            found.append(position[b] in set(top[position[a]].tolist()))
            found.append(position[a] in set(top[position[b]].tolist()))
    return float(np.mean(found)) if found else float("nan")


def generated_truth(embedders: dict, n_contacts: int, seed: int) -> dict:
    """Quality on the generated export's hidden truth and each tier's speed on its documents."""
    with tempfile.TemporaryDirectory() as tmp:
        documents, truth = _generated(n_contacts, seed, Path(tmp))
    leads = truth["leads"].select(
        "contact_id",
        pl.concat_str([pl.col("industry").fill_null("?"), "seniority"], separator="|").alias("label"),
    )
    contacts = documents.filter(pl.col("entity_type") == "contact").join(
        leads, left_on="entity_id", right_on="contact_id", how="inner"
    )
    companies = documents.filter(pl.col("entity_type") == "company")
    pairs = truth["duplicate_pairs"]
    contact_pairs = pairs.filter(pl.col("entity") == "contacts").select("id_a", "id_b").rows()
    company_pairs = pairs.filter(pl.col("entity") == "companies").select("id_a", "id_b").rows()
    labels = np.asarray(contacts.get_column("label").to_list())
    queries = np.random.default_rng(seed).choice(len(contacts), min(1000, len(contacts)), replace=False)
    report = {
        "contacts": len(contacts),
        "companies": len(companies),
        "documents": len(documents),
        "like_x_queries": len(queries),
        "planted_pairs": {"contacts": len(contact_pairs), "companies": len(company_pairs)},
        "seed": seed,
    }

    def score(name: str, contact_matrix: np.ndarray, company_matrix: np.ndarray) -> dict:
        contact_top = _top_k(contact_matrix, np.arange(len(contacts)))
        company_top = _top_k(company_matrix, np.arange(len(companies)))
        return {
            "contacts_like_x_precision_at_10": round(
                _like_x_precision(contact_top[queries], queries, labels), 4
            ),
            "duplicate_recall_at_10_contacts": round(
                _duplicate_recall(contact_top, contacts.get_column("entity_id").to_list(), contact_pairs), 4
            ),
            "duplicate_recall_at_10_companies": round(
                _duplicate_recall(company_top, companies.get_column("entity_id").to_list(), company_pairs), 4
            ),
        }

    contact_texts = contacts.get_column("text").to_list()
    company_texts = companies.get_column("text").to_list()
    started = time.perf_counter()
    tfidf_contacts, tfidf_companies = _tfidf_matrix(contact_texts), _tfidf_matrix(company_texts)
    report["tfidf"] = score("tfidf", tfidf_contacts, tfidf_companies)
    report["tfidf"]["fit_texts_per_s"] = round(
        (len(contact_texts) + len(company_texts)) / (time.perf_counter() - started), 1
    )
    # speed on a sample of every entity type, as the pipeline embeds them (activities are 80% of the texts)
    contact_matrices: dict[str, np.ndarray] = {}
    sample = documents.sample(min(len(documents), 3000), seed=seed).get_column("text").to_list()
    for tier, embedder in embedders.items():
        started = time.perf_counter()
        contact_matrix = contact_matrices[tier] = embedder.encode(contact_texts)
        company_matrix = embedder.encode(company_texts)
        quality_seconds = time.perf_counter() - started
        report[tier] = score(tier, contact_matrix, company_matrix)
        embedder.encode(sample[:50])  # warm
        load_before = _load()
        started = time.perf_counter()
        embedder.encode(sample)
        seconds = time.perf_counter() - started
        report[tier]["texts_per_s_mixed_documents"] = round(len(sample) / seconds, 1)
        report[tier]["texts_per_s_contacts_companies"] = round(
            (len(contact_texts) + len(company_texts)) / quality_seconds, 1
        )
        report[tier]["load_average_before_after"] = [load_before, _load()]
    if {"minilm", "static"} <= set(embedders):
        a = _top_k(contact_matrices["minilm"], queries)
        b = _top_k(contact_matrices["static"], queries)
        report["static_top10_overlap_with_minilm"] = round(
            float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b, strict=True)])), 4
        )
    return report


def _yc_documents(path: Path) -> tuple[pl.DataFrame, list[set]]:
    """The companies of semantic_search_quality.py as entity documents (same filter, same ids)."""
    from semantic_search_quality import _tags

    from holocrm_core.text import DOCUMENT_SCHEMA, content_hash

    frame = pl.read_csv(path, infer_schema=False).filter(
        pl.col("long_description").is_not_null() & (pl.col("long_description").str.len_chars() > 20)
    )
    texts = frame.get_column("long_description").to_list()
    documents = (
        pl.DataFrame(
            {
                "entity_type": "company",
                "entity_id": [f"yc-{i}" for i in range(len(texts))],
                "text": texts,
                "content_hash": [content_hash(t) for t in texts],
                "name": frame.get_column("company_name").to_list(),
            }
        )
        .with_columns(
            [
                pl.lit(None, dtype=pl.String).alias(c)
                for c in DOCUMENT_SCHEMA
                if c not in ("entity_type", "entity_id", "text", "content_hash", "name")
            ]
        )
        .select(list(DOCUMENT_SCHEMA))
    )
    return documents, [_tags(t) for t in frame.get_column("tags").to_list()]


def yc_search(embedders: dict, rerank_depths: tuple[int, ...] = (30, 100)) -> dict:
    """semantic_search_quality.py's figures under every tier (the same SimilarityStore searches), the
    TF-IDF / BM25 baselines, and for the static tier both its one-stage searches and what ``search`` does on
    a static index: the best ``depth`` hits re-ranked by MiniLM, which embeds only those texts (counted:
    ``texts_embedded_by_minilm``, from a cold cache for the first depth)."""
    from semantic_search_quality import QUERIES, SHARED, _precision_at_10, baselines

    from holocrm_core import store as store_module
    from holocrm_core.embedding import embed_documents
    from holocrm_core.store import SimilarityStore

    path = SHARED / "yc_companies" / "yc_companies.csv"
    if not path.exists():
        return {"skipped": f"{path} absent"}
    documents, tags = _yc_documents(path)
    queries = [q for q, _ in QUERIES]
    wanted = [w for _, w in QUERIES]
    report: dict = {"companies": len(documents), "queries": len(queries)}
    with tempfile.TemporaryDirectory() as tmp:
        for tier, embedder in embedders.items():
            load_before = _load()
            started = time.perf_counter()
            embedded = embed_documents(documents, embedder)
            seconds = time.perf_counter() - started
            store = SimilarityStore(str(Path(tmp) / tier), embedder=embedder)
            store.sync(documents, embedded.vectors)
            report[tier] = {
                "embed_seconds": round(seconds, 1),
                "texts_per_s": round(len(documents) / seconds, 1),
                "load_average_before_after": [load_before, _load()],
            }
            variants = {tier: ("0", "mode")}
            if tier == "static":  # one stage, then what `search` does on a static index (MiniLM re-ranks
                # the best `depth` of the mode's own list, or of the hybrid list in both modes)
                variants.update(
                    {
                        f"static_reranked_top{d}" + ("" if pool == "mode" else f"_pool_{pool}"): (
                            str(d),
                            pool,
                        )
                        for d in rerank_depths
                        for pool in ("mode", "hybrid")
                    }
                )
            for variant, (depth, pool) in variants.items():
                os.environ["HOLOCRM_STATIC_RERANK"] = depth
                store_module.RERANK_POOL = pool
                reached_before = len(store_module._RERANK_CACHE)
                figures = report.setdefault(variant, {})
                for mode in ("vector", "fulltext", "hybrid") if variant == tier else ("vector", "hybrid"):
                    ranked, latencies = [], []
                    for query in queries:
                        t = time.perf_counter()
                        hits = store.search_uncached(query, entity_types=["company"], mode=mode, limit=10)
                        latencies.append(time.perf_counter() - t)
                        ranked.append([int(h["id"][3:]) for h in hits])
                    figures[f"precision_at_10_{mode}"] = round(_precision_at_10(ranked, tags, wanted), 4)
                    figures[f"{mode}_p50_ms"] = round(1000 * float(np.median(latencies)), 1)
                    figures[f"{mode}_p95_ms"] = round(1000 * float(np.percentile(latencies, 95)), 1)
                if variant != tier:
                    figures["texts_embedded_by_minilm"] = len(store_module._RERANK_CACHE) - reached_before
                    figures["load_average_after"] = _load()
            os.environ.pop("HOLOCRM_STATIC_RERANK", None)
            store_module.RERANK_POOL = "hybrid"
    for name, ranked in baselines(documents.get_column("text").to_list(), queries).items():
        report[f"precision_at_10_{name}"] = round(_precision_at_10(ranked, tags, wanted), 4)
    return report


def yc_like_x(embedder) -> dict:
    """benchmarks/semantic_quality.py's "companies like X" (P@10 of neighbours sharing a tag)."""
    import semantic_quality

    out = semantic_quality.yc_companies(embedder)
    out.pop("_vectors", None)
    out.pop("coarse_to_fine", None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", nargs="+", default=["minilm", "static"], choices=["minilm", "static"])
    parser.add_argument("--contacts", type=int, default=3000, help="generated contacts (truth part)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--skip-yc", action="store_true", help="skip the yc_companies parts")
    parser.add_argument("--skip-like-x", action="store_true", help="skip yc 'companies like X' (re-embeds)")
    parser.add_argument("--skip-generated", action="store_true", help="skip the generated-truth part")
    args = parser.parse_args()
    from holocrm_core.embedding import load_embedder

    embedders = {tier: load_embedder(tier=tier) for tier in args.tiers}
    report: dict = {
        "embedders": {t: {"model": e.model_id, "backend": e.backend} for t, e in embedders.items()},
        "load_average_start": _load(),
    }
    if not args.skip_generated:
        report["generated_truth"] = generated_truth(embedders, args.contacts, args.seed)
    if not args.skip_yc:
        report["yc_search"] = yc_search(embedders)
        if not args.skip_like_x:
            report["yc_like_x"] = {tier: yc_like_x(embedders[tier]) for tier in args.tiers}
        if {"minilm", "static"} <= set(args.tiers) and "skipped" not in report["yc_search"]:
            y = report["yc_search"]
            m = y["minilm"]
            report["gap_to_minilm_p_at_10"] = {
                variant: {
                    mode: round(y[variant][f"precision_at_10_{mode}"] - m[f"precision_at_10_{mode}"], 4)
                    for mode in ("vector", "hybrid")
                }
                for variant in y
                if variant.startswith("static")
            }
            report["target_within_0.02_p_at_10"] = {
                variant: {mode: gap >= -0.02 for mode, gap in gaps.items()}
                for variant, gaps in report["gap_to_minilm_p_at_10"].items()
            }
    report["load_average_end"] = _load()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
