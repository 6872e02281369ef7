"""Jobs for tests/parallel/test_ray.py, importable by Ray's worker processes."""

import os
from pathlib import Path


def crash_once(job: tuple[str, int]) -> int:
    """Kill this worker process the first time job `n` runs (a marker file remembers it); square `n` after."""
    folder, n = job
    marker = Path(folder) / f"crashed-{n}"
    if n == 2 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os._exit(1)  # the worker dies mid-task, as a preempted or OOM-killed node would
    return n * n
