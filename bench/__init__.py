"""Benchmarks for gflow (SPEC §11). Run them as modules: `python -m bench.latency`."""
