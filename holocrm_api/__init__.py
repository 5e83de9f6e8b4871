"""Serving: a thin FastAPI app over the latest artifacts, and the durable write path for field outcomes.

``create_app(settings)`` builds the app; ``ServingSettings.from_env()`` reads the configuration.
"""

from holocrm_api.config import ServingSettings
from holocrm_api.main import create_app

__all__ = ["create_app", "ServingSettings"]
