"""Benchmarks: one nightly day at scale, measured against physical references and a peer loader."""
