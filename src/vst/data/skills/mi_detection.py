"""Multi-image 3D object detection (VST skill "3D Object Detection-MI"; spec paper.md §2.1 row 8, data.md §4.3 row 8).

Emits `mi_3d_detection` (modality multi, VST `type` "bbox_3d"): both images of a view pair, VST's camera prompt for
the FIRST image (`vst.data.fov`, FoV-unified unless `ctx.options["fov_unify"]` is false) and "Detect the 3D bounding
boxes of {categories} ..." with the answer's boxes in the camera frame of the first image (same JSON format and
rounding as `si_3d_detection`).
Filters (same thresholds as `si_detection`: visible_frac >= 0.3, pixels >= `ctx.min_pixels`, centre depth > 0.1 m):
- an instance is ground truth when it passes in at least one view; a category with an instance visible in some view
  but passing in none is never asked;
- at least one asked instance passes in BOTH views, so the views share evidence about the answer;
- at most `MAX_CATEGORIES` categories per question.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.skills.mi_correspondence import view_pairs
from vst.data.skills.registry import register_skill
from vst.data.skills.si_detection import (
    ATTEMPTS_PER_FRAME,
    boxes_sample,
    category_phrase,
    detectable_categories,
    ordered,
    passes,
    pick_categories,
)
from vst.scene.types import Frame

SKILL = "mi_3d_detection"

TEMPLATES = [
    "Detect the 3D bounding boxes of {categories} in the camera coordinate system of the first image",
    "Using both images, output the 3D bounding boxes of all {categories}, expressed in the first image's camera frame",
    "The two images show the same scene. Find every {categories} and give their 3D bounding boxes relative to the first camera",
    "Locate each instance of {categories} seen in these images and give its 3D bounding box in the coordinates of image 1",
    "Estimate the 3D bounding boxes of the {categories} in the two views, with the first image's camera as the world frame",
]


def shared_labels(ctx: SceneContext, frames: list[Frame], groups: dict) -> list[str]:
    """Labels (among `groups`) with at least one instance passing the filter in every view."""
    return sorted(name for name, objs in groups.items() if any(all(passes(ctx, f, obj) for f in frames) for obj in objs))


@register_skill(SKILL, "3D Object Detection-MI", "multi")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    pairs = [[first, second] for first, second, _ in view_pairs(ctx, rng)]  # view pairs and video frame pairs
    for index in rng.permutation(len(pairs)):
        frames = pairs[index]
        groups = detectable_categories(ctx, frames)
        names, anchors = sorted(groups), shared_labels(ctx, frames, groups)
        asked: set[frozenset] = set()
        for _ in range(ATTEMPTS_PER_FRAME if anchors else 0):
            chosen = pick_categories(names, rng, first=str(rng.choice(anchors)))
            order = [chosen[i] for i in rng.permutation(len(chosen))]  # the shared category need not be named first
            if frozenset(order) in asked:
                continue
            asked.add(frozenset(order))
            objects = ordered(ctx, [obj for name in order for obj in groups[name]], order, frames[0])
            shared = [obj.instance_id for obj in objects if all(passes(ctx, f, obj) for f in frames)]
            question = str(rng.choice(TEMPLATES)).format(categories=category_phrase(order))
            meta = {"categories": order, "shared_instance_ids": shared, "reference_frame_id": frames[0].frame_id}
            yield boxes_sample(ctx, SKILL, frames, objects, question, "multi", meta)
