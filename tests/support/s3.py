"""An S3-compatible endpoint on loopback for tests: moto's server mode (moto[server] 5.2.5), one bucket.

moto 5.2.5's server honours the conditional writes commits on S3 rely on (checked by
tests/backends/test_object_store.py): a PUT with ``If-None-Match: *`` on an existing key and a PUT with a
stale ``If-Match`` ETag both answer 412 PreconditionFailed; LanceDB's manifest commits and the warehouse's
manifest commits use exactly these.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import free_port, start, stop, wait_for_port

BUCKET = "holocrm-test"


def moto_available() -> str:
    """ "" when moto's server can run here, else why not (the message a skipping test shows)."""
    for module in ("moto", "flask", "boto3"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed (pip install 'moto[server]==5.2.5' boto3): S3 tests skipped"
    return ""


@dataclass
class S3Endpoint:
    url: str
    bucket: str = BUCKET
    access_key: str = "testing"
    secret_key: str = "testing-secret-key"
    region: str = "us-east-1"

    def env(self) -> dict[str, str]:
        """The environment that points HoloCRM (settings.Backends) and boto3 at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "MLFLOW_S3_ENDPOINT_URL": self.url,
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )


def run_moto(folder: Path):
    """Context-manager-like generator: yields a running S3Endpoint with its bucket created; stops it."""
    reason = moto_available()
    if reason:
        pytest.skip(reason)
    port = free_port()
    log = folder / "moto.log"
    process = start([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], log)
    try:
        wait_for_port(port, process, log)
        endpoint = S3Endpoint(f"http://127.0.0.1:{port}")
        endpoint.client().create_bucket(Bucket=endpoint.bucket)
        yield endpoint
    finally:
        stop(process)
