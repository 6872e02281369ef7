"""One way to run independent jobs (scenes to generate or import, scenes to turn into samples): in this process, in
worker processes on this machine, or as Ray tasks on a cluster. Every job writes its own output atomically and
returns a small record; callers collect records as jobs finish and write their manifest last, so the three ways give
the same files (tested byte for byte).

Ray (`pip install 'vst[ray]'`): `ray_address` "local" starts a Ray instance on this machine, "auto" joins the
cluster this machine belongs to (`ray start`), "ray://host:10001" or "host:6379" an existing one. A task whose
worker dies (node lost, OOM-killed) is retried by Ray (`RAY_MAX_RETRIES`); outputs are written to the paths the
caller gives, so they must be on storage every node sees (a shared file system).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Iterable, Iterator

RAY_MAX_RETRIES = 3


def init_worker(single_threaded: bool, parent: int | None = None) -> None:
    """Start-up of a worker process; `parent`: the pool owner's pid."""
    if single_threaded:
        os.environ["LP_NUM_THREADS"] = "1"  # two worker processes on two cores: one llvmpipe thread each
    exit_with_parent(parent)


def exit_with_parent(parent: int | None = None, poll_s: float = 0.5) -> None:
    """Exit this worker when its parent dies, however it dies: a SIGKILLed `vst data generate --workers 2` must not
    leave workers (and multiprocessing's resource tracker, which ends with them) running. The parent's pid is
    polled from a daemon thread; when the process is re-parented, the worker exits at once. Pass the owner's pid
    (`os.getpid()` where the pool is made): a parent killed while the worker was still starting is noticed too."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def map_jobs(function: Callable[[Any], Any], jobs: Iterable[Any], workers: int = 1, ray_address: str | None = None) -> Iterator[Any]:
    """`function(job)` for every job, yielded as jobs finish: in this process (in order), in `workers` spawned
    processes, or as Ray tasks. `function` must be importable (a module-level function)."""
    jobs = list(jobs)
    if ray_address:
        yield from _ray_map(function, jobs, ray_address)
        return
    if workers <= 1 or len(jobs) <= 1:
        yield from map(function, jobs)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")  # EGL contexts are not fork-safe
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context, initializer=init_worker,
                             initargs=(True, os.getpid())) as pool:
        for future in as_completed([pool.submit(function, job) for job in jobs]):
            yield future.result()


def collect(outcomes: Iterable[tuple[str, int, str | None]], done: list, failed: dict,
            on_item: Callable[[str, int, str | None], None] | None = None) -> int:
    """Sort (name, count, error or None) outcomes into `done` names and `failed` {name: error}, telling `on_item` of
    each; returns the sum of the counts of the done ones."""
    total = 0
    for name, count, error in outcomes:
        if error is None:
            done.append(name)
            total += count
        else:
            failed[name] = error
        if on_item:
            on_item(name, count, error)
    return total


def connect_ray(address: str):
    """The `ray` module, connected to `address` ("local", "auto", "ray://…" or "host:port"); a clear error without Ray."""
    try:
        import ray
    except ImportError:
        raise RuntimeError("--ray needs Ray: pip install 'vst[ray]' (or pip install ray)") from None
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, ignore_reinit_error=True, log_to_driver=False,
                 runtime_env={"env_vars": {"LP_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}})
    return ray


def _ray_map(function, jobs: list, address: str) -> Iterator[Any]:
    ray = connect_ray(address)
    task = ray.remote(num_cpus=1, max_retries=RAY_MAX_RETRIES)(function)
    pending = [task.remote(job) for job in jobs]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])
