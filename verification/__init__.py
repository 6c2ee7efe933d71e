"""Verification suites: verdict matrices, cross-checks between engines, and conformance replay of
model traces on the reference implementation."""
