"""Serving: a thin FastAPI app over the latest artifacts, and the durable write path for field outcomes.

``create_app(settings)`` builds the app; ``ServingSettings.from_env()`` reads the configuration.
"""

from holocrm_api.app import create_app
from holocrm_api.config import ServingSettings

__all__ = ["create_app", "ServingSettings"]
