"""Helpers shared by the test modules (a test module never imports from another one) and by benchmarks
(worlds with a known truth); never imported by the product."""
