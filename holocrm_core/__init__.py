"""HoloCRM: CRM exports turned into a learning system (the domain library; no Dagster in here)."""

__version__ = "0.1.0"
