"""Scene captions (VST skill "Scene Caption", single / multi / video; spec paper.md §2.1, §2.3, data.md §4.3 #7, #13, #19).

Emits three skills, each one caption per frame set (answer {"type": "text"}, reward {}: free text is not rule-checked):
- `si_scene_caption` (single): one still or view-pair frame; what is visible, the object nearest the camera (when
  nearer than every other visible object by max(0.15 m, 10 %)) and relations seen from that camera (left/right,
  in front/behind) plus on / next to / against the wall;
- `mi_scene_caption` (multi): the two images of a view pair; the combined layout, relations seen from the first
  camera, what only the second view adds, and how far apart the two cameras stand;
- `video_scene_caption` (video): the walk-through video; room floor area and ceiling height, the main furniture
  (footprint >= `MAIN_FOOTPRINT_M2`, largest `MAIN_FURNITURE` pieces) and their relations and distances.
Captions are templated paragraphs built from `vst.data.scene_graph` (whose filters they inherit: strict 0.05 m /
3 % separation, next to < 0.5 m, near a wall < 0.3 m); object names are unique among visible objects (images) or
in the scene (video). Every number is a metric fact recorded in order in `meta_info["facts"]` ({kind, value, unit,
ids}), so captions can be audited against the scene; counts are written as words.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator

import numpy as np

from vst.data.context import SceneContext
from vst.data.sample import Sample
from vst.data.scene_graph import INVERSE, Relation, SceneGraph, box_of, build_scene_graph, category_name, plural, visible_objects
from vst.data.skills.registry import register_skill
from vst.data.skills.si_depth import gap_margin
from vst.data.skills.si_measurement import object_dimensions
from vst.scene.geometry import box_distance, point_box_distance
from vst.scene.types import Frame

MAX_RELATIONS = 6
MAX_MENTIONS = 2  # relations per object in one caption
MAX_INVENTORY = 8  # categories listed before "and other objects"
MAIN_FOOTPRINT_M2 = 0.15
MAIN_MIN_HEIGHT_M = 0.3  # rugs and other flat things are not "main furniture"
MAIN_FURNITURE = 6
MAIN_DISTANCES = 2  # main-furniture pairs whose distance a video caption states
MIN_STATED_DISTANCE_M = 0.1  # shorter gaps are called "beside" without a number
NEAREST_GAP_M, NEAREST_GAP_REL = 0.15, 0.10  # "closest to the camera" only when clearly closer than the runner-up
VIDEO_PREFIX = "These are frames of a video.\n"
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

SI_PROMPTS = [
    "Describe the layout of this scene and the spatial relationships between the objects.",
    "Write a short description of the room in the image, focusing on where the objects are relative to each other.",
    "Give a caption of the image that explains the layout and spatial relations within it.",
    "What does this scene look like? Describe the objects and how they are arranged in space.",
    "Summarize the spatial arrangement of the objects visible in this image.",
]
MI_PROMPTS = [
    "These two images show the same room from different viewpoints. Describe the combined layout.",
    "Both pictures were taken in one room. Describe the objects they show and how they are arranged.",
    "Using both images, write a description of the room layout and the spatial relationships between objects.",
    "Combine the two views into one description of the scene's layout.",
    "The images are two views of a single space. Summarize what is in it and where things are.",
]
VIDEO_PROMPTS = [
    "Describe the layout of this room.",
    "Write a description of the room shown in the video, including its size and the arrangement of the furniture.",
    "Summarize the room: how big it is, what furniture it contains and how the pieces are placed.",
    "Give a caption of the scene that covers its size, the main furniture and their spatial relationships.",
    "What does this room look like? Describe its size and layout.",
]
SI_OPENINGS = [
    "The image shows {inventory}.", "This view captures {inventory}.", "In this picture there are {inventory}.",
    "Visible in the frame are {inventory}.", "The photo shows part of a room with {inventory}.",
]
MI_OPENINGS = [
    "Together, the two images show {inventory}.", "Across both views the room contains {inventory}.",
    "The two pictures reveal {inventory}.", "Combining the views, there are {inventory}.",
    "Between them, the two images capture {inventory}.",
]
VIDEO_OPENINGS = [
    "The video walks through a room of about {area} square meters with a ceiling about {ceiling} m high.",
    "This is a room of roughly {area} square meters; the ceiling is about {ceiling} m high.",
    "The camera moves around a space of about {area} square meters, about {ceiling} m from floor to ceiling.",
    "The room covers about {area} square meters of floor and is about {ceiling} m tall.",
    "We are in a room of roughly {area} square meters whose ceiling sits about {ceiling} m above the floor.",
]
FURNITURE = [
    "The main furniture includes {items}.", "Its largest pieces are {items}.", "The room is furnished with {items}.",
    "The main pieces of furniture are {items}.", "Among the furniture are {items}.",
]
NEAREST = [
    "The {a} is the closest object to the camera, about {d} m away.", "Nearest to the camera is the {a}, roughly {d} m away.",
    "The {a} is closest to the viewer, about {d} m from the camera.",
    "The closest thing to the camera is the {a}, at about {d} m.",
    "About {d} m from the camera, the {a} is the nearest object.",
]
SECOND_VIEW = ["Only the second image shows {items}.", "The second view adds {items}.",
               "{Items} appear only in the second image."]
BASELINE = [
    "The second photo was taken about {d} m from where the first was taken.", "The two cameras stand about {d} m apart.",
    "The viewpoints are roughly {d} m apart.", "The camera moved about {d} m between the two pictures.",
    "About {d} m separate the two camera positions.",
]
CONNECTIVES = ["", "Also, ", "In addition, ", "Meanwhile, ", "Moreover, ", "Furthermore, "]
FIRST_VIEW = ["From the first viewpoint, ", "Seen from the first camera, ", "In the first image, "]
CAMERA_PREDICATES = ("left of", "right of", "in front of", "behind")
VIEW_FREE_PREDICATES = ("on", "next to", "against the wall")
SAMPLE_KINDS = {  # skill -> (modality, VST `type`); VST's video subset uses type "video" (spec paper.md §2.1)
    "si_scene_caption": ("single", "si_scene_caption"),
    "mi_scene_caption": ("multi", "mi_scene_caption"),
    "video_scene_caption": ("video", "video"),
}
CLAUSES = {
    "left of": ["the {a} is to the left of the {b}", "the {a} appears left of the {b}",
                "the {a} sits on the left side of the {b}"],
    "right of": ["the {a} is to the right of the {b}", "the {a} appears right of the {b}",
                 "the {a} sits on the right side of the {b}"],
    "in front of": ["the {a} is in front of the {b}, closer to the camera", "the {a} stands nearer the camera than the {b}"],
    "behind": ["the {a} is behind the {b}, farther from the camera", "the {a} lies farther from the camera than the {b}"],
    "on": ["the {a} rests on the {b}", "the {a} is placed on top of the {b}", "the {a} stands on the {b}"],
    "next to": ["the {a} is next to the {b}", "the {a} stands beside the {b}", "the {a} is close to the {b}"],
    "against the wall": ["the {a} stands against a wall", "the {a} is placed by the wall", "the {a} is close to a wall"],
    "apart": ["the {a} and the {b} are about {d} m apart", "about {d} m separate the {a} from the {b}"],
}
DISTANCE_CLAUSES = [", about {d} m away from it", ", roughly {d} m apart", " (about {d} m between them)",
                    ", with a gap of about {d} m", ", some {d} m from it"]


def count_phrase(name: str, count: int) -> str:
    """"a chair", "an armchair", "two chairs", "many books" (counts in words, so every digit is a metric fact)."""
    if count == 1:
        return ("an " if name[0] in "aeiou" else "a ") + name
    return f"{NUMBER_WORDS[count] if count < len(NUMBER_WORDS) else 'many'} {plural(name)}"


def join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


class _Writer:
    """Accumulates sentences and, in text order, the metric facts behind every number written."""

    def __init__(self, rng: np.random.Generator, camera_leads: list[str] | None = None):
        self.rng, self.sentences, self.facts, self.stated = rng, [], [], []
        self.camera_leads = camera_leads  # lead-ins naming the camera when several are in play (multi-image)

    def pick(self, templates: list[str]) -> str:
        return str(templates[int(self.rng.integers(len(templates)))])

    def number(self, kind: str, value: float, unit: str, **ids) -> str:
        self.facts.append({"kind": kind, "value": round(value, 1), "unit": unit, **ids})
        return f"{value:.1f}"

    def say(self, sentence: str) -> None:
        self.sentences.append(sentence[0].upper() + sentence[1:])

    def relations(self, graph: SceneGraph, relations: list[Relation]) -> None:
        mentions: Counter = Counter()
        pairs: set[frozenset] = set()
        for index in self.rng.permutation(len(relations)):
            relation = relations[int(index)]
            ids = [i for i in (relation.subject, relation.target) if i is not None]
            if len(self.stated) == MAX_RELATIONS or frozenset(ids) in pairs or any(mentions[i] >= MAX_MENTIONS for i in ids):
                continue
            pairs.add(frozenset(ids))
            mentions.update(ids)
            lead = self.camera_leads if self.camera_leads and relation.predicate in CAMERA_PREDICATES else CONNECTIVES
            self.say(self.pick(lead) + self.clause(graph, relation) + ".")

    def clause(self, graph: SceneGraph, relation: Relation) -> str:
        """The relation as a clause, said either way round for symmetric or invertible predicates; recorded as said."""
        subject, predicate, target = relation.subject, relation.predicate, relation.target
        if predicate in INVERSE or predicate == "next to":
            if self.rng.random() < 0.5:
                subject, target, predicate = target, subject, INVERSE.get(predicate, predicate)
        if predicate != "apart":
            self.stated.append(Relation(subject, predicate, target, relation.distance_m, relation.margin_m))
        names = {"a": graph.names[subject], "b": graph.names[target] if target is not None else ""}
        ids = {"instance_ids": [subject] + ([target] if target is not None else [])}
        if predicate == "apart":
            return self.pick(CLAUSES[predicate]).format(d=self.number("box_distance", relation.distance_m, "m", **ids), **names)
        text = self.pick(CLAUSES[predicate]).format(**names)
        if predicate not in ("on", "against the wall") and round(relation.distance_m, 1) >= MIN_STATED_DISTANCE_M:
            text += self.pick(DISTANCE_CLAUSES).format(d=self.number("box_distance", relation.distance_m, "m", **ids))
        return text

    def meta(self, frames: list[Frame], graph: SceneGraph) -> dict:
        ids = {i for f in self.facts for i in f.get("instance_ids", [])}
        ids |= {i for r in self.stated for i in (r.subject, r.target) if i is not None}
        margins = [r.margin_m for r in self.stated]
        relations = [[r.subject, r.predicate, r.target, round(r.distance_m, 4), round(r.margin_m, 4)] for r in self.stated]
        return {"frame_ids": [f.frame_id for f in frames], "instance_ids": sorted(ids), "facts": self.facts,
                "relations": relations, "names": {str(k): v for k, v in graph.names.items() if v},
                "margin_m": round(min(margins), 4) if margins else None}

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def inventory(objects, rng: np.random.Generator) -> str:
    counts = Counter(category_name(o) for o in objects)
    names = [list(counts)[int(i)] for i in rng.permutation(len(counts))]
    items = [count_phrase(name, counts[name]) for name in names[:MAX_INVENTORY]]
    return join(items + (["other objects"] if len(names) > MAX_INVENTORY else []))


def _nearest_sentence(ctx: SceneContext, writer: _Writer, graph: SceneGraph, frame: Frame) -> None:
    """Name the object nearest the camera (closest box point) when it is named and clearly nearer than any other
    visible object (gap >= max(0.15 m, 10 %), as for depth comparisons)."""
    visible = visible_objects(ctx, [frame])
    eye = frame.pose[None, :3, 3]
    if len(visible) < 2:
        return
    distances = np.array([float(point_box_distance(eye, box_of(o))[0]) for o in visible])
    first, second = np.argsort(distances)[:2]
    nearest = visible[int(first)]
    clear = gap_margin(distances[first], distances[second], NEAREST_GAP_M, NEAREST_GAP_REL) >= 0
    if not clear or not graph.names.get(nearest.instance_id):
        return
    d = writer.number("camera_distance", distances[first], "m", instance_ids=[nearest.instance_id], frame_id=frame.frame_id)
    writer.say(writer.pick(NEAREST).format(a=graph.names[nearest.instance_id], d=d))


def _caption_sample(ctx: SceneContext, skill: str, writer: _Writer, graph: SceneGraph, frames: list[Frame], prompt: str,
                    media: list) -> Sample:
    modality, sample_type = SAMPLE_KINDS[skill]
    answer = {"type": "text", "value": writer.text}
    return ctx.sample(skill, prompt, writer.text, answer, {}, media, writer.meta(frames, graph), modality, sample_type)


@register_skill("si_scene_caption", "Scene Caption", "single")
def generate_single(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = ctx.frames("still") + ctx.frames("pair")
    for index in rng.permutation(len(frames)):
        frame = frames[int(index)]
        graph = build_scene_graph(ctx, [frame], reference=frame)
        if len(graph.named()) < 2 or not graph.relations:
            continue
        writer = _Writer(rng)
        writer.say(writer.pick(SI_OPENINGS).format(inventory=inventory(graph.objects, rng)))
        _nearest_sentence(ctx, writer, graph, frame)
        writer.relations(graph, graph.relations)
        prompt = writer.pick(SI_PROMPTS)
        yield _caption_sample(ctx, "si_scene_caption", writer, graph, [frame], prompt, [ctx.image_media(frame)])


@register_skill("mi_scene_caption", "Scene Caption", "multi")
def generate_multi(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    pairs = [frames for name, frames in sorted(ctx.scene.sequences().items()) if name.startswith("pair") and len(frames) == 2]
    for index in rng.permutation(len(pairs)):
        first, second = pairs[int(index)]
        graph = build_scene_graph(ctx, [first, second], reference=first)
        if len(graph.named()) < 2 or not graph.relations:
            continue
        writer = _Writer(rng, camera_leads=FIRST_VIEW)
        writer.say(writer.pick(MI_OPENINGS).format(inventory=inventory(graph.objects, rng)))
        writer.relations(graph, graph.relations)
        in_first = {o.instance_id for o in ctx.objects if o.instance_id in first.visibility}
        only_second = sorted({graph.names[o.instance_id] for o in graph.named() if o.instance_id not in in_first})
        if only_second:
            items = join([f"the {name}" for name in only_second])
            writer.say(writer.pick(SECOND_VIEW).format(items=items, Items=items[0].upper() + items[1:]))
        baseline = float(np.linalg.norm(first.pose[:3, 3] - second.pose[:3, 3]))
        d = writer.number("camera_baseline", baseline, "m", frame_ids=[first.frame_id, second.frame_id])
        writer.say(writer.pick(BASELINE).format(d=d))
        media = [ctx.image_media(first), ctx.image_media(second)]
        yield _caption_sample(ctx, "mi_scene_caption", writer, graph, [first, second], writer.pick(MI_PROMPTS), media)


def main_furniture(graph: SceneGraph) -> list:
    """Named objects at least MAIN_MIN_HEIGHT_M tall with a box footprint >= MAIN_FOOTPRINT_M2, largest first,
    at most MAIN_FURNITURE."""
    sized = []
    for obj in graph.named():
        dimensions = object_dimensions(box_of(obj))
        if dimensions["length"] * dimensions["width"] >= MAIN_FOOTPRINT_M2 and dimensions["height"] >= MAIN_MIN_HEIGHT_M:
            sized.append((dimensions["length"] * dimensions["width"], obj))
    return [o for _, o in sorted(sized, key=lambda pair: -pair[0])][:MAIN_FURNITURE]


@register_skill("video_scene_caption", "Scene Caption", "video")
def generate_video(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    frames = sorted(ctx.frames("video"), key=lambda f: f.timestamp)
    room = ctx.scene.room
    if len(frames) < 2 or room is None or not ctx.scene.fps:
        return
    graph = build_scene_graph(ctx, frames, scene_level=True)
    main = main_furniture(graph)
    if len(main) < 2:
        return
    writer = _Writer(rng)
    area = writer.number("room_area", room.area_m2, "m2")
    ceiling = writer.number("ceiling_height", room.ceiling_z - room.floor_z, "m")
    writer.say(writer.pick(VIDEO_OPENINGS).format(area=area, ceiling=ceiling))
    writer.say(writer.pick(FURNITURE).format(items=join([count_phrase(graph.names[o.instance_id], 1) for o in main])))
    main_ids = {o.instance_id for o in main}
    related = [r for r in graph.relations if r.predicate in VIEW_FREE_PREDICATES and {r.subject, r.target} & main_ids]
    writer.relations(graph, related)
    linked = {frozenset((r.subject, r.target)) for r in graph.relations}
    far_pairs = [(a, b) for i, a in enumerate(main) for b in main[i + 1:]
                 if frozenset((a.instance_id, b.instance_id)) not in linked]
    for index in rng.permutation(len(far_pairs))[:MAIN_DISTANCES]:
        a, b = far_pairs[int(index)]
        distance = box_distance(box_of(a), box_of(b))
        clause = writer.clause(graph, Relation(a.instance_id, "apart", b.instance_id, distance, distance))
        writer.say(writer.pick(CONNECTIVES) + clause + ".")
    prompt = VIDEO_PREFIX + writer.pick(VIDEO_PROMPTS)
    media = [ctx.video_media(frames, ctx.scene.fps)]
    yield _caption_sample(ctx, "video_scene_caption", writer, graph, frames, prompt, media)
