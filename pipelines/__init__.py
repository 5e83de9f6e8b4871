"""The Dagster layer of HoloCRM: thin assets over holocrm_core."""
