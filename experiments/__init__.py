"""Experiments and benchmarks that measure the reference implementation."""
