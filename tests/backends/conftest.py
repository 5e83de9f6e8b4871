"""Servers for the backend tests, one of each per session, each skipping with a message when absent."""

from __future__ import annotations

import pytest

from tests.support.postgres import run_postgres
from tests.support.redis import run_redis
from tests.support.s3 import run_moto


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    yield from run_moto(tmp_path_factory.mktemp("moto"))


@pytest.fixture(scope="session")
def postgres(tmp_path_factory):
    yield from run_postgres(tmp_path_factory.mktemp("postgres"))


@pytest.fixture(scope="session")
def redis_broker(tmp_path_factory):
    yield from run_redis(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    """This test's process pointed at the S3 endpoint (settings.Backends reads these)."""
    for key, value in s3_endpoint.env().items():
        monkeypatch.setenv(key, value)
    return s3_endpoint
