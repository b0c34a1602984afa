"""Benchmarks; run them from the repository root, e.g. ``.venv/bin/python -m bench.archive``."""
