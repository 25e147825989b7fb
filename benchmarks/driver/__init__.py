"""The benchmark driver behind benchmarks/run.py (docs/benchmarks.md explains the method)."""
