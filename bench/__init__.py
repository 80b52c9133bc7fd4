"""Benchmarks: scripts that print figures and write them to bench/results/, never asserted."""
