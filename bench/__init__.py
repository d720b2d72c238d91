"""Benchmarks: Enclave against the reference face-swap loop, run as ``python -m bench.NAME``."""
