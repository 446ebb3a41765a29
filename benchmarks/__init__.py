"""Evaluation (offline and served) and benchmarks. One set of metric functions for everything."""
