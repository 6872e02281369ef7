"""The contract every registered skill keeps, checked on a rendered procedural scene for all 19 at once."""

import json

import numpy as np
import pytest

from vst.data.context import SceneContext
from vst.data.sample import ANSWER_TYPES, IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER
from vst.data.skills import SKILLS, get_skill

REWARD_FUNCTIONS = {"multiple_choice", "option_text", "yes_no", "numeric", "mra", "order", "boxes3d", "exact", "map"}
VST_P_SKILLS = 19


def rows(skill, ctx, seed):
    """Rows of the first 12 samples, without ids (ids count up per context)."""
    samples = get_skill(skill).generate(ctx, np.random.default_rng(seed))
    return [{k: v for k, v in s.to_row().items() if k != "id"} for s, _ in zip(samples, range(12))]


@pytest.fixture(scope="module")
def ctx(rendered_scene):
    scene, folder = rendered_scene
    return SceneContext(scene, folder)


def test_all_vst_p_skills_are_registered():
    assert len(SKILLS) == VST_P_SKILLS
    assert {s.modality for s in SKILLS.values()} == {"single", "multi", "video"}
    with pytest.raises(KeyError, match="unknown skill 'nope'; known skills: mi_3d_detection"):
        get_skill("nope")


@pytest.mark.parametrize("skill", sorted(SKILLS))
def test_same_rng_same_samples(ctx, skill):
    first = rows(skill, ctx, 11)
    assert first and first == rows(skill, ctx, 11)


@pytest.mark.parametrize("skill", sorted(SKILLS))
def test_samples_keep_the_contract(ctx, skill):
    spec = get_skill(skill)
    samples = [s for s, _ in zip(spec.generate(ctx, np.random.default_rng(0)), range(12))]
    assert samples, f"{skill} produced nothing on the rendered scene"
    for sample in samples:
        assert sample.skill == skill and sample.modality == spec.modality
        assert sample.answer["type"] in ANSWER_TYPES
        assert sample.reward == {} or sample.reward["fn"] in REWARD_FUNCTIONS
        meta = sample.meta_info
        assert meta["scene_id"] == ctx.scene.scene_id and meta["frame_ids"]
        assert all(ctx.scene.frame(f) for f in meta["frame_ids"])
        for instance_id in meta.get("instance_ids", []):
            ctx.scene.object(instance_id)  # every referred object exists in the scene
        placeholder = VIDEO_PLACEHOLDER if spec.modality == "video" else IMAGE_PLACEHOLDER
        assert sample.question.count(placeholder) == len(sample.images) >= 1
        assert sample.response.strip()
        json.dumps(sample.to_row()["meta_info"])  # provenance is plain JSON
        if spec.modality == "video":
            assert sample.type == "video" and sample.images[0].bytes[4:8] == b"ftyp"  # mp4
        else:
            assert all(m.bytes[:2] == b"\xff\xd8" for m in sample.images)  # JPEG
