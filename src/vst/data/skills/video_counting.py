"""Video object counting (VST skill "Object Counting", video; spec data.md §1.6, §4.3 row 16).

Emits `video_counting` (modality video, VST type `video`): VSI-Bench's "How many {category}(s) are in this room?",
numeric answer, one question per category. Filters: the category has at least `MIN_COUNT` instances (one instance
is a uniqueness question, not counting), and EVERY instance is seen in the video (covers at least
`ctx.min_pixels(frame)` pixels in at least one video frame), so the true count is observable.

Reward: "mra", VSI-Bench's own metric for object_counting, so the RL signal matches the benchmark the skill trains
for. It is near-exact on small counts (off by one on a count of 2 scores 0.1) and gives partial credit on large
ones, where an exact-match reward (`numeric` with tolerance 0) would be all-or-nothing.
`meta_info` keeps every instance id, each one's best-frame pixel margin, and `margin_px`, the smallest of them
(how far the least-seen instance is above the visibility threshold).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.skills.registry import register_skill
from vst.data.video import category_name, numeric_sample, seen_margin_px, video_frames
from vst.scene.types import Frame, ObjectInstance

SKILL = "video_counting"
MIN_COUNT = 2

TEMPLATES = [
    "How many {cat}(s) are in this room?",
    "Count the {cat}(s) in this room. How many are there?",
    "What is the total number of {cat}(s) in this room?",
    "How many {cat}(s) can be found in the room shown in the video?",
    "In this room, how many {cat}(s) are there altogether?",
]


def countable_categories(ctx: SceneContext, frames: list[Frame]) -> dict[str, list[ObjectInstance]]:
    """Categories with >= MIN_COUNT instances, every one seen in `frames`, mapped to their instances (scene order)."""
    groups: dict[str, list[ObjectInstance]] = {}
    for obj in ctx.objects:
        groups.setdefault(obj.category, []).append(obj)
    return {category: instances for category, instances in groups.items()
            if len(instances) >= MIN_COUNT and all(seen_margin_px(ctx, frames, obj) >= 0 for obj in instances)}


@register_skill(SKILL, "Object Counting", "video")
def generate(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = video_frames(ctx)
    if not frames:
        return
    groups = countable_categories(ctx, frames)
    categories = sorted(groups)
    for index in rng.permutation(len(categories)):
        instances = groups[categories[index]]
        margins = [seen_margin_px(ctx, frames, obj) for obj in instances]
        question = str(rng.choice(TEMPLATES)).format(cat=category_name(categories[index]))
        meta = {"form": "object_counting", "category": categories[index], "instance_ids": [obj.instance_id for obj in instances],
                "count": len(instances), "seen_margin_px": margins, "margin_px": min(margins)}
        yield numeric_sample(ctx, SKILL, frames, question, len(instances), None, meta)
