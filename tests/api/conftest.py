"""Fixtures shared by the API tests: a tiny HOLOCRM_HOME (see ``tests.api.test_serving.build_home``)."""

from __future__ import annotations

import pytest

from tests.support.api import build_home


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOLOCRM_HOME", str(tmp_path))
    # A registry URI whose file does not exist: the loader must not need MLflow to serve tables.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    build_home(tmp_path)
    return tmp_path
