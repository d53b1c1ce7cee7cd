"""Benchmarks: a synthetic national-scale inbox, a floor pipeline, a naive script, and the harness timing them."""
