"""Benchmarks: scripts that print ratios against a baseline (make bench)."""
