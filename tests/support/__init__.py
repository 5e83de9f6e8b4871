"""Helpers shared by tests and benchmarks (worlds with a known truth); never imported by the product."""
