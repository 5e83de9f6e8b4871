"""The fast embedding tier: a static model distilled offline from the packaged MiniLM (model2vec).

A static model keeps one vector per word piece of MiniLM's vocabulary (each piece run through MiniLM once,
rotated by PCA, weighted down when frequent); a text's vector is the mean of its pieces' vectors. No
transformer runs at embedding time, so it embeds tens of thousands of texts a second on two cores where
MiniLM manages one or two hundred. Its vectors live in a different space from MiniLM's: an index built with
one tier is only ever queried with the same tier (``SimilarityStore`` records the model and refuses a
mismatch), and ``embed_documents`` never reuses a vector across tiers (vectors are keyed by model id).

The artifact (about 23 MB: 29,525 pieces x 384 float16) is distilled here from the local safetensors, never
downloaded: at first use, under a file lock so concurrent processes build it once, into a per-machine cache
(``$HOLOCRM_STATIC_DIR``, else ``$XDG_CACHE_HOME`` or ``~/.cache`` ``/holocrm/static/<weights digest>/``),
the way the ONNX export is cached. It depends only on the MiniLM weights, so every HOLOCRM_HOME, test run and
checkout on the machine shares one copy; it is too large to commit. Distilling takes about 2 to 3 minutes on
two cores; ``python -m holocrm_core.static_embedding`` builds it ahead of time.

The dimension stays 384 (PCA keeps every component), so the tiers share every table schema.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import shutil
from pathlib import Path

import numpy as np

from holocrm_core.embedding import DIM, Embedder, _weights_digest, packaged_model_path, quiet_third_party

# What the artifact is made with; changing any of these makes a new cache folder (the name carries them).
DISTILL_PARAMS = {"pca_dims": DIM, "sif_coefficient": 1e-4, "quantize_to": "float16"}
STATIC_PREFIX = "model2vec"


def _params_tag() -> str:
    return f"pca{DISTILL_PARAMS['pca_dims']}-sif{DISTILL_PARAMS['sif_coefficient']:g}-{DISTILL_PARAMS['quantize_to']}"


def static_cache_dir(model_path: Path | None = None) -> Path:
    """Where the distilled static model of ``model_path`` (default: the packaged MiniLM) is kept."""
    model_path = Path(model_path or packaged_model_path())
    override = os.environ.get("HOLOCRM_STATIC_DIR")
    base = (
        Path(override)
        if override
        else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "holocrm" / "static"
    )
    return base / f"{_weights_digest(model_path)}-{_params_tag()}"


def build_static_model(model_path: Path | None = None, target: Path | None = None) -> Path:
    """Distil the static model from the local MiniLM once (no download) and return its folder.

    Concurrent callers wait on a file lock beside the target; the model is written to a temporary folder and
    renamed into place, so a reader never sees half an artifact and an interrupted build leaves nothing.
    """
    model_path = Path(model_path or packaged_model_path())
    target = Path(target or static_cache_dir(model_path))
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(str(target) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "model.safetensors").exists():  # built by another process while we waited
            return target
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from model2vec.distill import distill

        with quiet_third_party(), _no_progress_bars():
            model = distill(
                str(model_path),
                pca_dims=DISTILL_PARAMS["pca_dims"],
                sif_coefficient=DISTILL_PARAMS["sif_coefficient"],
                quantize_to=DISTILL_PARAMS["quantize_to"],
                device="cpu",
            )
        tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(str(tmp))
        os.replace(tmp, target)
        return target
    finally:
        os.close(lock)


@contextlib.contextmanager
def _no_progress_bars():
    """model2vec draws a tqdm bar on stderr while it distils: keep logs and benchmark JSON clean."""
    if os.environ.get("HOLOCRM_VERBOSE"):
        yield
        return
    with contextlib.redirect_stderr(io.StringIO()):
        yield


class StaticEmbedder(Embedder):
    """Mean of static word-piece vectors: deterministic, no transformer at run time, every text alone
    (a vector never depends on the batch it was embedded in)."""

    backend = "static"

    def __init__(self, static_path: Path, batch_size: int = 4096):
        self.static_path = Path(static_path)
        self.batch_size = batch_size
        import threading

        from model2vec import StaticModel

        self.model = StaticModel.from_pretrained(str(self.static_path), normalize=True)
        self.dim = int(self.model.dim)
        if self.dim != DIM:
            raise ValueError(f"{self.static_path} holds {self.dim}-dim vectors; the index schema needs {DIM}")
        self.model_path = self.static_path
        # The id names the tier and the artifact: a re-distilled model (new weights or parameters) is a new id.
        self.model_name = f"{STATIC_PREFIX}:{self.static_path.name}"
        self._lock = threading.Lock()

    def _encode_unique(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self.model.encode(
                texts, batch_size=self.batch_size, show_progress_bar=False, use_multiprocessing=False
            ),
            dtype=np.float32,
        )


def load_static_embedder(model_path: Path | None = None) -> StaticEmbedder:
    """The static tier of ``model_path`` (default: the packaged MiniLM), distilled first if needed."""
    return StaticEmbedder(build_static_model(model_path))


if __name__ == "__main__":  # pragma: no cover - `python -m holocrm_core.static_embedding` builds the artifact
    print(build_static_model())
