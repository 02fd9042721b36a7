"""Benchmarks: `python -m benchmarks.<name>`; each prints its numbers and the machine. Not installed with the package."""
