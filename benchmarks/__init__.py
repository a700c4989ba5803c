"""Benchmarks: ``make bench-…`` targets that print a table and ``BENCH name=value`` lines."""
