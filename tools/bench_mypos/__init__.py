"""Benchmark payment_mypos against baselines of the same run: absolute times drift between runs."""
