"""Multi-image camera relations (VST skills "Camera-Camera" and "Camera Motion", modality multi; spec paper.md §2.3,
data.md §4.3 #11-12).

Both read the relative pose of the two cameras of a view pair (`mi_correspondence.view_pairs`: "pair-NN" sequences
and video frames 1-4 s apart) in camera 1's **levelled** frame: forward = camera 1's viewing direction projected on
the floor, right = forward turned 90 degrees clockwise seen from above, up = world z. A first-person viewer tilted
down still calls a walk along the floor "forward"; for level cameras this equals the OpenCV frame (x right, z
forward). Yaw (pan) is the clockwise angle from camera 1's floor heading to camera 2's; positive = turned right.

`mi_camera_camera` (type `mi_camera_camera`): where camera 2 is relative to camera 1
- as a clock direction (12 o'clock = camera 1's forward, 3 o'clock = its right): margin >= 7.5 degrees from the clock
  sector boundaries. Clock sectors are only 30 degrees wide, so the 15-degree rule of spec data.md §1.9 (made for
  45-90 degree sectors) would leave no valid angle; 7.5 degrees keeps the middle half of each hour;
- as front / right / back / left (90-degree sectors): margin >= 15 degrees;
- the distance between the cameras (metres, reward `mra`); every question needs a baseline >= 0.3 m;
- the yaw angle between their viewing directions (degrees, reward `mra`), asked when >= 10 degrees.
`mi_camera_motion` (type `mi_camera_motion`): from image 1 to image 2, did the camera move left/right (VST's
"direction of sideways translation"), forward/backward, or pan left/right, and by how much (metres / degrees).
Translation needs its dominant axis >= 0.2 m and >= 1.5x the other two axes; panning needs |yaw| >= 10 degrees
(spec data.md §1.9). A pair may be shown in either order; the order whose answer was asked less often so far is
used, which balances left against right and forward against backward.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterator, NamedTuple

import numpy as np

from vst.data.choices import LetterBalancer, multiple_choice
from vst.data.context import SceneContext
from vst.data.directions import (
    FOUR_WAY_DIRECTIONS, clock_direction, clockwise_angle, four_way_direction, in_level_frame, level_heading, wrap_degrees,
)
from vst.data.sample import Sample
from vst.data.skills.mi_correspondence import view_pairs
from vst.data.skills.registry import register_skill
from vst.scene.geometry import world_to_camera
from vst.scene.types import Frame

MIN_BASELINE_M = 0.3
MIN_CLOCK_MARGIN_DEG = 7.5
MIN_FOUR_WAY_MARGIN_DEG = 15.0
MIN_TRANSLATION_M = 0.2
DOMINANCE_RATIO = 1.5
MIN_ROTATION_DEG = 10.0
AXES = ("right", "forward", "up")
AXIS_WORDS = {"right": ("right", "left"), "forward": ("forward", "backward")}  # (positive, negative)

MOTION_TEMPLATES = {
    "right": [
        "Images are recorded from a first-person perspective. Determine the camera's direction of sideways translation "
        "(left or right) shown in these images.",
        "Between the first and the second image, did the camera slide to the left or to the right?",
        "These two frames come from one moving camera. Was its sideways movement towards the left or the right?",
        "Judging from the two views, in which lateral direction (left or right) did the camera shift?",
        "From image 1 to image 2, the camera moved sideways. Was that movement to its left or to its right?",
    ],
    "forward": [
        "Images are recorded from a first-person perspective. Did the camera move forward or backward between them?",
        "Between the first and the second image, did the camera advance or retreat along its viewing direction? "
        "Answer forward or backward.",
        "These two frames come from one moving camera. Did it move forward or backward?",
        "Judging from the two views, was the camera's translation forward or backward?",
        "From image 1 to image 2, did the viewer step forward or backward?",
    ],
    "yaw": [
        "Images are recorded from a first-person perspective. Did the camera pan (rotate) to the left or to the right?",
        "Between the first and the second image, which way did the camera turn: left or right?",
        "These two frames come from one camera. Did its viewing direction rotate to the left or to the right?",
        "Judging from the two views, did the camera yaw towards the left or the right?",
        "From image 1 to image 2, the camera rotated about the vertical axis. Was it a left or a right turn?",
    ],
}
AMOUNT_TEMPLATES = {
    "translation": [
        "Images are recorded from a first-person perspective. How many meters did the camera move {word} between them?",
        "From the first to the second image the camera moved {word}. By how many meters?",
        "Estimate, in meters, how far the camera traveled {word} from image 1 to image 2.",
        "The camera shifted {word} between these two frames. What was the distance of that shift in meters?",
        "How far (in meters) did the viewpoint move {word} between the two images?",
    ],
    "rotation": [
        "Images are recorded from a first-person perspective. By how many degrees did the camera turn {word}?",
        "From the first to the second image the camera panned {word}. How many degrees did it rotate?",
        "Estimate the angle, in degrees, by which the camera rotated {word} between the two images.",
        "The camera yawed {word} between these frames. By roughly how many degrees?",
        "How large was the camera's turn to the {word} from image 1 to image 2, in degrees?",
    ],
}
CAMERA_TEMPLATES = {
    "clock": [
        "Take the camera of the first image as facing 12 o'clock. In which clock direction is the camera of the second image?",
        "If the first camera looks toward 12 o'clock, at what o'clock position does the second camera stand?",
        "Using a clock face centered on the first camera, with 12 o'clock straight ahead, where is the second camera?",
        "Seen from the first viewpoint (straight ahead = 12 o'clock), which clock direction points to the second viewpoint?",
        "Where is the second image's camera relative to the first image's camera, as a clock direction (12 o'clock = forward)?",
    ],
    "four_way": [
        "Relative to the camera of the first image, is the camera of the second image to the front, back, left or right?",
        "Standing at the first camera and facing its view, in which direction (front, back, left, right) is the second camera?",
        "Where was the second image taken relative to the first camera: front, back, left or right?",
        "From the first viewpoint, does the second viewpoint lie in front, behind, to the left or to the right?",
        "Which side of the first camera is the second camera on: front, back, left or right?",
    ],
    "distance": [
        "How far apart, in meters, are the cameras that took these two images?",
        "What is the distance in meters between the positions of the first and the second camera?",
        "Estimate the straight-line distance (meters) between the two viewpoints.",
        "The two images were taken from different spots. How many meters separate them?",
        "In meters, how far is the camera of the second image from the camera of the first image?",
    ],
    "yaw": [
        "What is the angle, in degrees, between the viewing directions of the two cameras?",
        "By how many degrees do the horizontal viewing directions of the first and the second camera differ?",
        "Estimate the yaw angle between the two cameras' facing directions, in degrees.",
        "How many degrees would the first camera have to turn to face the same way as the second?",
        "In degrees, how far apart are the headings of the two viewpoints?",
    ],
}


class RelativePose(NamedTuple):
    """Camera 2 seen from camera 1's levelled frame."""

    translation: np.ndarray  # (3,) right, forward, up, metres
    yaw_deg: float  # clockwise turn from camera 1's heading to camera 2's, (-180, 180]; positive = right
    bearing_deg: float  # clockwise angle from camera 1's heading to camera 2's position on the floor, [0, 360)
    baseline_m: float  # 3D distance between the camera centres


def relative_pose(pose_first, pose_second) -> RelativePose | None:
    """Relative pose of two cam_to_world (4, 4) poses; None when a camera looks straight up or down."""
    first, second = np.asarray(pose_first, dtype=np.float64), np.asarray(pose_second, dtype=np.float64)
    heading_first, heading_second = level_heading(first), level_heading(second)
    if heading_first is None or heading_second is None:
        return None
    offset = second[:3, 3] - first[:3, 3]
    yaw = -wrap_degrees(-clockwise_angle(heading_first, heading_second))  # (-180, 180]
    bearing = clockwise_angle(heading_first, offset[:2]) if np.linalg.norm(offset[:2]) > 1e-9 else 0.0
    return RelativePose(in_level_frame(offset, heading_first), yaw, bearing, float(np.linalg.norm(offset)))


def dominant_axis(translation, min_length: float = MIN_TRANSLATION_M, ratio: float = DOMINANCE_RATIO) -> tuple[int, float]:
    """(axis, margin_m) of the translation (3,): the largest |component| and how far it clears both rules
    (>= min_length, >= ratio x every other |component|); margin < 0 means no axis dominates."""
    magnitudes = np.abs(np.asarray(translation, dtype=np.float64))
    axis = int(np.argmax(magnitudes))
    others = np.delete(magnitudes, axis).max()
    return axis, float(min(magnitudes[axis] - min_length, magnitudes[axis] - ratio * others))


def _text_or_mc(question: str, correct: str, options: list[str], rng, balancer) -> tuple[str, str, dict, dict]:
    """Ask as lettered options (half the time) or for the word itself among `options` (reward `option_text`)."""
    if rng.random() < 0.5:
        choice = multiple_choice(correct, [o for o in options if o != correct], balancer, rng)
        return choice.prompt(question), choice.letter, choice.answer, {"fn": "multiple_choice"}
    prompt = f"{question} Answer with one of: {', '.join(options)}."
    return prompt, correct, {"type": "text", "value": correct, "options": options}, {"fn": "option_text"}


def motion_questions(relative: RelativePose) -> dict[str, tuple[str, float, float]]:
    """Form -> (answer word, amount, margin) for every motion question the pose supports.

    Forms: "right" / "forward" (translation along that axis; amount metres, margin_m), "yaw" (pan; amount and
    margin in degrees).
    """
    questions = {}
    axis, margin = dominant_axis(relative.translation)
    if margin >= 0 and AXES[axis] in AXIS_WORDS:
        value = float(relative.translation[axis])
        positive, negative = AXIS_WORDS[AXES[axis]]
        questions[AXES[axis]] = (positive if value > 0 else negative, abs(value), margin)
    if abs(relative.yaw_deg) >= MIN_ROTATION_DEG:
        turn = abs(relative.yaw_deg)
        questions["yaw"] = ("right" if relative.yaw_deg > 0 else "left", turn, turn - MIN_ROTATION_DEG)
    return questions


def _pose_meta(first: Frame, second: Frame, origin: str, relative: RelativePose) -> dict:
    camera_frame = world_to_camera(second.pose[:3, 3][None], first.pose)[0]
    return {"frame_ids": [first.frame_id, second.frame_id], "instance_ids": [], "pair_origin": origin,
            "time_gap_s": round(abs(second.timestamp - first.timestamp), 3),
            "translation_level_m": [round(float(v), 4) for v in relative.translation],
            "translation_camera_m": [round(float(v), 4) for v in camera_frame], "yaw_deg": round(relative.yaw_deg, 2),
            "bearing_deg": round(relative.bearing_deg, 2), "baseline_m": round(relative.baseline_m, 4)}


def _rarest_order(options: dict[int, dict], form: str, asked: Counter, rng: np.random.Generator) -> int:
    """Which order of the pair (0 = as given, 1 = swapped) to ask `form` in: the one whose answer was asked least."""
    candidates = [i for i in options if form in options[i]]
    counts = [asked[(form, options[i][form][0])] for i in candidates]
    fewest = [i for i, count in zip(candidates, counts) if count == min(counts)]
    return fewest[int(rng.integers(len(fewest)))]


def _motion_question(form: str, word: str, amount: float, rng, balancer: LetterBalancer) -> tuple[str, str, dict, dict, str]:
    """(prompt, answer text, answer, reward, form name): the direction word (70 %) or the amount (30 %)."""
    if rng.random() < 0.7:
        negative_first = [w.capitalize() for w in AXIS_WORDS.get(form, ("right", "left"))[::-1]]
        question = str(rng.choice(MOTION_TEMPLATES[form]))
        return (*_text_or_mc(question, word.capitalize(), negative_first, rng, balancer), form)
    kind = "rotation" if form == "yaw" else "translation"
    value = round(amount, 2) if kind == "translation" else int(round(amount))
    prompt = str(rng.choice(AMOUNT_TEMPLATES[kind])).format(word=word)
    answer = {"type": "number", "value": value, "unit": "m" if kind == "translation" else "degrees"}
    answer_text = f"{value:.2f}" if kind == "translation" else str(value)
    return prompt, answer_text, answer, {"fn": "mra"}, f"{form}_amount"


@register_skill("mi_camera_motion", "Camera Motion", "multi")
def generate_motion(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    balancer, asked = LetterBalancer(), Counter()
    for first, second, origin in view_pairs(ctx, rng):
        orders = [(a, b, relative_pose(a.pose, b.pose)) for a, b in ((first, second), (second, first))]
        options = {i: motion_questions(relative) for i, (_, _, relative) in enumerate(orders) if relative is not None}
        forms = sorted({form for questions in options.values() for form in questions})
        for form in [forms[i] for i in rng.permutation(len(forms))]:
            index = _rarest_order(options, form, asked, rng)
            word, amount, margin = options[index][form]
            asked[(form, word)] += 1
            source, target, relative = orders[index]
            prompt, answer_text, answer, reward, form_name = _motion_question(form, word, amount, rng, balancer)
            margin_key = "margin_deg" if form == "yaw" else "margin_m"
            meta = {**_pose_meta(source, target, origin, relative), "form": form_name, "direction": word,
                    "amount": round(amount, 4), margin_key: round(margin, 4)}
            media = [ctx.image_media(source), ctx.image_media(target)]
            yield ctx.sample("mi_camera_motion", prompt, answer_text, answer, reward, media, meta, "multi", "mi_camera_motion")


def camera_questions(relative: RelativePose) -> dict[str, tuple[str | float, float]]:
    """Form -> (answer, margin) for every camera-camera question the pose supports (margins in degrees or metres)."""
    if relative.baseline_m < MIN_BASELINE_M:
        return {}
    distance = (round(relative.baseline_m, 2), relative.baseline_m - MIN_BASELINE_M)
    questions: dict[str, tuple[str | float, float]] = {"distance": distance}
    if np.linalg.norm(relative.translation[:2]) >= MIN_BASELINE_M:
        hour, clock_margin = clock_direction(relative.bearing_deg)
        if clock_margin >= MIN_CLOCK_MARGIN_DEG:
            questions["clock"] = (f"{hour} o'clock", clock_margin)
        side, side_margin = four_way_direction(relative.bearing_deg)
        if side_margin >= MIN_FOUR_WAY_MARGIN_DEG:
            questions["four_way"] = (side, side_margin)
    if abs(relative.yaw_deg) >= MIN_ROTATION_DEG:
        questions["yaw"] = (int(round(abs(relative.yaw_deg))), abs(relative.yaw_deg) - MIN_ROTATION_DEG)
    return questions


@register_skill("mi_camera_camera", "Camera-Camera", "multi")
def generate_camera(ctx: SceneContext, rng: np.random.Generator) -> Iterator[Sample]:
    balancer = LetterBalancer()
    for first, second, origin in view_pairs(ctx, rng):
        if rng.random() < 0.5:
            first, second = second, first
        relative = relative_pose(first.pose, second.pose)
        questions = camera_questions(relative) if relative is not None else {}
        forms = sorted(questions)
        for form in [forms[i] for i in rng.permutation(len(forms))]:
            value, margin = questions[form]
            question = str(rng.choice(CAMERA_TEMPLATES[form]))
            if form == "clock":
                hours = [f"{h} o'clock" for h in range(1, 13) if f"{h} o'clock" != value]
                distractors = [hours[i] for i in rng.choice(len(hours), size=3, replace=False)]
                choice = multiple_choice(str(value), distractors, balancer, rng)
                prompt, answer_text, answer = choice.prompt(question), choice.letter, choice.answer
                reward = {"fn": "multiple_choice"}
            elif form == "four_way":
                prompt, answer_text, answer, reward = _text_or_mc(question, str(value), list(FOUR_WAY_DIRECTIONS), rng, balancer)
            else:
                unit = "m" if form == "distance" else "degrees"
                prompt, answer_text = question, f"{value:.2f}" if form == "distance" else str(value)
                answer, reward = {"type": "number", "value": value, "unit": unit}, {"fn": "mra"}
            margin_key = "margin_m" if form == "distance" else "margin_deg"
            meta = {**_pose_meta(first, second, origin, relative), "form": form, "value": value,
                    margin_key: round(float(margin), 4)}
            media = [ctx.image_media(first), ctx.image_media(second)]
            yield ctx.sample("mi_camera_camera", prompt, answer_text, answer, reward, media, meta, "multi", "mi_camera_camera")
