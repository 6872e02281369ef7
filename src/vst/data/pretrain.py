"""General, non-spatial vision-language data for pretraining the tiny base model (`vst train base`).

VST starts from Qwen2.5-VL-Instruct, a model that already reads images, follows instructions, answers multiple choice
by letter and writes short reasoning. The embedded default's analogue is a tiny Qwen2.5-VL pretrained here on data
this module generates from a seed, with no download:

- text tasks where names recur in context, the regime in which small transformers form copy/induction mechanisms:
  repeating and continuing lists, "which option says X" (name -> letter), "what does option C say" (letter -> name),
  "which of these is a colour" (knowledge by letter), short instructions;
- image tasks on procedural pictures (coloured shapes on plain or noisy backgrounds) and on frames of procedural
  rooms with coloured point markers: colours, shapes, "is there a X?", naming what is drawn, which marker colours a
  picture holds;
- short `<think> ... </think> answer` traces on non-spatial toy problems, so the format exists before the cold start.

It never asks a VST-P skill's question family (no depth, distance, size, direction, position, camera or counting
question): `SPATIAL_WORDS` lists the words those templates are made of, and `tests/data/test_pretrain.py` checks every
generated question against them and against the skills' own generated questions.

Every task is a function `(rng, context) -> Sample`; `TASKS` maps names to (function, weight). `generate(n, seed)`
gives the same Samples for the same seed.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from vst.data.choices import LETTERS, MC_INSTRUCTION
from vst.data.sample import IMAGE_PLACEHOLDER, Media, Sample, Turn
from vst.scene.catalog import CATEGORIES

THINK_TYPE = "general_thought"  # `type` containing "thought": the thinking system prompt (processing.system_prompt_for)

OBJECTS = tuple(name.replace("_", " ") for name in CATEGORIES)
DRAW_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (30, 80, 230), "yellow": (240, 210, 20),
    "purple": (140, 50, 200), "orange": (250, 130, 10), "pink": (250, 110, 190), "cyan": (20, 200, 220),
    "brown": (120, 70, 30), "black": (15, 15, 15), "white": (245, 245, 245), "gray": (128, 128, 128),
}
COLOR_NAMES = tuple(DRAW_COLORS)
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
MATERIALS = ("wood", "metal", "fabric", "glass", "plastic", "stone", "paper")
ANIMALS = ("cat", "dog", "horse", "bird", "fish", "cow", "sheep", "mouse", "lion", "bear", "duck", "frog")
FRUITS = ("apple", "banana", "orange", "grape", "lemon", "pear", "cherry", "peach", "melon", "plum")
GROUPS = {"colour": COLOR_NAMES, "shape": SHAPES, "material": MATERIALS, "animal": ANIMALS, "fruit": FRUITS,
          "piece of furniture or object": OBJECTS}
WORDS = tuple(dict.fromkeys(OBJECTS + COLOR_NAMES + SHAPES + MATERIALS + ANIMALS + FRUITS))

# Words (and word beginnings: "meter" matches "meters") the VST-P skill templates are built from; every VST-P question
# contains one and no base question may (tests/data/test_pretrain.py checks both on generated data).
SPATIAL_WORDS = (
    "depth", "close", "farther", "farthest", "nearer", "nearest", "distance", "far", "near", "gap", "meter", "metre",
    "centimeter", "size", "height", "width", "length", "tall", "long", "big", "large", "small", "direction", "left",
    "right", "above", "below", "behind", "front", "north", "south", "east", "west", "camera", "rotat", "turn", "move",
    "motion", "how many", "count", "number of", "position", "locat", "where", "correspond", "frame", "video", "order",
    "appear", "route", "room", "3d", "bounding", "bbox", "view", "candidate", "same spot", "same physical", "spatial",
    "layout", "arrang",
)
SPATIAL_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(word) for word in SPATIAL_WORDS) + ")", re.IGNORECASE)


def _join(items: Sequence[str]) -> str:
    return ", ".join(items)


def _choose(rng: np.random.Generator, pool: Sequence[str], k: int, exclude: Sequence[str] = ()) -> list[str]:
    candidates = [item for item in pool if item not in exclude]
    return [candidates[i] for i in rng.choice(len(candidates), size=k, replace=False)]


def _option_lines(options: Sequence[str]) -> str:
    return "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(options))


def _mc_prompt(question: str, options: Sequence[str]) -> str:
    return f"{question}\nOptions:\n{_option_lines(options)}\n{MC_INSTRUCTION}"


def _mc_answer(options: Sequence[str], index: int) -> dict:
    return {"type": "mc", "value": LETTERS[index], "options": [f"{LETTERS[i]}. {t}" for i, t in enumerate(options)]}


@dataclass
class Context:
    """What image tasks draw from: frames of procedural rooms (PIL images), each with the objects it shows."""

    frames: list[tuple[Image.Image, list[str]]] = field(default_factory=list)
    image_size: int = 112
    words: tuple[str, ...] = ()  # the names text tasks draw from (empty: WORDS); the curriculum's easy phase narrows it
    max_options: int = 4


def _words(ctx) -> tuple[str, ...]:
    return (ctx.words if ctx is not None and ctx.words else None) or WORDS


def _place(rng, right: str, pool: Sequence[str], count: int,
           exclude: Sequence[str] | None = None) -> tuple[list[str], int]:
    """`count` options: `right` and `count - 1` others from `pool` (none of `exclude`, default `right`), `right` at
    a random position; (options, index)."""
    options = _choose(rng, pool, count - 1, exclude=[right] if exclude is None else exclude)
    index = int(rng.integers(count))
    options.insert(index, right)
    return options, index


def _options(rng, ctx) -> int:
    """How many options a multiple-choice item gets: 2 up to the context's `max_options`."""
    return int(rng.integers(2, (ctx.max_options if ctx is not None else 4) + 1))


def _sample(task: str, question: str, response: str, answer: dict, images: Sequence[Image.Image] = (),
            think: bool = False) -> Sample:
    placeholders = IMAGE_PLACEHOLDER * len(images)
    modality = "text" if not images else "single" if len(images) == 1 else "multi"
    reward = {"fn": "multiple_choice"} if answer.get("type") == "mc" else {"fn": "exact"}
    return Sample(
        id="", conversations=[Turn("human", placeholders + question), Turn("gpt", response)],
        images=[Media(_png(image)) for image in images], type=THINK_TYPE if think else "general",
        data_source="vst-base", skill=task, modality=modality, answer=answer, reward=reward,
    )


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


# -- text tasks ------------------------------------------------------------------------------------------------------
def option_says(rng, ctx) -> Sample:
    """Name -> letter: the binding every multiple-choice question needs."""
    count = _options(rng, ctx)
    options = _choose(rng, _words(ctx), count)
    index = int(rng.integers(count))
    question = str(rng.choice([f"Which option says {options[index]}?", f"Find the option {options[index]}.",
                               f"Which option is {options[index]}?"]))
    if rng.random() < 0.3:  # the query right before the answer: the easy order, from which the binding grows first
        prompt = f"Options:\n{_option_lines(options)}\n{question}"
    else:
        prompt = _mc_prompt(question, options)
    return _sample("option_says", prompt, LETTERS[index], _mc_answer(options, index))


def option_drill(rng, ctx) -> Sample:
    """One option list, several turns of "which option says X" / "what does option C say": many bindings per row."""
    count = _options(rng, ctx)
    options = _choose(rng, _words(ctx), count)
    turns, first = [], None
    for turn in range(int(rng.integers(2, 5))):
        index = int(rng.integers(count))
        if rng.random() < 0.6:
            question, reply = f"Which option says {options[index]}?", LETTERS[index]
        else:
            question, reply = f"What does option {LETTERS[index]} say?", options[index]
        if first is None:
            first = _mc_prompt(question, options) if reply in LETTERS else f"Options:\n{_option_lines(options)}\n{question}"
            question = first
        turns += [Turn("human", question), Turn("gpt", reply)]
    sample = _sample("option_drill", turns[0].value, turns[1].value, {"type": "text", "value": turns[1].value})
    sample.conversations = turns
    return sample


def option_facts(rng, ctx) -> Sample:
    """An option list, then which letter each name has, in shuffled order: a dense name -> letter signal under
    next-token loss (every "X is option" predicts a letter found by looking X up in the list)."""
    count = _options(rng, ctx) + int(rng.integers(2))
    options = _choose(rng, _words(ctx), count)
    order = rng.permutation(count)
    facts = " ".join(f"{options[i]} is option {LETTERS[i]}." for i in order)
    question = f"Options:\n{_option_lines(options)}\nSay which option each word is."
    return _sample("option_facts", question, facts, {"type": "text", "value": facts})


def option_text(rng, ctx) -> Sample:
    """Letter -> name: copy an option's text."""
    count = _options(rng, ctx)
    options = _choose(rng, _words(ctx), count)
    index = int(rng.integers(count))
    question = f"Options:\n{_option_lines(options)}\nWhat does option {LETTERS[index]} say? Answer with its text."
    return _sample("option_text", question, options[index], {"type": "text", "value": options[index]})


def group_member(rng, ctx) -> Sample:
    """Which option is a colour / an animal / ...: knowledge answered by letter."""
    group = str(rng.choice(list(GROUPS)))
    count = _options(rng, ctx)
    right = str(rng.choice(GROUPS[group]))
    others = [w for name, words in GROUPS.items() if name != group for w in words if w not in GROUPS[group]]
    options, index = _place(rng, right, others, count)
    article = "an" if group[0] in "aeiou" else "a"
    return _sample("group_member", _mc_prompt(f"Which option is {article} {group}?", options), LETTERS[index],
                   _mc_answer(options, index))


def repeat_list(rng, ctx) -> Sample:
    items = _choose(rng, _words(ctx), int(rng.integers(3, 13)))
    question = str(rng.choice(["Repeat this list: ", "Say these words again: ", "Copy: "])) + _join(items) + "."
    return _sample("repeat_list", question, _join(items) + ".", {"type": "text", "value": _join(items) + "."})


def copy_sequence(rng, ctx) -> Sample:
    """Repeat a sequence of space-separated words: the plainest induction pattern (find the current word earlier,
    copy the one after it), the mechanism every other binding is built on."""
    items = [str(rng.choice(_words(ctx))) for _ in range(int(rng.integers(6, 21)))]
    text = " ".join(items)
    return _sample("copy_sequence", f"Copy: {text}", text, {"type": "text", "value": text})


def next_item(rng, ctx) -> Sample:
    """Which word follows X in a list: the induction pattern (find X, copy what came after it)."""
    items = _choose(rng, _words(ctx), int(rng.integers(3, 10)))
    at = int(rng.integers(len(items) - 1))
    question = f"List: {_join(items)}.\nWhich word comes after {items[at]} in the list?"
    return _sample("next_item", question, items[at + 1], {"type": "text", "value": items[at + 1]})


def yes_no_list(rng, ctx) -> Sample:
    items = _choose(rng, _words(ctx), int(rng.integers(2, 6)))
    present = bool(rng.integers(2))
    word = str(rng.choice(items)) if present else _choose(rng, _words(ctx), 1, exclude=items)[0]
    question = f"List: {_join(items)}.\nIs {word} in the list? Answer yes or no."
    answer = "Yes" if present else "No"
    return _sample("yes_no_list", question, answer, {"type": "yesno", "value": answer.lower()})


def instruction(rng, ctx) -> Sample:
    word = str(rng.choice(_words(ctx)))
    kind = int(rng.integers(3))
    if kind == 0:
        times = int(rng.integers(2, 4))
        question, response = f"Write the word {word} {['two', 'three'][times - 2]} times.", " ".join([word] * times)
    elif kind == 1:
        question, response = f"Answer with one word: {word}.", word
    else:
        items = _choose(rng, _words(ctx), 3)
        question, response = f"Which is the first word of: {_join(items)}?", items[0]
    return _sample("instruction", question, response, {"type": "text", "value": response})


def think_group(rng, ctx) -> Sample:
    """A short `<think>` trace on a non-spatial toy: find the option that belongs to a group, then say its letter."""
    group = str(rng.choice(["colour", "animal", "fruit", "shape"]))
    count = _options(rng, ctx)
    right = str(rng.choice(GROUPS[group]))
    others = [w for name, words in GROUPS.items() if name != group for w in words if w not in GROUPS[group]]
    options, index = _place(rng, right, others, count)
    article = "an" if group[0] in "aeiou" else "a"
    trace = f"<think> {right} is {article} {group}. {right} is option {LETTERS[index]}. </think> {LETTERS[index]}"
    return _sample("think_group", _mc_prompt(f"Which option is {article} {group}?", options), trace,
                   _mc_answer(options, index), think=True)


def think_next(rng, ctx) -> Sample:
    items = _choose(rng, _words(ctx), int(rng.integers(3, 6)))
    at = int(rng.integers(len(items) - 1))
    question = f"List: {_join(items)}.\nWhich word comes after {items[at]} in the list?"
    trace = f"<think> The list is {_join(items)}. After {items[at]} comes {items[at + 1]}. </think> {items[at + 1]}"
    return _sample("think_next", question, trace, {"type": "text", "value": items[at + 1]}, think=True)


TaskFn = Callable[[np.random.Generator, Context], Sample]
TEXT_TASKS: dict[str, tuple[TaskFn, float]] = {
    "option_says": (option_says, 3.0), "option_drill": (option_drill, 2.0), "option_facts": (option_facts, 2.0), "option_text": (option_text, 1.5), "group_member": (group_member, 1.0),
    "repeat_list": (repeat_list, 2.0), "copy_sequence": (copy_sequence, 3.0), "next_item": (next_item, 1.5), "yes_no_list": (yes_no_list, 0.5),
    "instruction": (instruction, 0.5), "think_group": (think_group, 0.5), "think_next": (think_next, 0.5),
}


# -- image tasks -----------------------------------------------------------------------------------------------------
def _background(rng, size: int) -> Image.Image:
    """A plain pale background, or one with low-contrast noise, so colours are read off the shape, not the canvas."""
    base = rng.integers(170, 256, size=3)
    pixels = np.broadcast_to(base, (size, size, 3)).astype(np.int16)
    if rng.random() < 0.5:
        pixels = pixels + rng.integers(-25, 26, size=(size, size, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, center, radius: float, color) -> None:
    x, y = center
    r = radius
    if shape == "circle":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
    elif shape == "square":
        draw.rectangle([x - r, y - r, x + r, y + r], fill=color)
    elif shape == "triangle":
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=color)
    elif shape == "ring":
        draw.ellipse([x - r, y - r, x + r, y + r], outline=color, width=max(3, int(r / 3)))
    elif shape == "cross":
        w = max(3, r / 3)
        draw.rectangle([x - r, y - w, x + r, y + w], fill=color)
        draw.rectangle([x - w, y - r, x + w, y + r], fill=color)
    elif shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        draw.polygon([(x + q * np.cos(a), y - q * np.sin(a)) for a, q in zip(angles, radii)], fill=color)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def shapes_picture(rng, size: int, count: int) -> tuple[Image.Image, list[tuple[str, str]]]:
    """A picture of `count` shapes in distinct colours, placed on a coarse grid so none overlap; [(colour, shape)]."""
    image = _background(rng, size)
    draw = ImageDraw.Draw(image)
    cells = rng.choice(4, size=count, replace=False)
    colors = _choose(rng, [c for c in COLOR_NAMES if c not in ("white", "gray")], count)
    shapes = [str(rng.choice(SHAPES)) for _ in range(count)]
    half = size / 2
    for cell, color, shape in zip(cells, colors, shapes):
        radius = half * rng.uniform(0.22, 0.34) if count > 1 else size * rng.uniform(0.18, 0.34)
        if count > 1:
            cx = (cell % 2 + 0.5) * half + rng.uniform(-0.08, 0.08) * half
            cy = (cell // 2 + 0.5) * half + rng.uniform(-0.08, 0.08) * half
        else:
            cx, cy = (rng.uniform(radius, size - radius) for _ in range(2))
        _draw_shape(draw, shape, (cx, cy), radius, DRAW_COLORS[color])
    return image, list(zip(colors, shapes))


def shape_colour(rng, ctx) -> Sample:
    image, drawn = shapes_picture(rng, ctx.image_size, 1)
    color, shape = drawn[0]
    count = _options(rng, ctx)
    options, index = _place(rng, color, COLOR_NAMES, count)
    if rng.random() < 0.7:
        return _sample("shape_colour", _mc_prompt(f"What colour is the {shape}?", options), LETTERS[index],
                       _mc_answer(options, index), [image])
    return _sample("shape_colour", f"What colour is the {shape}? Answer with one word.", color,
                   {"type": "text", "value": color}, [image])


def shape_kind(rng, ctx) -> Sample:
    image, drawn = shapes_picture(rng, ctx.image_size, 1)
    color, shape = drawn[0]
    count = _options(rng, ctx)
    options, index = _place(rng, shape, SHAPES, count)
    if rng.random() < 0.7:
        return _sample("shape_kind", _mc_prompt(f"Which shape is drawn in {color}?", options), LETTERS[index],
                       _mc_answer(options, index), [image])
    return _sample("shape_kind", "What shape is drawn? Answer with one word.", shape,
                   {"type": "text", "value": shape}, [image])


def shape_present(rng, ctx) -> Sample:
    image, drawn = shapes_picture(rng, ctx.image_size, int(rng.integers(1, 4)))
    if rng.random() < 0.5:
        color, shape = drawn[int(rng.integers(len(drawn)))]
        answer = "Yes"
    else:
        color = str(rng.choice([c for c in COLOR_NAMES if c not in {d[0] for d in drawn}]))
        shape = str(rng.choice(SHAPES))
        answer = "No"
    question = f"Is there a {color} {shape} in the picture? Answer yes or no."
    return _sample("shape_present", question, answer, {"type": "yesno", "value": answer.lower()}, [image])


def describe_shapes(rng, ctx) -> Sample:
    image, drawn = shapes_picture(rng, ctx.image_size, int(rng.integers(1, 4)))
    names = sorted(f"a {color} {shape}" for color, shape in drawn)  # sorted by name: no order in the picture
    text = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return _sample("describe_shapes", "Describe the picture.", f"The picture shows {text}.",
                   {"type": "text", "value": text}, [image])


def think_shape(rng, ctx) -> Sample:
    image, drawn = shapes_picture(rng, ctx.image_size, 1)
    color, shape = drawn[0]
    count = _options(rng, ctx)
    options, index = _place(rng, color, COLOR_NAMES, count)
    trace = f"<think> The picture shows a {color} {shape}. {color} is option {LETTERS[index]}. </think> {LETTERS[index]}"
    return _sample("think_shape", _mc_prompt(f"What colour is the {shape}?", options), trace,
                   _mc_answer(options, index), [image], think=True)


def _room_frame(rng, ctx) -> tuple[Image.Image, list[str]]:
    if not ctx.frames:
        raise ValueError("room tasks need frames of procedural rooms (Context.frames)")
    image, objects = ctx.frames[int(rng.integers(len(ctx.frames)))]
    return image, objects


def marker_colour(rng, ctx) -> Sample:
    """Which colour the point drawn on a room picture has: the markers VST-P's questions refer to, read by colour."""
    from vst.data.markers import MARKER_COLORS, Marker, draw_markers

    image, _ = _room_frame(rng, ctx)
    width, height = image.size
    color = str(rng.choice(list(MARKER_COLORS)))
    xy = (float(rng.uniform(0.1, 0.9) * width), float(rng.uniform(0.1, 0.9) * height))
    marked = draw_markers(image, [Marker("point", color, xy)])
    count = _options(rng, ctx)
    options, index = _place(rng, color, list(MARKER_COLORS), count)
    return _sample("marker_colour", _mc_prompt("What colour is the point drawn on the picture?", options),
                   LETTERS[index], _mc_answer(options, index), [marked])


def room_object(rng, ctx) -> Sample:
    """Which of the options can be seen in a room picture (one object in view, the rest absent from it)."""
    image, objects = _room_frame(rng, ctx)
    if not objects:
        return shape_colour(rng, ctx)
    right = str(rng.choice(objects))
    count = _options(rng, ctx)
    options, index = _place(rng, right, OBJECTS, count, exclude=objects)
    if rng.random() < 0.7:
        return _sample("room_object", _mc_prompt("Which of these can be seen in the picture?", options),
                       LETTERS[index], _mc_answer(options, index), [image])
    return _sample("room_object", "Name one thing that can be seen in the picture.", right,
                   {"type": "text", "value": right, "accept": sorted(objects)}, [image])


IMAGE_TASKS: dict[str, tuple[TaskFn, float]] = {
    "shape_colour": (shape_colour, 1.5), "shape_kind": (shape_kind, 1.0), "shape_present": (shape_present, 0.75),
    "describe_shapes": (describe_shapes, 0.5), "think_shape": (think_shape, 0.25), "marker_colour": (marker_colour, 1.0),
    "room_object": (room_object, 1.0),
}
TASKS: dict[str, tuple[TaskFn, float]] = {**TEXT_TASKS, **IMAGE_TASKS}


# -- rooms, sampling, shards -----------------------------------------------------------------------------------------
MIN_VISIBLE_PIXELS_FRAC = 0.02  # an object named as "seen" covers at least 2 % of the frame


def room_frames(scene_dirs: Sequence, image_size: int = 112) -> list[tuple[Image.Image, list[str]]]:
    """(picture, names of the objects clearly in it) for every still of the rooms, resized to `image_size`."""
    from vst.scene.types import Scene

    frames = []
    for folder in scene_dirs:
        scene = Scene.load(folder)
        for frame in scene.frames:
            if frame.sequence not in ("", frame.frame_id):  # stills only; view pairs and video frames repeat them
                continue
            area = frame.intrinsics.width * frame.intrinsics.height
            names = sorted({scene.object(i).category.replace("_", " ") for i, v in frame.visibility.items()
                            if not scene.object(i).is_structure and v.pixels >= MIN_VISIBLE_PIXELS_FRAC * area})
            with Image.open(Path(folder) / frame.image_path) as image:
                frames.append((image.convert("RGB").resize((image_size, image_size), Image.Resampling.BICUBIC), names))
    return frames


def _draw(tasks: dict[str, tuple[TaskFn, float]], context: Context) -> tuple[list[str], np.ndarray]:
    if not context.frames:
        tasks = {name: task for name, task in tasks.items() if name not in ROOM_TASKS}
    names = sorted(tasks)
    weights = np.array([tasks[name][1] for name in names], dtype=np.float64)
    return names, weights / weights.sum()


def generate(n: int, seed: int, context: Context, tasks: dict[str, tuple[TaskFn, float]] | None = None,
             prefix: str = "base", easy: int = 0) -> list[Sample]:
    """`n` Samples drawn from `tasks` (default `TASKS`, room tasks only when `context` has frames) by weight; sample
    `i` comes from `np.random.default_rng([seed, i])`, so the same seed gives the same Samples whatever `n`.

    Curriculum: the first `easy` samples come from `EASY_TASKS` with two options and the colour names only, the
    setting in which a small model first binds a name to its letter (a toy of it jumps from chance to 100 % after a
    plateau; the full mixture alone left the model at chance); train on them in order (sequential sampling)."""
    tasks = dict(tasks or TASKS)
    full = _draw(tasks, context)
    easy_context = Context(context.frames, context.image_size, words=COLOR_NAMES, max_options=2)
    first = _draw({name: tasks[name] for name in EASY_TASKS if name in tasks}, easy_context)
    samples = []
    for index in range(n):
        rng = np.random.default_rng([seed, index])
        (names, weights), ctx = (first, easy_context) if index < easy else (full, context)
        task = names[int(rng.choice(len(names), p=weights))]
        sample = tasks[task][0](rng, ctx)
        sample.id = f"{prefix}-{seed}-{index:07d}"
        samples.append(sample)
    return samples


def tokenizer_corpus(seed: int = 0, samples: int = 400) -> list[str]:
    """Text the tiny base's tokenizer learns its merges from: every vocabulary word (so a name is one token), the
    base tasks' phrasing and common chat and question words."""
    context = Context()
    texts = [f"{sample.question} {sample.response}" for sample in generate(samples, seed, context)]
    words = list(WORDS) + list(GENERAL_WORDS)
    return texts + [" ".join(words)] * 40 + [", ".join(words)] * 10 + ["\n".join(words)] * 10


ROOM_TASKS = ("marker_colour", "room_object")
EASY_TASKS = ("option_says", "option_drill", "option_facts", "option_text", "copy_sequence", "repeat_list",
              "shape_colour")
# Words of chat, reasoning and question text the tokenizer keeps whole (it is shared by every stage trained from
# the base, so common question words stay short too).
GENERAL_WORDS = (
    "You", "are", "a", "helpful", "assistant", "should", "first", "think", "about", "the", "reasoning", "process",
    "in", "mind", "and", "then", "provide", "user", "with", "answer", "enclosed", "within", "tags", "i.e.", "here",
    "Which", "What", "Is", "Answer", "Options", "option", "letter", "from", "given", "choices", "directly", "object",
    "objects", "image", "images", "picture", "point", "points", "marked", "these", "this", "that", "is", "of", "to",
    "or", "yes", "no", "Yes", "No", "one", "word", "list", "List", "comes", "after", "before", "says", "shows",
    "closer", "farther", "distance", "meters", "centimeters", "camera", "left", "right", "above", "below", "frames",
    "video", "height", "width", "length", "how", "many", "between", "two", "three", "degrees", "first", "second",
)
