"""The scripted expert's state machine on a point-mass world (no simulator): it reaches above the object at the grasp
offset, descends, closes, lifts, carries over the target and releases above it; it refuses goals it cannot solve."""

import numpy as np
import pytest

from vst.vla.expert import GRASP_OFFSET, RELEASE_HEIGHT, ScriptedExpert

STEP = 0.05 / 1.5 * 0.6  # metres per unit action per step in this toy world (slower than the gain: no overshoot)


def test_expert_carries_the_object_onto_the_target():
    expert = ScriptedExpert((("on", "bowl_1", "plate_1"),))
    eef, bowl, plate = np.array([0.0, 0.0, 1.2]), np.array([0.1, 0.2, 0.9]), np.array([0.3, 0.1, 0.9])
    held, phases, gripper = None, [], []
    for _ in range(600):
        action = expert.act({"robot0_eef_pos": eef, "bowl_1_pos": bowl, "plate_1_pos": plate})
        assert action.shape == (7,) and np.all(np.abs(action) <= 1) and np.all(action[3:6] == 0)
        phases.append(expert.phase)
        gripper.append(action[6])
        eef = eef + action[:3] * STEP
        if action[6] > 0 and held is None and np.linalg.norm(eef - (bowl + GRASP_OFFSET)) < 0.03:
            held = bowl - eef  # grasped: the bowl moves with the hand
        if action[6] < 0 and held is not None:
            held = None  # released
        if held is not None:
            bowl = eef + held
        if expert.phase == "release" and held is None:
            break
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert order == ["above", "down", "close", "lift", "carry", "lower", "release"]
    assert np.linalg.norm((bowl - plate)[:2]) < 0.02  # the bowl ends over the plate
    assert bowl[2] - plate[2] < RELEASE_HEIGHT + 0.02
    assert gripper[0] == -1 and max(gripper) == 1 and gripper[-1] == -1


def test_expert_refuses_other_goals():
    with pytest.raises(ValueError, match="one \\(On OBJECT TARGET\\) goal"):
        ScriptedExpert((("open", "wooden_cabinet_1_top_region"),))
    with pytest.raises(ValueError, match="no pose bowl_1_pos"):
        ScriptedExpert((("on", "bowl_1", "plate_1"),)).act({"robot0_eef_pos": np.zeros(3), "plate_1_pos": np.zeros(3)})
