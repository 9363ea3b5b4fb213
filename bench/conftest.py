"""Benchmarks run on demand (`make bench`), never under pytest: nothing here is a test."""

collect_ignore_glob = ["*.py"]
