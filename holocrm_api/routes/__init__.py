"""The API's routers, one per domain; ``holocrm_api.main`` includes them all."""
