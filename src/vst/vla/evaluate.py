"""`vst vla eval`: closed-loop success on LIBERO with the anchors' protocol (spec vla.md §2.6).

Per task, episodes `start .. start + n - 1` use the suite's fixed initial states of those indices, `env.seed(0)`,
10 wait steps, then at most `MAX_STEPS[suite]` policy steps (spatial 220, object 280, goal 300, 10: 520); a
prediction of `chunk` steps executes `execute_steps` of them before the next (VST: 1 of 1); success is the task's
goal check. Jobs (a task and a range of episodes, one environment each) run in worker processes (`workers`), each
with its own policy: the model loaded in process, or a `RemotePolicy` on `vst vla serve`'s URL.

Writes `<out>/results.json` = `{"suite", "tasks": {"0": {"success": k, "episodes": n, ...}}, "success_rate",
"ci95", ...}` (percent; ci95 is the Wilson score interval of the pooled episodes), `<out>/episodes.jsonl` (one line
per episode, appended as they finish, so a re-run skips them) and `<out>/videos/task<T>_ep<E>_<success|failure>.mp4`
(upright frames, 20 fps as LIBERO's control rate).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

VIDEO_FPS = 20
JOB_EPISODES = 5


@dataclass(frozen=True)
class EvalJob:
    suite: str
    task_id: int
    episodes: tuple[int, ...]
    model: str
    out: str
    resolution: int
    videos: bool
    max_steps: int | None
    device: str
    threads: int = 0  # torch threads of an in-process model (0: torch's default)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion, in percent ((0, 100) when n = 0)."""
    if n == 0:
        return 0.0, 100.0
    from scipy.stats import binomtest

    interval = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return round(100 * interval.low, 2), round(100 * interval.high, 2)


def difference_interval(k1: int, n1: int, k2: int, n2: int, confidence: float = 0.95) -> tuple[float, float, float]:
    """(p1 - p2, low, high) in percent: Newcombe's hybrid score interval (method 10) for a difference of two
    independent proportions, built from the two Wilson intervals."""
    if n1 == 0 or n2 == 0:
        raise ValueError("difference_interval: both arms need episodes")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = (v / 100 for v in wilson_interval(k1, n1, confidence))
    l2, u2 = (v / 100 for v in wilson_interval(k2, n2, confidence))
    d = p1 - p2
    low = d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return round(100 * d, 2), round(100 * low, 2), round(100 * high, 2)


def compare(results: Sequence[dict]) -> dict:
    """The arms' success rates and, for each arm after the first, its difference from the first with a 95 % interval."""
    if len(results) < 2:
        raise ValueError("compare: give at least two results.json")
    base = results[0]
    rows = []
    for result in results:
        row = {"model": result["model"], "success": result["success"], "episodes": result["episodes"],
               "success_rate": result["success_rate"], "ci95": result["ci95"]}
        if result is not base:
            d, low, high = difference_interval(result["success"], result["episodes"], base["success"], base["episodes"])
            row["difference"] = {"vs": base["model"], "value": d, "ci95": [low, high]}
        rows.append(row)
    return {"suite": base["suite"], "arms": rows}


def run_episode(env, policy, episode: int, max_steps: int, record: bool) -> tuple[bool, int, list[np.ndarray]]:
    """One closed-loop episode; returns (success, policy steps taken, upright frames if `record`)."""
    from vst.vla.data import upright

    obs = env.reset(episode)
    frames, steps, success = [], 0, False
    while steps < max_steps and not success:
        image = env.image(obs)
        if record:
            frames.append(upright(image))
        state = env.state(obs) if policy.settings.get("proprio") else None
        chunk = np.asarray(policy.predict(image, env.instruction, state)).reshape(-1, 7)
        for action in chunk[: policy.execute_steps]:
            obs, success = env.step(action)
            steps += 1
            if success or steps >= max_steps:
                break
    if record:
        frames.append(upright(env.image(obs)))
    return success, steps, frames


def eval_job(job: EvalJob) -> list[dict]:
    """The job's episodes; each one's record is appended to `episodes.jsonl` as it finishes."""
    from vst.scene.video import encode_mp4
    from vst.vla.libero import LiberoEnv
    from vst.vla.policy import load_policy

    out = Path(job.out)
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    policy = load_policy(job.model, job.device)
    records = []
    with LiberoEnv(job.suite, job.task_id, resolution=job.resolution) as env:
        for episode in job.episodes:
            started = time.time()
            try:
                success, steps, frames = run_episode(env, policy, episode, job.max_steps or env.max_steps, job.videos)
                error = None
            except Exception as failure:  # noqa: BLE001 - reported in the results, the other episodes go on
                success, steps, frames, error = False, 0, [], f"{type(failure).__name__}: {failure}"
            video = None
            if frames:
                video = out / "videos" / f"task{job.task_id:02d}_ep{episode:03d}_{'success' if success else 'failure'}.mp4"
                video.parent.mkdir(parents=True, exist_ok=True)
                temp = video.with_suffix(".tmp")
                temp.write_bytes(encode_mp4(frames, VIDEO_FPS))
                temp.replace(video)
            record = {"task": job.task_id, "episode": episode, "success": bool(success), "steps": steps,
                      "seconds": round(time.time() - started, 1), "instruction": env.instruction,
                      "video": str(video.relative_to(out)) if video else None, "error": error}
            with open(out / "episodes.jsonl", "a") as handle:  # one short line per write: no torn lines
                handle.write(json.dumps(record) + "\n")
            records.append(record)
    return records


def _done(out: Path) -> dict[tuple[int, int], dict]:
    path = out / "episodes.jsonl"
    if not path.is_file():
        return {}
    done = {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a killed run: that episode runs again
        if record.get("error") is None:
            done[(record["task"], record["episode"])] = record
    return done


def evaluate(model: str, suite: str, tasks: Sequence[int], episodes_per_task: int, out: str | Path, *,
             start: int = 0, workers: int = 1, resolution: int | None = None, videos: bool = True,
             max_steps: int | None = None, device: str = "cpu",
             on_episode: Callable[[dict], None] | None = None) -> dict:
    """Run (or resume) the evaluation and write `results.json`; returns its content."""
    from vst.parallel import map_jobs
    from vst.vla.libero import MAX_STEPS, check_suite, job_size

    check_suite(suite)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if resolution is None:
        settings = Path(model) / "vla.json"
        resolution = json.loads(settings.read_text()).get("camera_resolution", 256) if settings.is_file() else 256
    started = time.time()
    indices = list(range(start, start + episodes_per_task))
    done = _done(out)
    per_job = job_size(len(indices), len(tasks), workers, JOB_EPISODES)
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else 0
    jobs = []
    for task in tasks:
        todo = [e for e in indices if (task, e) not in done]
        jobs += [EvalJob(suite, task, tuple(todo[i:i + per_job]), model, str(out), resolution, videos, max_steps,
                         device, threads) for i in range(0, len(todo), per_job)]
    for records in map_jobs(eval_job, jobs, workers):
        for record in records:
            if record["error"] is None:
                done[(record["task"], record["episode"])] = record
            if on_episode:
                on_episode(record)
    per_task, failed = {}, []
    for task in tasks:
        records = [done[(task, e)] for e in indices if (task, e) in done]
        failed += [f"task {task} episode {e}" for e in indices if (task, e) not in done]
        k, n = sum(r["success"] for r in records), len(records)
        per_task[str(task)] = {"success": k, "episodes": n, "success_rate": round(100 * k / n, 2) if n else None,
                               "ci95": list(wilson_interval(k, n)),
                               "instruction": records[0]["instruction"] if records else None,
                               "mean_steps": round(float(np.mean([r["steps"] for r in records])), 1) if records else None}
    k, n = sum(t["success"] for t in per_task.values()), sum(t["episodes"] for t in per_task.values())
    result = {"suite": suite, "model": str(model), "tasks": per_task, "success": k, "episodes": n,
              "success_rate": round(100 * k / n, 2) if n else None, "ci95": list(wilson_interval(k, n)),
              "protocol": {"init_states": f"{start}..{start + episodes_per_task - 1}", "wait_steps": 10,
                           "max_steps": max_steps or MAX_STEPS[suite], "env_seed": 0, "camera": "agentview",
                           "resolution": resolution, "rotate_180": True},
              "errors": failed, "seconds": round(time.time() - started, 1)}
    temp = out / "results.json.tmp"
    temp.write_text(json.dumps(result, indent=1) + "\n")
    temp.replace(out / "results.json")
    return result
