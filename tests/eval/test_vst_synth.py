"""vst-synth: scoring per answer type, per-skill aggregation with box AP, rows from a shard written by the test."""

import io
import json

import pytest
from PIL import Image

from vst.data.sample import Media, Sample, Turn
from vst.data.shards import write_samples
from vst.eval.benchmarks import vst_synth
from vst.eval.benchmarks.registry import BENCHMARKS, register_benchmark
from vst.eval.predictions import score_file, write_predictions

CUBE_A = [0.0, 0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
CUBE_B = [2.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
TABLE = [-1.0, 0.5, 4.0, 1.5, 0.8, 1.0, 0.0, 0.25, 0.0]
MC_QUESTION = "Which is closer?\nOptions:\nA. chair\nB. table\nAnswer with the option's letter from the given choices directly."

MC = {"type": "mc", "value": "B", "options": ["A. chair", "B. table"]}
OPTION_TEXT = {"type": "text", "value": "chair", "options": ["chair", "table"]}
ORDER = {"type": "order", "value": ["C", "A", "B"]}
NUMBER = {"type": "number", "value": 2.0, "unit": "m"}
YESNO = {"type": "yesno", "value": "yes"}
MAP = {"type": "map", "value": {"chair": [[1, 2]], "table": [[3, 4]]}}
BOXES = {"type": "boxes3d", "value": [{"bbox_3d": CUBE_A, "label": "chair"}, {"bbox_3d": CUBE_B, "label": "chair"}]}
CAPTION = {"type": "text", "value": "A room with a chair."}


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 20, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def sample(id, skill, answer, question="Question?", modality="single"):
    placeholder = "<|video_pad|>" if modality == "video" else "<|image_pad|>"
    media = Media(b"mp4 bytes" if modality == "video" else png(), "")
    return Sample(id=id, conversations=[Turn("human", f"{placeholder}\n{question}"), Turn("gpt", "answer")],
                  images=[media], type=skill, skill=skill, modality=modality, answer=answer, reward={})


SAMPLES = [
    sample("d0", "si_depth_comparison", MC, MC_QUESTION),
    sample("d1", "si_depth_comparison", OPTION_TEXT),
    sample("d2", "si_depth_comparison", ORDER),
    sample("m0", "si_measurement", NUMBER),
    sample("c0", "video_counting", {"type": "number", "value": 4}, "How many chairs?", "video"),
    sample("b0", "si_3d_detection", BOXES),
    sample("b1", "si_3d_detection", {"type": "boxes3d", "value": [{"bbox_3d": TABLE, "label": "table"}]}),
    sample("s0", "si_scene_caption", CAPTION),
    sample("o0", "video_others", MAP, "Map?", "video"),
    sample("y0", "video_object_object", YESNO, "Is the chair left of the table?", "video"),
]


@pytest.fixture
def shards(tmp_path):
    write_samples(tmp_path / "shard-00000-of-00002.parquet", SAMPLES[:5])
    write_samples(tmp_path / "shard-00001-of-00002.parquet", SAMPLES[5:])
    return tmp_path


def test_rows_from_shards_and_prompt_snapshot(shards):
    rows = vst_synth.load_rows(str(shards))
    assert [r["id"] for r in rows] == [s.id for s in SAMPLES]
    assert rows[0]["answer"] == MC and rows[0]["skill"] == "si_depth_comparison"
    prompt = vst_synth.build_prompt(rows[0], "official")
    assert prompt.text == MC_QUESTION  # the placeholder goes: the model processor adds it
    assert prompt.images == [png()] and prompt.video is None
    video = vst_synth.build_prompt(rows[4], "official")
    assert (video.text, video.images, video.video) == ("How many chairs?", [], b"mp4 bytes")
    assert len(vst_synth.load_rows(str(shards), limit=3)) == 3
    (shards / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no .parquet shards"):
        vst_synth.load_rows(str(shards / "empty"))
    with pytest.raises(FileNotFoundError, match="missing.parquet: file not found"):
        vst_synth.load_rows(str(shards / "missing.parquet"))


def scored(answer, response, skill="skill"):
    return vst_synth.score_item({"id": "x", "skill": skill, "answer": answer}, response)


@pytest.mark.parametrize(
    "answer, response, score, parsed",
    [
        (MC, "B", 1.0, "B"),  # bare letter
        (MC, "(b).", 1.0, "B"),  # brackets, lower case, period
        (MC, "The answer is B", 1.0, "B"),  # stated
        (MC, "<think>A looks close but</think> B", 1.0, "B"),  # after </think> only
        (MC, "table", 1.0, "B"),  # the option's text names letter B
        (MC, "A", 0.0, "A"),  # wrong letter
        (MC, "C", 0.0, None),  # not an option letter (two options)
        (MC, "", 0.0, None),  # empty
        (YESNO, "Yes.", 1.0, "yes"),  # leading yes
        (YESNO, "no", 0.0, "no"),
        (YESNO, "I think yes", 1.0, "yes"),  # the only yes/no word
        (YESNO, "No or yes?", 0.0, "no"),  # a leading word wins over a later one
        (YESNO, "maybe", 0.0, None),
        (NUMBER, "2", 1.0, 2.0),  # exact
        (NUMBER, "2.7", 0.3, 2.7),  # VSI's float64 MRA: 0.7 / 2 = 0.35000000000000003 fails 0.35 (benchmarks.md §0.2)
        (NUMBER, "about 2.2 meters", 0.9, 2.2),  # lenient first number; 10 % off passes 9 of 10 thresholds
        (NUMBER, "<think>3 or 2</think> 2.0 m", 1.0, 2.0),  # thinking stripped first
        (NUMBER, "-1", 0.0, -1.0),  # negative: parsed, scores 0
        (NUMBER, "nan", 0.0, None),  # no number
        (ORDER, "C, A, B", 1.0, ["C", "A", "B"]),  # as VST answers
        (ORDER, "c, a, b", 1.0, ["C", "A", "B"]),  # lower case accepted when no exact letters are written
        (ORDER, "C > B > A", 0.0, ["C", "B", "A"]),  # wrong order
        (ORDER, "C, A", 0.0, ["C", "A"]),  # incomplete
        (ORDER, "none", 0.0, None),
        (OPTION_TEXT, "Chair.", 1.0, "chair"),  # equal ignoring case and punctuation
        (OPTION_TEXT, "The chair is closer", 1.0, "chair"),  # the only option mentioned
        (OPTION_TEXT, "table", 0.0, "table"),  # the other option
        (OPTION_TEXT, "chair, not the table", 0.0, None),  # both mentioned: unparsed
        (MAP, '{"chair": [[1, 2]], "table": [[3, 4]]}', 1.0, {"chair": [[1, 2]], "table": [[3, 4]]}),
        (MAP, 'Map: {"Chair": [[1, 2]], "table": [[0, 0]]}', 0.5, {"Chair": [[1, 2]], "table": [[0, 0]]}),  # 1 of 2 cells
        (MAP, "{not json}", 0.0, None),
    ],
)
def test_score_item(answer, response, score, parsed):
    item = scored(answer, response)
    assert (item.score, item.parsed["value"], item.unparsed) == (pytest.approx(score), parsed, parsed is None)


def test_boxes_and_captions():
    item = scored(BOXES, json.dumps([{"bbox_3d": CUBE_A, "label": "chair"}]))
    assert (item.score, item.unparsed) == (pytest.approx(2 / 3), False)  # F1: 1 hit, 1 prediction, 2 truths
    assert scored(BOXES, "two chairs").unparsed
    caption = scored(CAPTION, "A room.")
    assert caption.parsed["excluded"] and not caption.unparsed  # free text is not scored
    assert scored(json.dumps(MC), "B").score == 1.0  # the answer may come as the JSON string of the shard


RESPONSES = {
    "d0": "B",  # right
    "d1": "table",  # wrong
    "d2": "C, A, B",  # right: si_depth_comparison = 2/3
    "m0": "2.7",  # MRA 0.3
    "c0": "<think>one, two, three, four</think> 4",  # right
    "b0": json.dumps([{"bbox_3d": CUBE_A, "label": "chair"}]),  # one of two chairs
    "b1": "I see no table",  # unparsed: the table is missed
    "s0": "A room with a chair.",  # excluded
    "o0": '{"chair": [[1, 2]], "table": [[0, 0]]}',  # half the cells
    "y0": "Yes, it is.",  # right
}


def test_score_file_per_skill_and_overall(shards, tmp_path, capsys):
    if vst_synth.NAME not in BENCHMARKS:
        register_benchmark(vst_synth)
    rows = vst_synth.load_rows(str(shards))
    lines = [{**{k: v for k, v in r.items() if k != "images"}, "response": RESPONSES[r["id"]]} for r in rows]
    write_predictions(tmp_path / "predictions.jsonl", lines)
    result = score_file(vst_synth.NAME, tmp_path / "predictions.jsonl")
    print(json.dumps(result))
    # si_3d_detection AP@25 per label: chair TP of 2 truths -> 51/101; table missed -> 0; mean 51/202
    expected = {"si_3d_detection": 100 * 51 / 202, "si_depth_comparison": 200 / 3, "si_measurement": 30.0,
                "video_counting": 100.0, "video_object_object": 100.0, "video_others": 50.0}
    assert result["categories"] == {name: round(value, 2) for name, value in expected.items()}
    assert result["overall"] == round(sum(expected.values()) / 6, 2)
    assert (result["n"], result["n_unparsed"], result["benchmark"], result["protocol"]) == (10, 1, "vst-synth", "official")
