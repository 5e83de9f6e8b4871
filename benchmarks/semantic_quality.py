"""Quality of the semantic layer, printed as JSON.

- planted duplicates of the generated export (holocrm_core.synth): precision / recall of duplicate_candidates;
- febrl dataset3 (../shared/data/febrl, soc_sec_id dropped): precision / recall / F1 of the record-linkage engine;
- two-source sets, each staged through a YAML mapping file as the README describes and linked by
  ``link_sources``: febrl dataset4a <-> 4b, and er_benchmarks dblp_acm, abt_buy, amazon_googleproducts
  (ISO-8859-1, CRLF): P / R / F1 beside the reference figure of the data README, largest merge cluster;
- yc_companies (../shared/data/yc_companies): "companies like X" over the long descriptions, mean precision@10
  of results sharing a tag with X, embeddings vs a TF-IDF baseline on the same text;
- coarse-to-fine (96-dim spectral prefix candidates, reranked at 384) recall@10 against exact 384-dim search,
  on the yc corpus and on the generated CRM documents.

Run: .venv/bin/python benchmarks/semantic_quality.py [--contacts 20000] [--seeds 0 1] [--skip-yc]
Public data is read from ../shared/data (override with HOLOCRM_SHARED_DATA); a part whose data is absent
says "skipped".
"""

from __future__ import annotations

import argparse
import ast
import itertools
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
SHARED = Path(os.environ.get("HOLOCRM_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _prf(predicted: set, truth: set) -> dict:
    tp = len(predicted & truth)
    precision = tp / len(predicted) if predicted else 1.0
    recall = tp / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "true_pairs": len(truth),
        "predicted_pairs": len(predicted),
        "true_positives": tp,
    }


def planted_duplicates(n_contacts: int, seeds: list[int]) -> dict:
    from holocrm_core.dedupe import LIKELY_DUPLICATE, duplicate_candidates
    from holocrm_core.ingest import ingest_export
    from holocrm_core.synth import generate_export, load_truth

    out = {"n_contacts": n_contacts, "seeds": seeds, "threshold": 0.9, "per_seed": []}
    totals = {"contact": [set(), set()], "company": [set(), set()]}
    misses = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            generate_export(tmp / "export", n_contacts=n_contacts, seed=seed, truth_dir=tmp / "truth")
            staged = ingest_export(tmp / "export").tables
            truth = load_truth(tmp / "truth")["duplicate_pairs"]
        started = time.perf_counter()
        all_scored = duplicate_candidates(staged["contacts"], staged["companies"], min_score=0.5)
        seconds = time.perf_counter() - started
        candidates = all_scored.filter(pl.col("score") >= LIKELY_DUPLICATE)
        row = {"seed": seed, "seconds": round(seconds, 2)}
        for entity_type, entity in (("contact", "contacts"), ("company", "companies")):
            t = {
                (seed, *sorted(p))
                for p in truth.filter(pl.col("entity") == entity).select("id_a", "id_b").rows()
            }
            p = {
                (seed, *sorted(r))
                for r in candidates.filter(pl.col("entity_type") == entity_type).select("id_a", "id_b").rows()
            }
            totals[entity_type][0] |= p
            totals[entity_type][1] |= t
            row[entity_type] = _prf(p, t)
            loose = {
                (seed, *sorted(r))
                for r in all_scored.filter(pl.col("entity_type") == entity_type).select("id_a", "id_b").rows()
            }
            row[f"{entity_type}_at_score_0.5"] = _prf(loose, t)
            kinds = dict(
                truth.filter(pl.col("entity") == entity)
                .select(
                    pl.concat_str(
                        [pl.min_horizontal("id_a", "id_b"), pl.max_horizontal("id_a", "id_b")], separator="|"
                    ),
                    "kind",
                )
                .rows()
            )
            misses += [
                {"entity": entity_type, "pair": f"{a}|{b}", "kind": kinds.get(f"{a}|{b}")}
                for _, a, b in t - p
            ]
        out["per_seed"].append(row)
    for entity_type, (p, t) in totals.items():
        out[entity_type] = _prf(p, t)
    out["all"] = _prf(
        totals["contact"][0] | totals["company"][0], totals["contact"][1] | totals["company"][1]
    )
    out["missed_by_kind"] = pl.DataFrame(misses).group_by("entity", "kind").len().rows() if misses else []
    return out


def febrl(dataset: str = "dataset3", prior: str = "candidates", term_frequencies: bool = False) -> dict:
    """febrl within one table. ``prior="records"`` with ``term_frequencies``: the model that
    ``duplicate_candidates`` uses (the chance that two random records are one; exact agreements weighed by
    how common the value is), here on hand-built comparators, as a check of that method on public data."""
    from holocrm_core.dedupe import Comparator, PersonNames, link_records

    path = SHARED / "febrl" / f"{dataset}.csv"
    if not path.exists():
        return {"skipped": f"{path} absent"}
    started = time.perf_counter()
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.rename({c: c.strip() for c in frame.columns}).with_columns(
        pl.all().str.strip_chars().fill_null("")
    )
    frame = frame.drop("soc_sec_id")  # a unique id makes the task trivial; a CRM has none
    entity = frame.get_column("rec_id").str.extract(r"rec-(\d+)-").to_list()
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(entity):
        groups.setdefault(e, []).append(i)
    truth = {pair for rows in groups.values() for pair in itertools.combinations(sorted(rows), 2)}

    frame = frame.with_row_index("row").with_columns(pl.col("row").cast(pl.Int64))
    frame = frame.with_columns(pl.col("row").alias("row_first"), pl.col("row").alias("row_last"))
    names = PersonNames(frame.get_column("given_name").to_list(), frame.get_column("surname").to_list())
    comparators = [
        Comparator("row_first", function=names.first),
        Comparator("row_last", function=names.last),
        Comparator("street_number", kind="digits"),
        Comparator("address_1"),
        Comparator("address_2"),
        Comparator("suburb"),
        Comparator("postcode", kind="digits"),
        Comparator("state", kind="exact"),
        Comparator("date_of_birth", kind="digits"),
    ]
    if term_frequencies:
        values = {"row_first": "given_name", "row_last": "surname"}
        for comp in comparators:  # every field here is of a kind in TERM_FREQUENCY_KINDS
            comp.with_term_frequencies(frame.get_column(values.get(comp.name, comp.name)).to_list())
    block_keys = [
        pl.col(c) for c in ("given_name", "surname", "postcode", "date_of_birth", "suburb", "address_1")
    ]
    block_keys.append(
        pl.concat_str([pl.col("surname").str.slice(0, 2), pl.col("given_name").str.slice(0, 2)])
    )
    sorted_keys = [
        pl.concat_str([pl.col("surname"), pl.col("given_name")]),
        pl.concat_str([pl.col("given_name"), pl.col("surname")]),
        pl.col("address_1"),
        pl.col("date_of_birth"),
    ]
    result = link_records(frame, comparators, block_keys, sorted_keys, prior=prior)
    candidates = set(map(tuple, result.pairs.select("i", "j").rows()))
    predicted = set(map(tuple, result.pairs.filter(pl.col("score") >= 0.5).select("i", "j").rows()))
    return {
        "dataset": dataset,
        "records": len(frame),
        "fields": "all but soc_sec_id",
        "prior": prior,
        "term_frequencies": term_frequencies,
        "threshold": 0.5,
        **_prf(predicted, truth),
        "candidate_pairs": result.candidates,
        "blocking_recall": round(len(candidates & truth) / len(truth), 4),
        "em_iterations": result.model.iterations,
        "seconds": round(time.perf_counter() - started, 2),
    }


# ------------------------------------------------------------------------------------------ two-source sets
# Each set is staged through the README's mapping mechanism (a YAML mapping file per source, as a user would
# write it), then linked by holocrm_core.dedupe.link_sources with the fields it types on its own.
TWO_SOURCE_SETS = {
    "febrl_dataset4a_4b": {
        "folder": "febrl",
        "entity": "contacts",
        "reference_f1": 0.991,
        "reference": "multi-pass blocking + ECM without soc_sec_id (data README)",
        "left": "dataset4a.csv",
        "right": "dataset4b.csv",
        "truth": None,
        "columns": {"rec_id": "contact_id", "given_name": "first_name", "surname": "last_name"},
        "drop": ["cf_soc_sec_id"],
        "defaults": {"lifecycle_status": "lead"},
        "optional": ["created_at"],
    },
    "dblp_acm": {
        "folder": "er_benchmarks/dblp_acm",
        "entity": "companies",
        "reference_f1": 0.978,
        "reference": "title token-set ratio >= 90 with equal year, best ACM per DBLP record (data README)",
        "left": "DBLP2.csv",
        "right": "ACM.csv",
        "truth": ("DBLP-ACM_perfectMapping.csv", "idDBLP", "idACM"),
        "columns": {"id": "company_id", "title": "name"},
    },
    "abt_buy": {
        "folder": "er_benchmarks/abt_buy",
        "entity": "companies",
        "reference_f1": 0.838,
        "reference": "name TF-IDF char 3-5-gram cosine >= 0.3, best Buy per Abt (data README)",
        "left": "Abt.csv",
        "right": "Buy.csv",
        "truth": ("abt_buy_perfectMapping.csv", "idAbt", "idBuy"),
        "columns": {"id": "company_id", "name": "name", "description": "notes"},
    },
    "amazon_googleproducts": {
        "folder": "er_benchmarks/amazon_googleproducts",
        "entity": "companies",
        "reference_f1": 0.601,
        "reference": "title + manufacturer TF-IDF char 3-5-gram cosine >= 0.4, best Google per Amazon",
        "left": "Amazon.csv",
        "right": "GoogleProducts.csv",
        "truth": ("Amzon_GoogleProducts_perfectMapping.csv", "idAmazon", "idGoogleBase"),
        "columns": {"id": "company_id", "title": "name", "name": "name", "description": "notes"},
    },
}


def _stage_through_mapping(folder: Path, file_name: str, spec: dict, work: Path) -> tuple[pl.DataFrame, dict]:
    """Stage one source file with a mapping file written the way the README describes."""
    import shutil

    import yaml

    from holocrm_core.ingest import ingest_export

    export = work / Path(file_name).stem
    export.mkdir(parents=True)
    shutil.copy(folder / file_name, export / file_name)  # a scratch copy: the export folder holds one source
    body = {"files": file_name, "columns": spec["columns"]}
    for key in ("defaults", "optional"):
        if spec.get(key):
            body[key] = spec[key]
    mapping = {
        "name": f"benchmark_{Path(file_name).stem}",
        "encoding": "latin-1",
        "entities": {spec["entity"]: body},
    }
    mapping_path = work / f"{Path(file_name).stem}.yaml"
    mapping_path.write_text(yaml.safe_dump(mapping))
    result = ingest_export(export, mapping=mapping_path)
    table = result.tables[spec["entity"]]
    quarantined = len(result.quarantine) if getattr(result, "quarantine", None) is not None else None
    return table.drop([c for c in spec.get("drop", []) if c in table.columns]), {
        "staged": len(table),
        "quarantined": quarantined,
    }


def _truth_pairs(folder: Path, spec: dict, left: pl.DataFrame, right: pl.DataFrame, id_column: str) -> set:
    if spec["truth"] is None:  # febrl: rec-<n>-org in 4a pairs with rec-<n>-dup-0 in 4b
        key = lambda frame: frame.select(id_column, pl.col(id_column).str.extract(r"rec-(\d+)-").alias("k"))  # noqa
        return set(key(left).join(key(right), on="k").select(id_column, f"{id_column}_right").rows())
    file_name, a, b = spec["truth"]
    truth = pl.read_csv(folder / file_name, infer_schema=False, encoding="utf8-lossy")
    return {(str(x).strip(), str(y).strip()) for x, y in truth.select(a, b).rows()}


def _cluster_sizes(pairs: set) -> dict:
    """Largest connected component of a set of (left, right) pairs."""
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(("l", a))] = find(("r", b))
    sizes: dict = {}
    for node in list(parent):
        sizes[find(node)] = sizes.get(find(node), 0) + 1
    return {node: sizes[find(node)] for node in parent}


def two_source_set(name: str) -> dict:
    from holocrm_core.dedupe import link_sources

    spec = TWO_SOURCE_SETS[name]
    folder = SHARED / spec["folder"]
    if not (folder / spec["left"]).exists():
        return {"skipped": f"{folder / spec['left']} absent"}
    started = time.perf_counter()
    id_column = {"companies": "company_id", "contacts": "contact_id"}[spec["entity"]]
    with tempfile.TemporaryDirectory() as tmp:
        left, left_rows = _stage_through_mapping(folder, spec["left"], spec, Path(tmp))
        right, right_rows = _stage_through_mapping(folder, spec["right"], spec, Path(tmp))
    staged_seconds = time.perf_counter() - started
    truth = _truth_pairs(folder, spec, left, right, id_column)
    pairs = link_sources(left, right, entity=spec["entity"])
    predicted = set(pairs.select("id_left", "id_right").rows())
    true_size = _cluster_sizes(truth)
    predicted_size = _cluster_sizes(predicted)
    oversized = sum(1 for node, size in predicted_size.items() if size > true_size.get(node, 1) + 1)
    report = _prf(predicted, truth)
    return {
        "entity": spec["entity"],
        "left_rows": left_rows,
        "right_rows": right_rows,
        **report,
        "reference_f1": spec["reference_f1"],
        "reference": spec["reference"],
        "beats_reference": report["f1"] > spec["reference_f1"],
        "largest_predicted_cluster": max(predicted_size.values(), default=0),
        "largest_true_cluster": max(true_size.values(), default=0),
        "records_in_clusters_larger_than_true_plus_one": oversized,
        "stage_seconds": round(staged_seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "example_reasons": pairs.head(1).get_column("reasons").to_list()[0] if len(pairs) else [],
    }


def _precision_at_10(neighbours: np.ndarray, queries: np.ndarray, tags: list[set]) -> float:
    """Mean share of a query's 10 results that share at least one tag with it."""
    return float(
        np.mean(
            [
                np.mean([bool(tags[q] & tags[j]) for j in row])
                for q, row in zip(queries, neighbours, strict=True)
            ]
        )
    )


def _top_k(matrix: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    sims = matrix[queries] @ matrix.T
    sims[np.arange(len(queries)), queries] = -np.inf
    top = np.argpartition(-sims, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def coarse_to_fine_recall(
    vectors: np.ndarray,
    queries: np.ndarray,
    scale: int = 96,
    candidates: int = 100,
    k: int = 10,
    fit_rows: int | None = None,
) -> dict:
    from holocrm_core.embedding import SpectralRotation

    rotation = SpectralRotation.fit(vectors if fit_rows is None else vectors[:fit_rows])
    coarse = rotation.transform(vectors, scale)
    exact = _top_k(vectors, queries, k)
    short = _top_k(coarse, queries, candidates)
    refined = []
    for q, cand in zip(queries, short, strict=True):
        sims = vectors[cand] @ vectors[q]
        refined.append(cand[np.argsort(-sims)[:k]])
    refined = np.asarray(refined)
    prefix_only = short[:, :k]
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, refined, strict=True)])
    recall_prefix = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, prefix_only, strict=True)])
    # random dimensions of the same size, as the baseline a spectral prefix must beat
    dims = np.random.default_rng(0).choice(vectors.shape[1], scale, replace=False)
    rand = vectors[:, dims] / np.linalg.norm(vectors[:, dims], axis=1, keepdims=True)
    rand_top = _top_k(rand, queries, candidates)
    rand_refined = [
        c[np.argsort(-(vectors[c] @ vectors[q]))[:k]] for q, c in zip(queries, rand_top, strict=True)
    ]
    recall_random = np.mean([len(set(a) & set(b)) / k for a, b in zip(exact, rand_refined, strict=True)])
    return {
        "scale": scale,
        "candidates": candidates,
        "queries": len(queries),
        "recall_at_10_coarse_to_fine": round(float(recall), 4),
        "recall_at_10_prefix_only": round(float(recall_prefix), 4),
        "recall_at_10_random_dims_then_rerank": round(float(recall_random), 4),
        "explained_variance": {str(s): round(rotation.explained_variance(s), 4) for s in (96, 192)},
    }


def yc_companies(embedder, max_rows: int | None = None) -> dict:
    path = SHARED / "yc_companies" / "yc_companies.csv"
    if not path.exists():
        return {"skipped": f"{path} absent"}
    from sklearn.feature_extraction.text import TfidfVectorizer

    frame = pl.read_csv(path, infer_schema=False).filter(
        pl.col("long_description").is_not_null() & (pl.col("long_description").str.len_chars() > 20)
    )
    if max_rows:
        frame = frame.head(max_rows)
    texts = frame.get_column("long_description").to_list()
    tags = []
    for raw in frame.get_column("tags").to_list():
        try:
            tags.append(set(ast.literal_eval(raw)) if raw else set())
        except (ValueError, SyntaxError):
            tags.append(set())
    started = time.perf_counter()
    vectors = embedder.encode(texts)
    embed_seconds = time.perf_counter() - started
    tfidf = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2).fit_transform(texts)
    queries = np.array([i for i, t in enumerate(tags) if t])
    rng = np.random.default_rng(0)
    queries = np.sort(rng.choice(queries, min(len(queries), 1000), replace=False))
    emb_top = _top_k(vectors, queries)
    sims = (tfidf[queries] @ tfidf.T).toarray()
    sims[np.arange(len(queries)), queries] = -np.inf
    tfidf_top = np.argsort(-sims, axis=1)[:, :10]
    # tag sharing of 10 random companies: the floor both should clear
    random_top = rng.integers(0, len(texts), size=(len(queries), 10))
    return {
        "companies": len(texts),
        "queries": len(queries),
        "precision_at_10_embeddings": round(_precision_at_10(emb_top, queries, tags), 4),
        "precision_at_10_tfidf": round(_precision_at_10(tfidf_top, queries, tags), 4),
        "precision_at_10_random": round(_precision_at_10(random_top, queries, tags), 4),
        "embed_seconds": round(embed_seconds, 1),
        "coarse_to_fine": coarse_to_fine_recall(vectors, queries),
        "_vectors": vectors,
    }


def crm_coarse_to_fine(embedder, n_contacts: int) -> dict:
    from holocrm_core.ingest import ingest_export
    from holocrm_core.synth import generate_export
    from holocrm_core.text import entity_documents

    with tempfile.TemporaryDirectory() as tmp:
        generate_export(Path(tmp) / "export", n_contacts=n_contacts, seed=1)
        staged = ingest_export(Path(tmp) / "export").tables
    documents = entity_documents(staged).filter(pl.col("entity_type") != "activity")
    vectors = embedder.encode(documents.get_column("text").to_list())
    queries = np.random.default_rng(0).choice(len(vectors), min(500, len(vectors)), replace=False)
    return {"documents": len(documents), **coarse_to_fine_recall(vectors, queries)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--contacts", type=int, default=20000, help="contacts per generated export (planted pairs)"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument(
        "--skip-yc", action="store_true", help="skip the yc_companies embedding run (about 1 min)"
    )
    parser.add_argument("--backend", default="auto")
    parser.add_argument(
        "--two-source",
        nargs="*",
        default=None,
        choices=list(TWO_SOURCE_SETS),
        help="only these two-source linkage sets (default: all)",
    )
    args = parser.parse_args()

    report: dict = {}
    report["planted_duplicates"] = planted_duplicates(args.contacts, args.seeds)
    report["febrl_dataset3"] = febrl("dataset3")
    # the within-table model of duplicate_candidates (random-pair prior, term frequencies) on febrl
    report["febrl_dataset3_records_prior_tf"] = febrl("dataset3", prior="records", term_frequencies=True)
    for name in args.two_source or list(TWO_SOURCE_SETS):
        report[name] = two_source_set(name)
    if not args.skip_yc:
        from holocrm_core.embedding import load_embedder

        embedder = load_embedder(backend=args.backend)
        report["embedder"] = {"model": embedder.model_name, "backend": embedder.backend}
        yc = yc_companies(embedder)
        yc.pop("_vectors", None)
        report["yc_companies_like_x"] = yc
        report["crm_coarse_to_fine"] = crm_coarse_to_fine(embedder, 2000)
    targets = {
        "planted_precision_recall_ge_0.95": report["planted_duplicates"]["all"]["precision"] >= 0.95
        and report["planted_duplicates"]["all"]["recall"] >= 0.95,
        "febrl3_f1_ge_0.99": report["febrl_dataset3"].get("f1", 0) >= 0.99,
    }
    for name in args.two_source or list(TWO_SOURCE_SETS):
        part = report[name]
        if "skipped" in part:
            continue
        structured = name.startswith("febrl")  # people / companies / places; the rest are products or papers
        targets[f"{name}_f1_ge_{0.99 if structured else 'reference'}"] = (
            part["f1"] >= 0.99 if structured else part["beats_reference"]
        )
        targets[f"{name}_no_cluster_above_true_size_plus_one"] = (
            part["records_in_clusters_larger_than_true_plus_one"] == 0
        )
    if "yc_companies_like_x" in report and "skipped" not in report["yc_companies_like_x"]:
        yc = report["yc_companies_like_x"]
        targets["yc_embeddings_beat_tfidf"] = yc["precision_at_10_embeddings"] > yc["precision_at_10_tfidf"]
    report["targets_met"] = targets
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
