"""Search quality on long, real texts, printed as JSON: precision@10 of vector, full-text and hybrid search
through SimilarityStore, beside TF-IDF and BM25 baselines on the same texts.

Corpus: ../shared/data/yc_companies, each company's long description (whole: long ones are chunked for the
vectors and full-text indexed whole). Labels: the companies' tags. Queries: written here in a user's own
words (what a salesperson would type), never copied from the descriptions; a hit is relevant when the
company carries one of the query's tags. Nothing in the search was tuned on these queries.

Run: .venv/bin/python benchmarks/semantic_search_quality.py [--max-rows N] [--backend auto]
Public data is read from ../shared/data (override with HOLOCRM_SHARED_DATA); absent data says "skipped".
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
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
SHARED = Path(os.environ.get("HOLOCRM_SHARED_DATA", ROOT.parent / "shared" / "data"))

# (query in a user's words, tags that make a company a right answer)
QUERIES = [
    ("software that helps restaurants order from their suppliers", {"restaurant-tech", "food-tech"}),
    ("apps where people can buy shares and grow their savings", {"investing"}),
    ("tools that catch vulnerabilities in code before it ships", {"devsecops", "security", "cybersecurity"}),
    ("talking to a therapist online when you feel anxious or depressed", {"mental-health-tech"}),
    ("machines that pick and pack boxes in warehouses", {"robotics"}),
    ("finding and interviewing engineers faster", {"recruiting", "hr-tech"}),
    ("running payroll for staff in many countries", {"payroll", "hr-tech"}),
    ("managing rental apartments for landlords", {"proptech", "real-estate"}),
    ("getting fresh groceries brought to your home", {"grocery", "delivery"}),
    ("online courses for students preparing for exams", {"education", "elearning"}),
    ("measuring and cutting a company's carbon footprint", {"climate", "climatetech"}),
    (
        "using computers to invent new medicines",
        {"drug-discovery", "ai-powered-drug-discovery", "therapeutics"},
    ),
    ("new treatments for people with cancer", {"oncology"}),
    ("cover for small businesses against accidents and losses", {"insurance"}),
    ("games you play on your phone", {"gaming"}),
    ("wallets and apps built on blockchains", {"crypto-web3"}),
    ("helping sales reps close more deals", {"sales", "sales-enablement"}),
    ("keeping cloud bills under control", {"finops", "cloud-computing"}),
    ("flying robots that inspect power lines and buildings", {"drones"}),
    ("charging stations for battery cars", {"electric-vehicles"}),
    ("technology for farmers and their crops", {"agriculture"}),
    ("drafting and reviewing contracts for lawyers", {"legaltech"}),
    ("answering customer tickets automatically", {"customer-support"}),
    ("tracking trucks and shipments across the country", {"logistics", "supply-chain"}),
    ("reading DNA to find inherited disease", {"genomics"}),
    ("helping musicians make and share songs", {"music"}),
    ("buying clothes and outfits online", {"fashion"}),
    ("software for builders and construction sites", {"construction"}),
    ("seeing a doctor over a video call", {"telemedicine", "telehealth"}),
    ("a place for developers to store and query their data", {"databases"}),
    ("bank accounts for people who live paycheck to paycheck", {"neobank", "banking-as-a-service"}),
    ("cameras that understand what they see", {"computer-vision"}),
]


def _tags(raw: str | None) -> set[str]:
    try:
        return set(ast.literal_eval(raw)) if raw else set()
    except (ValueError, SyntaxError):
        return set()


def _precision_at_10(ranked: list[list[int]], tags: list[set], wanted: list[set]) -> float:
    return float(
        np.mean(
            [
                np.mean([bool(tags[i] & w) for i in r[:10]]) if r else 0.0
                for r, w in zip(ranked, wanted, strict=True)
            ]
        )
    )


def _tokens(text: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [t for t in re.findall(r"[a-z0-9]+", text.lower()) if t not in ENGLISH_STOP_WORDS]


def baselines(texts: list[str], queries: list[str]) -> dict[str, list[list[int]]]:
    """TF-IDF cosine (scikit-learn) and Okapi BM25 (rank-bm25) top 10 per query."""
    from rank_bm25 import BM25Okapi
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(sublinear_tf=True, stop_words="english")
    matrix = vectorizer.fit_transform(texts)
    tfidf = (vectorizer.transform(queries) @ matrix.T).toarray()
    bm25 = BM25Okapi([_tokens(t) for t in texts])
    out = {"tfidf": [], "bm25": []}
    for row, query in zip(tfidf, queries, strict=True):
        out["tfidf"].append(np.argsort(-row)[:10].tolist())
        out["bm25"].append(np.argsort(-bm25.get_scores(_tokens(query)))[:10].tolist())
    return out


def run(max_rows: int | None, backend: str) -> dict:
    path = SHARED / "yc_companies" / "yc_companies.csv"
    if not path.exists():
        return {"skipped": f"{path} absent"}
    from holocrm_core.embedding import embed_documents, load_embedder
    from holocrm_core.store import SimilarityStore
    from holocrm_core.text import DOCUMENT_SCHEMA, content_hash

    frame = pl.read_csv(path, infer_schema=False).filter(
        pl.col("long_description").is_not_null() & (pl.col("long_description").str.len_chars() > 20)
    )
    if max_rows:
        frame = frame.head(max_rows)
    texts = frame.get_column("long_description").to_list()
    tags = [_tags(t) for t in frame.get_column("tags").to_list()]
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
    embedder = load_embedder(backend=backend)
    started = time.perf_counter()
    embedded = embed_documents(documents, embedder)
    embed_seconds = time.perf_counter() - started
    queries = [q for q, _ in QUERIES]
    wanted = [w for _, w in QUERIES]
    report = {
        "companies": len(texts),
        "queries": len(queries),
        "chunked_texts": embedded.stats["chunked_texts"],
        "embedder": {"model": embedder.model_name, "backend": embedder.backend},
        "embed_seconds": round(embed_seconds, 1),
        "load_average": list(os.getloadavg()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = SimilarityStore(tmp, embedder=embedder)
        store.sync(documents, embedded.vectors)
        for mode in ("vector", "fulltext", "hybrid"):
            ranked, latencies = [], []
            for query in queries:
                t = time.perf_counter()
                hits = store.search(query, entity_types=["company"], mode=mode, limit=10)
                latencies.append(time.perf_counter() - t)
                ranked.append([int(h["id"][3:]) for h in hits])
            report[f"precision_at_10_{mode}"] = round(_precision_at_10(ranked, tags, wanted), 4)
            report[f"{mode}_p50_ms"] = round(1000 * float(np.median(latencies)), 1)
    for name, ranked in baselines(texts, queries).items():
        report[f"precision_at_10_{name}"] = round(_precision_at_10(ranked, tags, wanted), 4)
    rng = np.random.default_rng(0)
    report["precision_at_10_random"] = round(
        _precision_at_10([rng.choice(len(texts), 10, replace=False).tolist() for _ in queries], tags, wanted),
        4,
    )
    best_baseline = max(report["precision_at_10_tfidf"], report["precision_at_10_bm25"])
    report["hybrid_over_best_baseline"] = round(
        report["precision_at_10_hybrid"] / max(best_baseline, 1e-9), 3
    )
    report["target_hybrid_ge_1.3x_baseline"] = report["hybrid_over_best_baseline"] >= 1.3
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()
    print(json.dumps({"yc_companies_search": run(args.max_rows, args.backend)}, indent=2))


if __name__ == "__main__":
    main()
