"""VST-R: chain-of-thought traces and rule-checkable RL prompts (spec paper.md §3).

Spatial reasoning (SR) items start as VST-P samples of the skills in `CATEGORIES` (their questions, answers, reward
functions and the geometric facts in `meta_info`). Each becomes
- a **CoT sample** (`type` ends in "_thought", so training uses VST's thinking system prompt) whose response is
  `<think>trace</think>answer`, the trace written either
  - from the scene geometry by `template_trace`: describe each view, say how the camera moved, merge the views into
    one layout in the first camera's floor frame, apply the question's reference frame, conclude; every number comes
    from the scene, or
  - by a teacher VLM behind any OpenAI-compatible endpoint (`vst.data.teacher`), shown the images, a BEV render
    (`vst.data.bev`), the object facts, the question and the ground truth; a trace is kept only if it `passes`: its
    format reward is 1 and its answer passes the item's reward check;
- or an **RL prompt**: question + ground truth + reward spec, with a difficulty tag from the item's margin to the
  nearest decision boundary (`difficulty`).
General reasoning (GR: math, OCR, knowledge) comes from the user's own files (`vst.data.general`), mixed in by the
`vst-r` recipe's proportions (spec paper.md §3.1).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np

from vst.data.choices import check_answer_form
from vst.data.context import SceneContext
from vst.data.general import GENERAL_CATEGORIES, read_general
from vst.data.directions import cardinal_angle, in_level_frame, level_heading
from vst.data.sample import Sample, Turn
from vst.data.skills import get_skill
from vst.data.skills.mi_cameras import relative_pose
from vst.scene.geometry import world_to_camera
from vst.scene.types import Frame, Scene, SceneError

if TYPE_CHECKING:
    from vst.data.teacher import Teacher, TeacherStats

CATEGORIES: dict[str, tuple[str, ...]] = {  # VST-R spatial categories -> the VST-P skills whose items they reason about
    "sr_single_image": ("si_depth_comparison", "si_distance"),
    "sr_camera_motion": ("mi_camera_motion",),
    "sr_object_object": ("mi_object_object",),
    "sr_camera_camera": ("mi_camera_camera",),
}
SPLITS = ("cot", "rl")
TRACE_STYLES = ("full", "short")
DIFFICULTY_BOUNDS = {"m": (0.2, 0.6), "deg": (10.0, 25.0)}  # margin below the first: hard, below the second: medium
TRACE_SOURCE = "template"


# -- difficulty ------------------------------------------------------------------------------------------------------
def difficulty(meta: dict) -> tuple[str, float | None, str | None]:
    """(tag, margin, unit) from a sample's margin to its nearest decision boundary (metres or degrees)."""
    for key, unit in (("margin_m", "m"), ("margin_deg", "deg")):
        if key in meta:
            margin = float(meta[key])
            hard, medium = DIFFICULTY_BOUNDS[unit]
            return ("hard" if margin < hard else "medium" if margin < medium else "easy"), margin, unit
    return "unknown", None, None


# -- templated traces ------------------------------------------------------------------------------------------------
def _name(scene: Scene, instance_id: int) -> str:
    return scene.object(int(instance_id)).category.replace("_", " ")


def _side(frame: Frame, instance_id: int) -> str:
    x0, _, x1, _ = frame.visibility[instance_id].bbox_2d
    u = (x0 + x1) / 2 / frame.intrinsics.width
    return "on the left" if u < 1 / 3 else "on the right" if u > 2 / 3 else "in the middle"


def describe_view(ctx: SceneContext, frame: Frame, label: str, must: list[int], rng: np.random.Generator, limit: int = 3) -> str | None:
    """"In image 1 I can see the sofa on the left at about 2.4 m depth, ..." - depth is the camera-frame z of each
    box centre; the question's objects come first, then other objects unique in the scene, up to `limit`."""
    seen = [i for i in must if i in frame.visibility]
    others = [o.instance_id for o in ctx.referable(frame) if ctx.unique_in_scene(o) and o.instance_id not in seen]
    chosen = seen + [others[i] for i in rng.permutation(len(others))][: max(limit - len(seen), 0)]
    if not chosen:
        return None
    parts = []
    for instance_id in chosen:
        depth = float(world_to_camera(np.asarray(ctx.scene.object(instance_id).box.center)[None], frame.pose)[0, 2])
        parts.append(f"the {_name(ctx.scene, instance_id)} {_side(frame, instance_id)} at about {depth:.1f} m depth")
    listing = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    opener = str(rng.choice(["In {label} I can see {listing}.", "{Label} shows {listing}.", "Looking at {label}, there is {listing}."]))
    return opener.format(label=label, Label=label[0].upper() + label[1:], listing=listing)


def _signed(value: float, positive: str, negative: str, digits: int) -> str:
    return f"{abs(value):.{digits}f} m {positive if value >= 0 else negative}"


def describe_motion(first: Frame, second: Frame, rng: np.random.Generator) -> str | None:
    """How the camera moved from image 1 to image 2 in image 1's levelled frame (right, forward; yaw positive right)."""
    relative = relative_pose(first.pose, second.pose)
    if relative is None:
        return None
    right, forward, _ = relative.translation
    turn = "right" if relative.yaw_deg >= 0 else "left"
    opener = str(rng.choice(["Comparing the two views, ", "Matching the two images, ", "Between image 1 and image 2, "]))
    return (f"{opener}the camera moved {_signed(right, 'to the right', 'to the left', 2)} and "
            f"{_signed(forward, 'forward', 'backward', 2)}, and turned about {abs(relative.yaw_deg):.0f} degrees to the {turn}.")


def describe_layout(scene: Scene, frame: Frame, ids: list[int], rng: np.random.Generator) -> str | None:
    """Object positions in the first camera's floor frame: "the sofa is 1.2 m to the left and 3.0 m ahead"."""
    heading = level_heading(frame.pose)
    if heading is None or not ids:
        return None
    parts = []
    for instance_id in ids:
        right, forward, _ = in_level_frame(np.asarray(scene.object(instance_id).box.center) - frame.pose[:3, 3], heading)
        side = "to the right" if right >= 0 else "to the left"
        depth = "ahead" if forward >= 0 else "behind"
        parts.append(f"the {_name(scene, instance_id)} is {abs(right):.1f} m {side} and {abs(forward):.1f} m {depth}")
    opener = str(rng.choice(["Merging both views into one layout around the first camera: ",
                             "Putting everything in the first camera's floor frame: ", "In a single top-down layout seen from camera 1, "]))
    return opener + "; ".join(parts) + "."


def _reason(scene: Scene, sample: Sample) -> str | None:
    """The step that applies the question's own rule to the facts in `meta_info` (values as the skill computed them)."""
    meta, skill = sample.meta_info, sample.skill
    form, ids = meta.get("form"), [int(i) for i in meta.get("instance_ids", [])]
    names = [_name(scene, i) for i in ids]
    if skill == "si_depth_comparison" and form in ("boxes", "points"):
        (a, b), (da, db) = names, meta["depths_m"]
        winner = names[int(np.argmin([da, db]) if meta["relation"] == "closer" else np.argmax([da, db]))]
        where = "At the marked points, the depth" if form == "points" else "The median depth of the visible surface"
        return f"{where} is about {da:.2f} m on the {a} and about {db:.2f} m on the {b}, so the {winner} is {meta['relation']}."
    if skill == "si_depth_comparison" and form == "order":
        depths = meta["depths_m"]
        labels = [m["label"] for m in meta["markers"]]
        ranked = sorted(range(len(depths)), key=lambda i: depths[i], reverse=not meta["near_first"])
        listing = ", ".join(f"point {labels[i]} at about {depths[i]:.2f} m" for i in range(len(depths)))
        way = "closest to farthest" if meta["near_first"] else "farthest to closest"
        return f"Reading the depth at each marked point: {listing}. From {way}: {', '.join(labels[i] for i in ranked)}."
    if skill == "si_distance" and form in ("pair", "camera"):
        how = "between their closest points" if meta["measure"] == "closest" else "between their centres"
        if form == "camera":
            return f"The {names[0]} is about {meta['distance_m']:.2f} m from the camera, measured {how.replace('their', 'its')}."
        return f"The distance between the {names[0]} and the {names[1]}, measured {how}, is about {meta['distance_m']:.2f} m."
    if skill == "si_distance" and form == "nearer":
        (db, dc), pick = meta["distances_m"], np.argmin if meta["relation"] == "nearer" else np.argmax
        winner = names[1 + int(pick([db, dc]))]
        return (f"Measuring from the {names[0]}, the {names[1]} is about {db:.2f} m away and the {names[2]} about {dc:.2f} m "
                f"(closest points), so the {winner} is {meta['relation']}.")
    if skill == "mi_camera_motion":
        if form in ("yaw", "yaw_amount"):
            return f"The dominant change is the rotation: about {meta['amount']:.0f} degrees to the {meta['direction']}."
        axis = "sideways" if form.startswith("right") else "along the viewing direction"
        return f"The dominant translation is {axis}: about {meta['amount']:.2f} m {meta['direction']}."
    if skill == "mi_camera_camera":
        if form == "distance":
            return f"The two camera centres are about {meta['baseline_m']:.2f} m apart."
        if form == "yaw":
            return f"Their viewing directions differ by about {abs(meta['yaw_deg']):.0f} degrees."
        sector = "each hour spans 30 degrees" if form == "clock" else "each side spans 90 degrees"
        return (f"Seen from the first camera, the second one lies about {meta['bearing_deg']:.0f} degrees clockwise from straight "
                f"ahead; {sector}, so that is {meta['value']}.")
    if skill == "mi_object_object":
        if form == "distance":
            return f"The closest points of the {names[0]} and the {names[1]} are about {meta['distance_m']:.2f} m apart."
        if form == "closer":
            da, db = meta["camera_distances_m"]
            winner = names[int(np.argmin([da, db]))]
            return (f"From camera {meta['camera_image']}, the {names[0]} is about {da:.2f} m away and the {names[1]} about "
                    f"{db:.2f} m, so the {winner} is closer.")
        if form == "cardinal":
            ref, target = _name(scene, meta["ref_id"]), names[-1]
            anchor = f"the {names[0]}" if meta["anchor"] == "object" else f"{meta['anchor']}"
            turn = (meta["angle_deg"] - cardinal_angle(meta["stated_direction"])) % 360
            return (f"Take the direction from {anchor} to the {ref} as {meta['stated_direction']}. Turning clockwise from it to "
                    f"the {target} takes about {turn:.0f} degrees, so the {target} lies about {meta['angle_deg']:.0f} degrees "
                    f"clockwise from north, which is {meta['direction']}.")
    return None


def final_answer(sample: Sample) -> tuple[str, str]:
    """(concluding sentence, text after </think>) for a sample's ground truth; MC answers as "D. northwest" (VST)."""
    answer = sample.answer
    kind, value = answer.get("type"), answer.get("value")
    if kind == "mc":
        option = next((o for o in answer.get("options", []) if o.startswith(f"{value}.")), str(value))
        return f"That matches option {value}.", option
    if kind == "number":
        unit = {"degrees": " degrees", "m": " m"}.get(answer.get("unit") or "", "")
        return f"So the answer is about {sample.response}{unit}.", sample.response
    if kind == "order":
        return f"So the order is {sample.response}.", sample.response
    return f"So the answer is {sample.response}.", sample.response


def referred_ids(sample: Sample) -> list[int]:
    """The objects a sample reasons about: its `instance_ids`, then the reference object of an allocentric question."""
    ids = [int(i) for i in sample.meta_info.get("instance_ids", [])]
    if "ref_id" in sample.meta_info:
        ids.append(int(sample.meta_info["ref_id"]))
    return list(dict.fromkeys(ids))


def template_trace(ctx: SceneContext, sample: Sample, rng: np.random.Generator, style: str = "full") -> str | None:
    """`<think>…</think>answer` for one SR sample, built from scene facts; None when a step has nothing to say.

    style "full": describe each view, the camera motion and the merged layout, then apply the question's rule;
    "short": only the rule applied to the facts and the conclusion (a trace a tiny model can finish)."""
    scene = ctx.scene
    frames = [scene.frame(f) for f in sample.meta_info.get("frame_ids", [])]
    ids = referred_ids(sample)
    if not all(ctx.unique_in_scene(scene.object(i)) for i in ids):
        return None  # a trace names objects by category, so every object it reasons about must be the only one of its kind
    if style == "short":
        steps = [_reason(scene, sample)]
        if steps[0] is None:
            return None
        conclusion, answer = final_answer(sample)
        return f"<think>{steps[0]} {conclusion}</think>{answer}"
    labels = ["the image"] if len(frames) == 1 else [f"image {i + 1}" for i in range(len(frames))]
    steps = [describe_view(ctx, frame, label, ids, rng) for frame, label in zip(frames, labels)]
    if len(frames) == 2:
        steps.append(describe_motion(frames[0], frames[1], rng))
        if ids:
            steps.append(describe_layout(scene, frames[0], ids, rng))
    steps.append(_reason(scene, sample))
    if any(step is None for step in steps):
        return None
    conclusion, answer = final_answer(sample)
    return f"<think>{' '.join(steps)} {conclusion}</think>{answer}"


# -- samples out -----------------------------------------------------------------------------------------------------
def strip_direct_instruction(question: str) -> str:
    """VST-P's "...directly." instruction contradicts thinking first; CoT and RL prompts ask for the letter only."""
    return question.replace("Answer with the option's letter from the given choices directly.", "Answer with the option's letter.")


def cot_sample(sample: Sample, category: str, response: str, source: str) -> Sample:
    turns = [Turn("human", strip_direct_instruction(sample.question)), Turn("gpt", response)]
    meta = {**sample.meta_info, "source_skill": sample.skill, "source_id": sample.id, "trace": source}
    return replace(sample, id=f"{sample.id}-cot", conversations=turns, type=f"{category}_thought", skill=category,
                   data_source="vst-r", meta_info=meta)


def rl_sample(sample: Sample, category: str) -> Sample:
    tag, margin, unit = difficulty(sample.meta_info)
    turns = [Turn("human", strip_direct_instruction(sample.question)), Turn("gpt", sample.response)]
    meta = {**sample.meta_info, "source_skill": sample.skill, "source_id": sample.id, "difficulty": tag,
            "margin": margin, "margin_unit": unit}
    return replace(sample, id=f"{sample.id}-rl", conversations=turns, skill=category, data_source="vst-r", meta_info=meta)


def source_items(ctx: SceneContext, category: str, seed: int, scene_index: int, split: str) -> Iterator[Sample]:
    """The category's VST-P items for one scene, alternating between its skills; each (split, skill) has its own
    seeded stream, so CoT and RL items are drawn independently and reproducibly."""
    streams = []
    for skill in CATEGORIES[category]:
        key = int.from_bytes(hashlib.sha256(f"{split}/{skill}".encode()).digest()[:4], "little")
        streams.append(get_skill(skill).samples(ctx, np.random.default_rng([seed, scene_index, key])))
    for batch in itertools.zip_longest(*streams):
        yield from (item for item in batch if item is not None)


def passes(sample: Sample, response: str) -> bool:
    """The trace's format reward is 1 and its answer scores full marks under the item's own reward function."""
    from vst.common.rewards import score

    fn = sample.reward.get("fn", "exact")
    return score("format", response, sample.answer) == 1.0 and score(fn, response, sample.answer, **sample.reward.get("kwargs", {})) >= 1.0 - 1e-9


# -- recipe and one scene --------------------------------------------------------------------------------------------
@dataclass
class ReasonRecipe:
    name: str
    weights: dict[str, dict[str, float]]  # split -> category -> weight (thousands of items in VST-R)
    description: str = ""
    trace: str = "full"  # template traces: "full" (describe views, motion, layout, then reason) or "short" (reason only)

    def spatial_quotas(self, n: int) -> dict[tuple[str, str], int]:
        """Spatial items per (split, category) for `n` spatial items in all, proportional to the weights."""
        entries = {(s, c): w for s in SPLITS for c, w in self.weights.get(s, {}).items() if c in CATEGORIES and w > 0}
        total = sum(entries.values())
        return {key: max(1, round(n * weight / total)) for key, weight in sorted(entries.items())}

    def general_quotas(self, n: int) -> dict[tuple[str, str], int]:
        """General items per (split, category) that keep the recipe's SR:GR proportions next to `n` spatial items."""
        spatial = sum(w for s in SPLITS for c, w in self.weights.get(s, {}).items() if c in CATEGORIES)
        return {(s, c): round(n * w / spatial) for s in SPLITS for c, w in sorted(self.weights.get(s, {}).items())
                if c in GENERAL_CATEGORIES and w > 0}


def load_reason_recipe(name_or_path: str) -> ReasonRecipe:
    from vst.data.recipes import read_recipe

    data, source = read_recipe(name_or_path)
    path = Path(name_or_path)
    unknown = set(data) - {"name", "description", "trace", *SPLITS}
    if unknown:
        raise ValueError(f"{source}: {sorted(unknown)[0]}: unknown key (expected name, description, trace, cot, rl)")
    if data.get("trace", "full") not in TRACE_STYLES:
        raise ValueError(f"{source}: trace: expected one of {', '.join(TRACE_STYLES)}, got {data['trace']!r}")
    known = set(CATEGORIES) | set(GENERAL_CATEGORIES)
    for split in SPLITS:
        for category, weight in (data.get(split) or {}).items():
            if category not in known:
                raise ValueError(f"{source}: {split}.{category}: unknown category; known: {', '.join(sorted(known))}")
            if not isinstance(weight, (int, float)) or weight < 0:
                raise ValueError(f"{source}: {split}.{category}: weight must be a number >= 0, got {weight!r}")
    if not any(data.get(split) for split in SPLITS):
        raise ValueError(f"{source}: expected a `cot` and/or `rl` mapping of category to weight")
    return ReasonRecipe(data.get("name", path.stem), {s: {k: float(v) for k, v in (data.get(s) or {}).items()} for s in SPLITS},
                        data.get("description", ""), data.get("trace", "full"))


def reason_scene(ctx: SceneContext, quotas: dict[tuple[str, str], int], seed: int, scene_index: int,
                 teacher: Teacher | None = None, trace: str = "full") -> tuple[dict[str, list[Sample]], TeacherStats, dict[str, str]]:
    """One scene's VST-R items: {"cot": [...], "rl": [...]}, teacher stats, and errors per category (reported, skipped)."""
    from vst.data.teacher import TeacherStats

    out: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    stats, errors = TeacherStats(), {}
    for (split, category), quota in sorted(quotas.items()):
        if quota <= 0:
            continue
        rng = np.random.default_rng([seed, scene_index, sorted(CATEGORIES).index(category), SPLITS.index(split)])
        try:
            items = source_items(ctx, category, seed, scene_index, split)
            if split == "rl":
                out["rl"] += [rl_sample(item, category) for item in itertools.islice(items, quota)]
            elif teacher is not None:
                kept, teacher_stats = teacher.distil(ctx, list(itertools.islice(items, quota)), category)
                out["cot"] += kept
                stats.add(teacher_stats)
            else:
                traced = ((item, template_trace(ctx, item, rng, trace)) for item in items)
                checked = ((item, trace) for item, trace in traced if trace is not None and passes(item, trace))
                out["cot"] += [cot_sample(item, category, trace, TRACE_SOURCE) for item, trace in itertools.islice(checked, quota)]
        except Exception as error:  # one broken category on one scene must not stop the run; it is reported
            errors[f"{split}/{category}"] = f"{type(error).__name__}: {error}"
    return out, stats, errors


# -- the run: scenes -> cot.parquet + rl.parquet + manifest ----------------------------------------------------------
PARTS_DIR = ".parts"
OUTPUTS = {"cot": "vst-r-cot.parquet", "rl": "vst-r-rl.parquet"}


@dataclass
class ReasonConfig:
    scenes: Path
    out: Path | str  # a folder, or an fsspec URL (s3://bucket/vst-r) every worker can write to
    recipe: ReasonRecipe
    n: int  # spatial items in all (CoT + RL); general items are added in the recipe's proportion
    seed: int = 0
    general: dict[str, Path] = field(default_factory=dict)  # general category -> the user's file
    teacher_url: str | None = None
    teacher_model: str | None = None
    teacher_concurrency: int = 8
    teacher_options: dict = field(default_factory=dict)  # Teacher(...) keywords: retries, backoff_s, timeout_s, max_tokens, api_key
    resume: bool = False
    options: dict = field(default_factory=dict)  # skill switches, as EngineConfig's (e.g. {"answer_form": "text"})

    def __post_init__(self):
        check_answer_form(self.options)

    def fingerprint(self) -> str:
        from vst import __version__

        payload = {"recipe": [self.recipe.name, self.recipe.weights, self.recipe.trace], "n": self.n, "seed": self.seed,
                   "teacher": [self.teacher_url is not None, self.teacher_model], "version": __version__,
                   "general": {k: str(v) for k, v in sorted(self.general.items())}}
        if self.options:  # (runs without options keep the fingerprint they always had)
            payload["options"] = self.options
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def run_reason(config: ReasonConfig, on_scene=None, workers: int = 1, ray_address: str | None = None) -> dict:
    """Generate VST-R into `config.out`; returns the manifest (also written as manifest.json). Finished scenes are kept
    under `.parts/` so `resume=True` continues an interrupted run; the teacher's answers are cached on disk. Scenes
    run in this process, in `workers` processes or as Ray tasks (vst.parallel), each with its own teacher client;
    the outputs are the same bytes either way."""
    from collections import Counter

    from vst.data.engine import list_scenes
    from vst.common.storage import Store
    from vst.data.shards import concatenate, json_text, start_parts

    folders = list_scenes(config.scenes)
    if (config.teacher_url is None) != (config.teacher_model is None):
        raise ValueError("--teacher-url and --teacher-model go together")
    store, fingerprint = Store(config.out), config.fingerprint()
    start_parts(store, (PARTS_DIR,), "manifest.json", fingerprint, config.resume, "run",
                "recipe, n, seed, teacher or vst version")
    totals = config.recipe.spatial_quotas(config.n)
    records, skipped, errors, todo = {}, {}, {}, []
    for scene_index, folder in enumerate(folders):
        if store.exists(PARTS_DIR, f"{folder.name}.json"):
            records[folder.name] = json.loads(store.read_text(PARTS_DIR, f"{folder.name}.json"))
            if on_scene:
                on_scene(folder.name, sum(records[folder.name].get("rows", {}).values()), records[folder.name].get("skipped"))
        else:
            todo.append((config, folder, scene_index, len(folders), totals, store))
    from vst.parallel import map_jobs

    for name, record in map_jobs(_reason_job, todo, workers, ray_address):
        if not record.get("teacher", {}).get("failed"):  # a scene with failed teacher requests is redone by --resume
            store.write_text(json_text(record), PARTS_DIR, f"{name}.json")
        records[name] = record
        if on_scene:
            on_scene(name, sum(record.get("rows", {}).values()), record.get("skipped"))
    records = {folder.name: records[folder.name] for folder in folders}  # scene order, however they finished
    teacher = config.teacher_url is not None
    for name, record in records.items():
        if record.get("skipped"):
            skipped[name] = record["skipped"]
        errors.update({f"{name}/{k}": v for k, v in record.get("errors", {}).items()})

    general_rows, general_problems = _general_parts(config, store)
    counts: dict[str, Counter] = {split: Counter() for split in SPLITS}
    outputs = {}
    for split in SPLITS:
        split_parts = [f"{name}.{split}.parquet" for name, r in records.items() if not r.get("skipped")]
        split_parts += [name for name in general_rows if name.endswith(f".{split}.parquet")]
        with store.fetch([(PARTS_DIR, name) for name in split_parts]) as local, \
                store.local_file(OUTPUTS[split]) as target:
            rows = concatenate(local, target)
        outputs[split] = {"file": OUTPUTS[split], "rows": rows}
        for record in records.values():
            counts[split].update(record.get("counts", {}).get(split, {}))
        for name in split_parts:
            if name in general_rows:
                counts[split][name.split(".")[0]] += general_rows[name]
    teacher_totals = Counter()
    for record in records.values():
        teacher_totals.update(record.get("teacher", {}))
    manifest = {
        "recipe": {"name": config.recipe.name, "weights": config.recipe.weights}, "n_spatial_requested": config.n,
        "seed": config.seed, "fingerprint": fingerprint, "outputs": outputs,
        "requested_spatial": {f"{s}/{c}": q for (s, c), q in totals.items()},
        "requested_general": {f"{s}/{c}": q for (s, c), q in config.recipe.general_quotas(config.n).items()},
        "counts": {split: dict(sorted(c.items())) for split, c in counts.items()},
        "difficulty": dict(sorted(sum((Counter(r.get("difficulty", {})) for r in records.values()), Counter()).items())),
        "trace_source": f"teacher:{config.teacher_model}" if teacher else TRACE_SOURCE,
        "teacher": dict(teacher_totals) if teacher else None,
        "scenes": sorted(name for name, r in records.items() if not r.get("skipped")), "skipped_scenes": skipped,
        "errors": errors, "general_problems": general_problems,
    }
    store.write_text(json_text(manifest), "manifest.json")
    return manifest


def _reason_job(job: tuple) -> tuple[str, dict]:
    """One scene, in whichever process runs it: its own teacher client (the answer cache is shared on disk)."""
    config, folder, scene_index, scene_count, totals, store = job
    teacher = None
    if config.teacher_url is not None:
        from vst.data.teacher import Teacher

        teacher = Teacher(config.teacher_url, config.teacher_model, _teacher_cache(store),
                          concurrency=config.teacher_concurrency, **config.teacher_options)
    return folder.name, _reason_part(config, folder, scene_index, scene_count, totals, teacher, store)


def _teacher_cache(store) -> Path:
    """The teacher's answer cache: `<out>/.teacher_cache`, or for an `--out` URL a local folder named by it (an
    object store is no place for a cache written one small file at a time)."""
    if not store.is_url:
        return store.local(".teacher_cache")
    import tempfile

    key = hashlib.sha256(store.root.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "vst-teacher-cache" / key


def _reason_part(config: ReasonConfig, folder: Path, scene_index: int, scene_count: int, totals: dict, teacher,
                 store) -> dict:
    from collections import Counter

    from vst.data.engine import scene_quotas
    from vst.data.shards import write_samples

    try:
        scene = Scene.load(folder)
    except SceneError as error:
        return {"skipped": str(error), "rows": {}}
    ctx = SceneContext(scene, folder, config.options)
    quotas = scene_quotas(totals, scene_index, scene_count)
    samples, stats, errors = reason_scene(ctx, quotas, config.seed, scene_index, teacher, config.recipe.trace)
    rows = {}
    for split in SPLITS:
        with store.local_file(PARTS_DIR, f"{folder.name}.{split}.parquet") as path:
            rows[split] = write_samples(path, samples[split])
    if stats.failed:
        errors["teacher"] = f"{stats.failed} request(s) failed for good; rerun with --resume to retry them ({stats.errors[0]})"
    record = {"rows": rows, "errors": errors, "counts": {s: dict(Counter(x.skill for x in samples[s])) for s in SPLITS},
              "difficulty": dict(Counter(x.meta_info["difficulty"] for x in samples["rl"])),
              "teacher": {"kept": stats.kept, "rejected": stats.rejected, "failed": stats.failed, "cached": stats.cached}}
    return record


def _general_parts(config: ReasonConfig, store) -> tuple[dict[str, int], list[str]]:
    """Write the general items the recipe asks for (a seeded draw from each user file) as parts (their file names ->
    rows); problems reported."""
    from vst.data.shards import write_samples

    written, problems = {}, []
    quotas = config.recipe.general_quotas(config.n)
    if quotas and not config.general:
        return written, [f"general reasoning: no sources given (--general gr_math=FILE, ...), so the {sum(quotas.values())} "
                         f"general items of the {config.recipe.name} mixture are left out; the outputs hold spatial items only"]
    for (split, category), quota in sorted(quotas.items()):
        if category not in config.general:
            problems.append(f"{split}/{category}: no source given (--general {category}=FILE); {quota} items of the mixture are missing")
            continue
        samples, bad = read_general(config.general[category], category, split)
        problems += bad[:10] + ([f"... and {len(bad) - 10} more"] if len(bad) > 10 else [])
        key = int.from_bytes(hashlib.sha256(f"{split}/{category}".encode()).digest()[:4], "little")
        order = np.random.default_rng([config.seed, key]).permutation(len(samples))
        chosen = [samples[i] for i in order[:quota]]
        if len(chosen) < quota:
            problems.append(f"{split}/{category}: {config.general[category]} has {len(samples)} usable items, the recipe asks for {quota}")
        name = f"{category}.{split}.parquet"
        with store.local_file(PARTS_DIR, name) as path:
            written[name] = write_samples(path, chosen)
    return written, problems
