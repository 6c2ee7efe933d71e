"""Benchmarks behind ``xvol bench``: each measures the kit against a baseline timed in the same
run and prints figures and ratios."""
