"""guard's benchmarks: `python -m bench [NAME...]`.

Each module `bench/<name>.py` defines `run(quick: bool) -> Iterable[dict]`, yielding figures
like `{"figure": ..., "value": ..., "unit": ..., "p50": ..., "p99": ..., "target": ...}`.
"""
