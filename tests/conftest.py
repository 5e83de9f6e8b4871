"""Test session settings: offline models, and all state (HOLOCRM_HOME, MLflow) in a temporary folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="holocrm-tests-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("LANCEDB_LOG", "error")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ["HOLOCRM_HOME"] = str(_SESSION_ROOT / "home")
os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{_SESSION_ROOT / 'mlflow.db'}"

SHARED_DATA = Path(os.environ.get("HOLOCRM_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")).resolve()
