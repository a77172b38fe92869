"""Benchmarks for gflow (SPEC §11): `python -m bench` (all rows, `--peer gflow` beside gflow 0.4),
`python -m bench.policy` (one scheduling pass alone)."""
