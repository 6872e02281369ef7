"""Skill registry: every VST-P generator registers here under VST's skill name.

A skill is a generator `(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]` that draws all its
randomness from `rng` and yields samples until it runs out of valid questions for the scene. The engine takes
as many as the recipe asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from vst.data.choices import as_text_answer, check_answer_form
from vst.data.context import SceneContext
from vst.data.sample import Sample

Generator = Callable[[SceneContext, np.random.Generator], Iterator[Sample]]


@dataclass(frozen=True)
class Skill:
    name: str  # vst's name, e.g. "si_depth_comparison"
    vst_skill: str  # the skill as VST's distribution figure names it (spec paper.md §2.1)
    modality: str  # single | multi | video
    generate: Generator

    def samples(self, ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
        """The skill's samples in the answer form the engine's options ask for (`answer_form`): "letter", VST's
        lettered options (the default), or "text", the name-answer form (`choices.as_text_answer`)."""
        stream = self.generate(ctx, rng)
        return map(as_text_answer, stream) if check_answer_form(ctx.options) == "text" else stream


SKILLS: dict[str, Skill] = {}


def register_skill(name: str, vst_skill: str, modality: str) -> Callable[[Generator], Generator]:
    def decorator(generate: Generator) -> Generator:
        if name in SKILLS:
            raise ValueError(f"skill {name!r} is registered twice")
        SKILLS[name] = Skill(name, vst_skill, modality, generate)
        return generate

    return decorator


def get_skill(name: str) -> Skill:
    if name not in SKILLS:
        raise KeyError(f"unknown skill {name!r}; known skills: {', '.join(sorted(SKILLS))}")
    return SKILLS[name]
