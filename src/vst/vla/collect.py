"""`vst vla collect`: scripted-expert demonstrations in LIBERO, written in LIBERO's HDF5 layout, seeded and resumable.

For each task and initial state, the expert (`vst.vla.expert`) runs the evaluation protocol's episode (10 wait steps,
then at most the suite's step limit) and every step records the camera frame *before* the action, the action, the
8-D proprio, the joints and the MuJoCo state. An episode is kept only when the task's goal is reached, as in
OpenVLA's regeneration of the LIBERO data. Each finished episode is first saved alone
(`<out>/.parts/<suite>/task<NN>/ep<NNN>.npz`, atomically), so a killed run loses at most the episode in flight; a
task's `<task name>_demo.hdf5` is (re)written from its parts when all of them exist, and `collect.json` (what was
asked, what succeeded) last. Workers are processes (`--workers`), one environment per job, jobs by task and
episode range.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vst.vla.data import Episode, write_libero_hdf5


JOB_EPISODES = 10


@dataclass(frozen=True)
class CollectJob:
    suite: str
    task_id: int
    episodes: tuple[int, ...]  # initial-state indices
    parts: str  # folder of this task's per-episode parts
    resolution: int
    wrist: bool
    max_steps: int | None


def _part(parts: Path, episode: int) -> Path:
    return parts / f"ep{episode:03d}.npz"


def run_expert_episode(env, expert, episode: int, max_steps: int) -> tuple[bool, dict]:
    """One expert episode from initial state `episode`; returns (success, arrays of the recorded steps)."""
    from vst.vla.libero import WRIST_CAMERA

    obs = env.reset(episode)
    expert.reset()
    steps: dict[str, list] = {"images": [], "actions": [], "states": [], "joints": [], "sim_states": [], "wrist": []}
    success = False
    for _ in range(max_steps):
        action = expert.act(obs)
        steps["images"].append(env.image(obs))
        if WRIST_CAMERA in env.cameras:
            steps["wrist"].append(env.image(obs, WRIST_CAMERA))
        steps["actions"].append(action)
        steps["states"].append(env.state(obs))
        steps["joints"].append(np.asarray(obs["robot0_joint_pos"], dtype=np.float64))
        steps["sim_states"].append(env.env.get_sim_state())
        obs, success = env.step(action)
        if success:
            break
    return success, {k: np.stack(v) for k, v in steps.items() if v}


def collect_job(job: CollectJob) -> tuple[int, list[tuple[int, bool, int, str | None]]]:
    """Run one job's episodes (skipping those with a part already); returns (task, [(episode, success, steps,
    error)])."""
    from vst.vla.expert import ScriptedExpert
    from vst.vla.libero import LiberoEnv

    parts = Path(job.parts)
    parts.mkdir(parents=True, exist_ok=True)
    todo = [e for e in job.episodes if not _part(parts, e).is_file()]
    results = []
    if todo:
        from vst.vla.libero import task_info

        try:
            expert = ScriptedExpert(task_info(job.suite, job.task_id).goal)
        except ValueError as error:  # a goal the expert cannot solve: every episode of the task is reported
            return job.task_id, [(episode, False, 0, str(error)) for episode in todo]
        with LiberoEnv(job.suite, job.task_id, resolution=job.resolution, wrist=job.wrist) as env:
            for episode in todo:
                try:
                    success, arrays = run_expert_episode(env, expert, episode, job.max_steps or env.max_steps)
                except Exception as error:  # noqa: BLE001 - one failing episode is reported, the rest go on
                    results.append((episode, False, 0, f"{type(error).__name__}: {error}"))
                    continue
                temp = _part(parts, episode).with_suffix(".tmp.npz")
                np.savez(temp, success=success, instruction=env.instruction, **(arrays if success else {}),
                         steps=len(arrays["actions"]))
                temp.replace(_part(parts, episode))
    for episode in job.episodes:
        if _part(parts, episode).is_file():
            with np.load(_part(parts, episode)) as part:
                results.append((episode, bool(part["success"]), int(part["steps"]), None))
    return job.task_id, results


def _episode_from_part(path: Path, source: str) -> Episode:
    with np.load(path) as part:
        arrays = {k: part[k] for k in part.files}
    return Episode(str(arrays["instruction"]), arrays["images"], arrays["actions"], arrays.get("states"),
                   arrays.get("joints"), arrays.get("wrist"), arrays.get("sim_states"), upright=False, source=source)


def collect(suite: str, tasks: Sequence[int], episodes: int, out: str | Path, *, start: int = 0,
            resolution: int = 256, wrist: bool = False, max_steps: int | None = None, workers: int = 1,
            on_episode: Callable[[int, int, bool, str | None], None] | None = None) -> dict:
    """Demonstrations of `tasks` from initial states `start .. start + episodes - 1`; returns the manifest."""
    from vst.parallel import map_jobs
    from vst.vla.libero import check_suite, job_size, task_info

    check_suite(suite)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    infos = {t: task_info(suite, t) for t in tasks}
    indices = list(range(start, start + episodes))
    per_task = job_size(len(indices), len(tasks), workers, JOB_EPISODES)
    jobs = [CollectJob(suite, t, tuple(indices[i:i + per_task]), str(out / ".parts" / suite / f"task{t:02d}"),
                       resolution, wrist, max_steps)
            for t in tasks for i in range(0, len(indices), per_task)]
    outcomes: dict[int, dict[int, tuple[bool, int, str | None]]] = {t: {} for t in tasks}
    for task, results in map_jobs(collect_job, jobs, workers):
        for episode, success, steps, error in results:
            outcomes[task][episode] = (success, steps, error)
            if on_episode:
                on_episode(task, episode, success, error)
    manifest = {"suite": suite, "resolution": resolution, "wrist": wrist, "start": start, "episodes": episodes,
                "max_steps": max_steps, "tasks": {}, "seconds": 0.0}
    for t in tasks:
        info = infos[t]
        parts = out / ".parts" / suite / f"task{t:02d}"
        kept = [e for e in indices if outcomes[t].get(e, (False, 0, None))[0]]
        if kept:
            write_libero_hdf5(out / f"{info.name}_demo.hdf5",
                              [_episode_from_part(_part(parts, e), f"{parts}/ep{e:03d}") for e in kept],
                              problem_name=info.name, bddl_file_name=info.bddl_file, env_name=suite)
        manifest["tasks"][str(t)] = {
            "name": info.name, "instruction": info.instruction, "attempted": len(indices), "succeeded": len(kept),
            "steps": sum(outcomes[t][e][1] for e in kept),
            "failed": {str(e): outcomes[t][e][2] or "goal not reached" for e in indices if e not in kept},
            "file": f"{info.name}_demo.hdf5" if kept else None,
        }
    manifest["seconds"] = round(time.time() - started, 1)
    temp = out / "collect.json.tmp"
    temp.write_text(json.dumps(manifest, indent=1) + "\n")
    temp.replace(out / "collect.json")
    return manifest

