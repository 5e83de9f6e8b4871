"""Contract: schemathesis drives every operation of the OpenAPI in process (ASGI) and runs all its checks.

Bounded (a few examples per operation, about 20 s on 2 cores) so it stays in CI. Auth is on, with the key
sent, so the auth checks run too (a request without the key must be refused).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from holocrm_api import ServingSettings, create_app
from tests.support.api import build_home, build_index

KEY = "contract-key"


def contract_app():
    """The app over a tiny home in a fresh folder (built at collection: schemathesis parametrizes from it)."""
    home = Path(tempfile.mkdtemp(prefix="holocrm-contract-"))
    build_index(home, build_home(home))  # every capability built: a 503 would count as a server error
    # The torch backend loads in seconds; the ONNX fast path would first export the model into this home.
    os.environ["HOLOCRM_EMBED_BACKEND"] = "torch"
    return create_app(
        ServingSettings.from_env(
            home=home, reload_interval_s=0, api_keys=(KEY,), rate_limit_per_minute=0, load_models=False
        )
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", contract_app())


@schema.parametrize()
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_keeps_its_contract(case):
    case.call_and_validate(headers={"X-API-Key": KEY})
