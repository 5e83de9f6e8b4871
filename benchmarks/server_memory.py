"""Where a server's memory and start time go: the API's snapshot build, step by step, on an existing home.

    nice -n 10 .venv/bin/python benchmarks/server_memory.py --home /tmp/srv200k/home
    flock /work/bench.lock env HOLOCRM_WARM_TYPES=contact,company,deal .venv/bin/python \
        benchmarks/server_memory.py --home /work/scale1m/home

Builds one snapshot as ``holocrm serve`` does (``ArtifactLoader.reload(force=True)`` with the API's prepare
step, ``holocrm_api.records.warm_snapshot``) in this process, with each stage wrapped: the seconds it took
and the change of this process's resident memory (``/proc/self/statm``) across it, plus the peak
(``VmHWM``). Stages nest (``open_store`` holds ``entity_vectors:contact``, which holds ``vector_index``); a
stage's delta includes its children's. Then, per component of the built snapshot, an estimate of what it
holds (numpy arrays' bytes, polars frames' ``estimated_size``, ``sys.getsizeof`` over Python containers of
strings, sampled). Prints JSON.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20


def status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def smaps_mb() -> dict[str, float]:
    """Resident memory split into anonymous (private to this process) and file-backed pages (shareable)."""
    out = {"rss": 0.0, "anonymous": 0.0, "file": 0.0}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] == "Rss:":
                out["rss"] = int(parts[1]) / 1024
            elif parts[0] == "Anonymous:":
                out["anonymous"] = int(parts[1]) / 1024
    out["file"] = out["rss"] - out["anonymous"]
    return {k: round(v, 1) for k, v in out.items()}


STAGES: list[dict] = []
_DEPTH = [0]


def staged(name_of):
    """Wrap a callable: record its seconds and RSS delta as a stage (``name_of(*args)`` names it)."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            name = name_of(*args, **kwargs) if callable(name_of) else name_of
            before, started = rss_mb(), time.perf_counter()
            entry = {"stage": name, "depth": _DEPTH[0]}
            STAGES.append(entry)
            _DEPTH[0] += 1
            try:
                return fn(*args, **kwargs)
            finally:
                _DEPTH[0] -= 1
                entry["seconds"] = round(time.perf_counter() - started, 2)
                entry["rss_delta_mb"] = round(rss_mb() - before, 1)
                entry["rss_after_mb"] = round(rss_mb(), 1)
                print(json.dumps(entry), file=sys.stderr, flush=True)

        return inner

    return wrap


def instrument() -> None:
    import holocrm_api.loader as loader
    import holocrm_api.records as records
    import holocrm_core.store as store
    import holocrm_core.vectors as vectors
    from holocrm_core.services import labels

    L = loader.ArtifactLoader
    for method in (
        "_scores",
        "_contact_contexts",
        "_deal_facts",
        "_open_store",
        "_decisions",
        "_nlq_context",
        "_embedder",
        "_fingerprint",
        "_served_scorer",
        "_score_all",
    ):
        setattr(L, method, staged(method)(getattr(L, method)))
    store.SimilarityStore.entity_vectors = staged(lambda self, t: f"entity_vectors:{t}")(
        store.SimilarityStore.entity_vectors
    )
    store.EntityVectors.load = classmethod(
        staged("entity_vectors.load (LanceDB read + arrays)")(store.EntityVectors.load.__func__)
    )
    vectors.VectorIndex.__init__ = staged(lambda self, v, *a, **k: f"vector_index ({len(v)} rows)")(
        vectors.VectorIndex.__init__
    )
    records.warm_labels = staged("warm_labels")(records.warm_labels)
    records.warm_similar = staged("warm_similar")(records.warm_similar)
    labels.RecordLabels._labels = staged(lambda self, t, ids: f"labels:{t}")(labels.RecordLabels._labels)
    if hasattr(labels.RecordLabels, "_every_label"):
        labels.RecordLabels._every_label = staged(lambda self, t: f"every_label:{t}")(
            labels.RecordLabels._every_label
        )
    import holocrm_core.services.labels as lab

    if hasattr(lab.RecordLabels, "_rows_by_position"):
        lab.RecordLabels._rows_by_position = staged(lambda self, t, ids: f"label_positions:{t}")(
            lab.RecordLabels._rows_by_position
        )
    loader.EntityScores.__post_init__ = staged(lambda self: f"scores_index:{self.id_column}")(
        loader.EntityScores.__post_init__
    )


def _nbytes(obj) -> int | None:
    """Bytes of the array-backed containers (holocrm_core.id_index, FrameRows, LabelColumn), else None."""
    import numpy as np
    import polars as pl

    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, pl.DataFrame):
        return int(obj.estimated_size())
    if hasattr(obj, "nbytes") and not isinstance(obj, (list, dict)):  # Arrow arrays
        return int(obj.nbytes)
    slots = getattr(type(obj), "__slots__", None)
    fields = [getattr(obj, s) for s in slots] if slots else list(getattr(obj, "__dict__", {}).values())
    if not fields or isinstance(obj, (list, dict, str)):
        return None
    sizes = [_nbytes(f) for f in fields if f is not None and not isinstance(f, (int, float, str))]
    return sum(x for x in sizes if x is not None) if sizes else None


def _deep_strings(container, sample: int = 2000) -> int:
    """Bytes of a dict/list of strings (or of dicts of scalars), estimated from a sample of its items."""
    held = _nbytes(container)
    if held is not None:
        return held
    n = len(container)
    if not n:
        return sys.getsizeof(container)
    items = list(container.items())[:sample] if isinstance(container, dict) else list(container[:sample])
    each = 0
    for item in items:
        for part in item if isinstance(item, tuple) else (item,):
            each += sys.getsizeof(part)
            if isinstance(part, dict):
                each += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in part.items())
    return sys.getsizeof(container) + int(each / len(items) * n)


def components(snap) -> dict[str, float]:
    import numpy as np
    import polars as pl

    from holocrm_api.records import served

    mb = 2**20
    out: dict[str, float] = {}
    for name, frame in snap.tables.items():
        out[f"table:{name} ({frame.height} x {frame.width})"] = frame.estimated_size() / mb
    out["snapshot.contacts"] = _deep_strings(snap.contacts) / mb
    out["snapshot.deals"] = _deep_strings(snap.deals) / mb
    for entity, s in snap.scores.items():
        out[f"scores:{entity} frame"] = 0 if s.frame is None else s.frame.estimated_size() / mb
        out[f"scores:{entity} id -> row"] = _deep_strings(s._position) / mb
        out[f"scores:{entity} open_ids frozenset"] = _deep_strings(list(s.open_ids)) / mb
    if snap.duplicates is not None:
        out["duplicates (sorted copy)"] = snap.duplicates.estimated_size() / mb
    if snap.store is not None:
        for entity_type in snap.store.in_memory():
            ev = snap.store.entity_vectors(entity_type)
            arrays = {
                "vectors": ev.vectors,
                "coarse": ev.coarse,
                **{f"codes.{c}": a for c, a in ev.codes.items()},
            }
            for key, array in arrays.items():
                mapped = " (memory-mapped file)" if isinstance(array, np.memmap) else ""
                out[f"vectors:{entity_type}.{key}{mapped}"] = np.asarray(array).nbytes / mb
            out[f"vectors:{entity_type}.ids"] = _deep_strings(ev.ids) / mb
            out[f"vectors:{entity_type}.id -> position"] = _deep_strings(ev.positions) / mb
            index = ev.index.coarse_index
            if index is not None:
                import faiss

                out[f"vectors:{entity_type}.faiss index"] = (
                    faiss.serialize_index(index).nbytes / mb if len(ev) < 3_000_000 else float("nan")
                )
    if snap.decisions is not None:
        d = snap.decisions
        out["decisions.contexts frame"] = d.contexts.estimated_size() / mb
        out["decisions.id -> row"] = _deep_strings(d._row) / mb
        enc = getattr(d, "_encoded", None)
        if enc is not None:
            feats = getattr(enc, "features", None)
            out["decisions.encoded features"] = 0 if feats is None else np.asarray(feats).nbytes / mb
    labels = served(snap).labels
    for entity_type, every in labels._all.items():
        out[f"labels:{entity_type}"] = _deep_strings(every) / mb
    for key, value in vars(labels).items():
        if key.startswith("_") and isinstance(value, dict) and key not in ("_all",):
            for t, inner in value.items():
                if isinstance(inner, dict):
                    out[f"labels.{key}:{t}"] = _deep_strings(inner) / mb
                elif isinstance(inner, pl.DataFrame):
                    out[f"labels.{key}:{t} frame"] = inner.estimated_size() / mb
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1] if kv[1] == kv[1] else 0)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--no-components", action="store_true", help="skip the per-component estimate")
    args = parser.parse_args()
    os.environ["HOLOCRM_HOME"] = str(args.home)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{args.home / 'mlruns' / 'mlflow.db'}")
    load_before = os.getloadavg()
    started = time.perf_counter()
    base = rss_mb()
    from holocrm_api.config import ServingSettings
    from holocrm_api.deps import Services

    instrument()
    services = Services.build(ServingSettings.from_env(reload_interval_s=0))
    imported = time.perf_counter() - started
    rss_imported = rss_mb()
    build = staged("reload (build + prepare)")(services.loader.reload)
    build(force=True)
    snap = services.loader.snapshot
    import gc

    collect_started = time.perf_counter()
    gc.collect()
    gc_seconds = time.perf_counter() - collect_started
    result = {
        "gc_tracked_objects": len(gc.get_objects()),
        "gc_full_collection_s": round(gc_seconds, 3),
        "home": str(args.home),
        "warm_types": os.environ.get("HOLOCRM_WARM_TYPES", ""),
        "import_and_services_s": round(imported, 1),
        "rss_at_start_mb": round(base, 1),
        "rss_after_imports_mb": round(rss_imported, 1),
        "start_seconds": round(time.perf_counter() - started, 1),
        "rss_mb": round(rss_mb(), 1),
        "peak_rss_mb": round(status_mb("VmHWM"), 1),
        "smaps_mb": smaps_mb(),
        "missing": snap.missing,
        "stages": STAGES,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, default=str), file=sys.stderr, flush=True)
    if not args.no_components:
        result["components_mb"] = components(snap)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
