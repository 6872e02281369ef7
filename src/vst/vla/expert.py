"""A privileged-state scripted expert for LIBERO pick-and-place tasks (spec vla.md §4.4), so that demonstrations can
be generated in simulation on a CPU with no download.

It reads the goal `(On OBJECT TARGET)` from the task's BDDL file and the objects' poses from the observation (the
simulator's state, which the learned policy never sees), then runs six phases with delta-position control
`clip((target - eef) / 0.05 * 1.5, -1, 1)` and no rotation: above the object at a grasp offset of +0.045 m in y (the
fingers close along y; a centre or x-offset grasp misses a bowl's rim), down to 0.02 m above the object's origin, close
for 15 steps, lift 0.12 m, carry over the target keeping the gripper-to-object offset, lower to 0.06 m above the
target, open. Measured on LIBERO-Spatial (`vst vla collect`): task 0 40 of 40 initial states, tasks 1-3 and 5-9 one
of one each; task 4 (the bowl *in the top drawer* of the cabinet) fails: its goal is the same `(On bowl plate)` but
the grasp from above cannot reach into the drawer. Goals other than one `(On OBJECT TARGET)` raise at construction.
"""

from __future__ import annotations

import numpy as np

GRASP_OFFSET = np.array([0.0, 0.045, 0.0])
ABOVE = 0.10
GRASP_HEIGHT = 0.02
CLOSE_STEPS = 15
LIFT = 0.12
RELEASE_HEIGHT = 0.06
GAIN = 1.5 / 0.05
OPEN, CLOSE = -1.0, 1.0


class ScriptedExpert:
    """`act(obs) -> (7,) action` for one episode; `reset()` before the next."""

    def __init__(self, goal: tuple[tuple[str, ...], ...], tolerance: float = 0.01):
        places = [g for g in goal if len(g) == 3 and g[0] == "on"]
        if len(goal) != 1 or not places:
            raise ValueError(f"scripted expert: handles one (On OBJECT TARGET) goal, got {goal}")
        _, self.object, self.target = places[0]
        self.tolerance = tolerance
        self.reset()

    def reset(self) -> None:
        self.phase, self.count, self.lift_to = "above", 0, None

    def _move(self, eef, target, grip) -> np.ndarray:
        delta = np.clip((np.asarray(target) - eef) * GAIN, -1.0, 1.0)
        return np.concatenate([delta, np.zeros(3), [grip]])

    def act(self, obs: dict) -> np.ndarray:
        eef = np.asarray(obs["robot0_eef_pos"], dtype=np.float64)
        try:
            obj, target = obs[f"{self.object}_pos"], obs[f"{self.target}_pos"]
        except KeyError as error:
            raise ValueError(f"scripted expert: the observation has no pose {error.args[0]}") from None
        if self.phase == "above":
            goal = obj + GRASP_OFFSET + [0, 0, ABOVE]
            if np.linalg.norm(goal - eef) < self.tolerance:
                self.phase = "down"
            return self._move(eef, goal, OPEN)
        if self.phase == "down":
            goal = obj + GRASP_OFFSET + [0, 0, GRASP_HEIGHT]
            if np.linalg.norm(goal - eef) < 0.8 * self.tolerance:
                self.phase, self.count = "close", 0
            return self._move(eef, goal, OPEN)
        if self.phase == "close":
            self.count += 1
            if self.count >= CLOSE_STEPS:
                self.phase, self.lift_to = "lift", eef + [0, 0, LIFT]
            return self._move(eef, eef, CLOSE)
        held = eef - obj  # gripper-to-object offset while carrying
        if self.phase == "lift":
            if np.linalg.norm(self.lift_to - eef) < self.tolerance:
                self.phase = "carry"
            return self._move(eef, self.lift_to, CLOSE)
        if self.phase == "carry":
            goal = target + held
            goal[2] = self.lift_to[2]
            if np.linalg.norm((goal - eef)[:2]) < self.tolerance:
                self.phase = "lower"
            return self._move(eef, goal, CLOSE)
        if self.phase == "lower":
            goal = target + held
            goal[2] = target[2] + RELEASE_HEIGHT
            if abs(goal[2] - eef[2]) < self.tolerance:
                self.phase = "release"
            return self._move(eef, goal, CLOSE)
        return self._move(eef, eef, OPEN)  # release, and stay
