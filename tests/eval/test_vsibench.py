"""VSI-Bench (and -Debiased): official token scoring and MRA by hand, aggregation, prompts, local rows, score_file."""

import json

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vst.eval.benchmarks import vsibench, vsibench_debiased
from vst.eval.benchmarks.registry import BENCHMARKS, ItemScore, register_benchmark
from vst.common.parsing import MRA_THRESHOLDS
from vst.eval.predictions import score_file, write_predictions

for _module in (vsibench, vsibench_debiased):
    if _module.NAME not in BENCHMARKS:
        register_benchmark(_module)

OPTIONS = ["A. left", "B. right", "C. back", "D. front"]
# Synthetic rows in the native schema, one per question_type, each with a response and its official score by hand.
ROWS = [
    (dict(id=0, dataset="scannet", scene_name="scene0000_00", question_type="object_counting",
          question="How many chair(s) are in this room?", ground_truth="4", options=None), "4", 1.0),
    (dict(id=1, dataset="scannet", scene_name="scene0000_00", question_type="object_abs_distance",
          question="What is the distance between the sofa and the lamp (in meters)?", ground_truth="2", options=None),
     "2.7", 0.3),  # 0.7/2 = 0.35000000000000003 > 1 - 0.65: only 0.50, 0.55, 0.60 pass
    (dict(id=2, dataset="arkitscenes", scene_name="41069025", question_type="object_size_estimation",
          question="What is the length of the longest dimension of the table (in centimeters)?", ground_truth="80",
          options=None), "90", 0.8),  # 10/80 = 0.125 <= 1 - t for t = 0.50 ... 0.85 (8 of 10)
    (dict(id=3, dataset="arkitscenes", scene_name="41069025", question_type="room_size_estimation",
          question="What is the size of this room (in square meters)?", ground_truth="25", options=None),
     "about 22 square meters", 0.0),  # first token "about" is not a float
    (dict(id=4, dataset="scannetpp", scene_name="0a5c013435", question_type="object_rel_distance",
          question="Which object is closest to the bed?", ground_truth="C", options=OPTIONS), "C.", 1.0),
    (dict(id=5, dataset="scannetpp", scene_name="0a5c013435", question_type="object_rel_direction_easy",
          question="Standing by the bed facing the desk, is the door to my left or right?", ground_truth="A",
          options=["A. left", "B. right"]), "a", 1.0),
    (dict(id=6, dataset="scannetpp", scene_name="0a5c013435", question_type="object_rel_direction_medium",
          question="Standing by the bed facing the desk, is the door to my front-left or back-right?",
          ground_truth="B", options=["A. front-left", "B. back-right"]), "(B)", 0.0),
    (dict(id=7, dataset="scannet", scene_name="scene0000_00", question_type="object_rel_direction_hard",
          question="Standing by the sofa facing the lamp, which quadrant holds the tv?", ground_truth="C",
          options=OPTIONS), "C", 1.0),
    (dict(id=8, dataset="scannet", scene_name="scene0000_00", question_type="route_planning",
          question="How do I walk from the sofa to the door?", ground_truth="D", options=OPTIONS), "A", 0.0),
    (dict(id=9, dataset="arkitscenes", scene_name="41069025", question_type="obj_appearance_order",
          question="In which order do the objects first appear in the video?", ground_truth="B", options=OPTIONS),
     "B", 1.0),
]
NA_ROW, MCQ_ROW = ROWS[1][0], ROWS[7][0]


def test_threshold_count_and_float_artefact():
    assert len(MRA_THRESHOLDS) == 10  # int((0.95-0.5)/0.05 + 2) = int(10.999...) = 10; "+1" would give 9
    assert vsibench.score_item(NA_ROW, "2.7").score == pytest.approx(0.3)  # not 0.4: 0.7/2 is 0.35000000000000003


@pytest.mark.parametrize(
    "response, score, parsed",
    [
        ("2", 1.0, 2.0),  # exact
        ("2.", 1.0, 2.0),  # trailing '.' stripped
        ("2.0 meters", 1.0, 2.0),  # only the first space-separated token counts
        ("2\n", 1.0, 2.0),  # the token "2\n" is stripped after the split
        ("1.5", 0.6, 1.5),  # 0.5/2 = 0.25 <= 1 - t for t = 0.50 ... 0.75 (6 of 10; 1 - 0.75 is exactly 0.25)
        ("1e1", 0.0, 10.0),  # float() reads exponents; 8/2 = 4 fails every threshold
        ("The answer is 2", 0.0, None),  # officially strict: "The" is not a float
        (" 2", 0.0, None),  # leading space: the first token is ""
        ("2\nmeters", 0.0, None),  # split is on ' ' only, so "2\nmeters" is one token
        ("3,5", 0.0, None),  # comma decimals fail float()
        ("nan", 0.0, None),  # non-finite -> 0
        ("inf", 0.0, None),  # non-finite -> 0
        ("-1", 0.0, -1.0),  # parsed, but a negative prediction scores 0
        ("", 0.0, None),  # empty response
        ("<think>about 2 m</think> 2", 0.0, None),  # the official rule does not strip <think>
    ],
)
def test_numeric_official(response, score, parsed):
    item = vsibench.score_item(NA_ROW, response, "official")
    assert (item.score, item.parsed, item.unparsed) == (pytest.approx(score), parsed, parsed is None)
    assert item.category == "object_abs_distance"


@pytest.mark.parametrize(
    "response, score, parsed",
    [
        ("The answer is 2", 1.0, 2.0),  # first number anywhere
        ("about 1.5 meters", 0.6, 1.5),  # scores as "1.5" does officially
        ("3,5", 0.1, 3.0),  # "3" is the first number: 1/2 = 0.5 <= 1 - t for t = 0.50 only
        ("<think>about 1 m</think> 2", 0.1, 1.0),  # the <think> block's first number wins: 1 vs 2 as above
        ("two meters", 0.0, None),  # number words are not read by first_number (upstream reads them)
    ],
)
def test_numeric_lmms_eval(response, score, parsed):
    item = vsibench.score_item(NA_ROW, response, "lmms_eval")
    assert (item.score, item.parsed, item.unparsed) == (pytest.approx(score), parsed, parsed is None)


@pytest.mark.parametrize(
    "response, score, parsed",
    [
        ("C", 1.0, "C"),  # bare letter
        ("c", 1.0, "C"),  # case-insensitive
        ("C.", 1.0, "C"),  # trailing '.' stripped
        ("C. back", 1.0, "C"),  # first token "C."
        ("C because the tv is behind", 1.0, "C"),  # first token only
        ("A", 0.0, "A"),  # wrong letter, still parsed
        ("(C)", 0.0, None),  # brackets are kept in the token
        (" C", 0.0, None),  # leading space: first token ""
        ("C,", 0.0, None),  # only '.' is stripped
        ("C\nbecause", 0.0, None),  # newline does not split
        ("The answer is C", 0.0, None),  # first token "The"
        ("<think>C</think> C", 0.0, None),  # no <think> stripping
        ("", 0.0, None),  # empty response
    ],
)
def test_multiple_choice_every_protocol(response, score, parsed):
    for protocol in vsibench.PROTOCOLS:
        item = vsibench.score_item(MCQ_ROW, response, protocol)
        assert (item.score, item.parsed, item.unparsed) == (score, parsed, parsed is None), protocol


def test_score_item_never_raises_on_junk():
    for response in ["\x00", "????", "A" * 10_000, "1/2", "-", ".", "...", "\n\n", None]:
        for row, _, _ in ROWS:
            for protocol in vsibench.PROTOCOLS:
                assert 0.0 <= vsibench.score_item(row, response, protocol).score <= 1.0


def test_aggregate_macro_over_rel_direction_levels():
    def items(question_type, scores):
        return [ItemScore(category=question_type, score=s, parsed=None, unparsed=False) for s in scores]

    result = vsibench.aggregate(
        items("object_counting", [1.0, 0.1])  # 0.55
        + items("object_rel_direction_easy", [1.0])  # 1
        + items("object_rel_direction_medium", [0.0])  # 0
        + items("object_rel_direction_hard", [1.0, 0.0, 0.0])  # 1/3; rel_direction = (1 + 0 + 1/3)/3 = 4/9, not 2/5
        + items("route_planning", [0.0])
    )
    assert result.categories == pytest.approx({"object_counting": 55.0, "object_rel_direction": 400 / 9,
                                               "route_planning": 0.0})
    assert list(result.categories) == ["object_counting", "object_rel_direction", "route_planning"]  # report order
    assert result.overall == pytest.approx((55.0 + 400 / 9 + 0.0) / 3)


def test_aggregate_reproduces_vst_7b_rl_overall():
    # spec §9: VST-7B-RL sub-scores; the overall (61.2 reported) is their unweighted mean, 489.2 / 8 = 61.15.
    reported = dict(zip(vsibench.CATEGORIES, [71.6, 43.8, 75.5, 69.2, 60.0, 55.6, 44.3, 69.2]))
    types = {name: [name] for name in vsibench.CATEGORIES}
    types["object_rel_direction"] = [f"object_rel_direction_{level}" for level in ("easy", "medium", "hard")]
    items = [ItemScore(category=question_type, score=value / 100, parsed=None, unparsed=False)
             for name, value in reported.items() for question_type in types[name]]
    result = vsibench.aggregate(items)
    assert result.categories == pytest.approx(reported)
    assert result.overall == pytest.approx(61.15)


def test_prompt_snapshots(tmp_path):
    na = dict(NA_ROW, _media_root=str(tmp_path))
    mcq = dict(ROWS[5][0], _media_root=str(tmp_path))
    for row in (na, mcq):
        _write_video(tmp_path / row["dataset"] / f"{row['scene_name']}.mp4")
    na_text = ("These are frames of a video.\n"
               "What is the distance between the sofa and the lamp (in meters)?\n"
               "Please answer the question using a single word or phrase.")
    mcq_text = ("These are frames of a video.\n"
                "Standing by the bed facing the desk, is the door to my left or right?\n"
                "Options:\n"
                "A. left\n"
                "B. right\n"
                "Answer with the option's letter from the given choices directly.")
    system = {"official": None, "vst": "You are a helpful assistant.", "lmms_eval": "You are a helpful assistant."}
    for protocol in vsibench.PROTOCOLS:
        for row, text in ((na, na_text), (mcq, mcq_text)):
            prompt = vsibench.build_prompt(row, protocol)
            assert (prompt.text, prompt.system, prompt.images) == (text, system[protocol], [])
            assert prompt.video == str(tmp_path / row["dataset"] / f"{row['scene_name']}.mp4")


def test_frame_budget_constants():
    vst = vsibench.MEDIA_BUDGET["vst"]  # VST's eval_vsibench.py defaults (spec §2.4)
    assert (vst.video_fps, vst.video_total_pixels, vst.video_min_pixels) == (4.0, 8192 * 28 * 28, 16 * 28 * 28)
    assert vsibench.MEDIA_BUDGET["official"].video_fps == 2.0  # qwen-vl-utils default
    assert set(vsibench.MEDIA_BUDGET) == set(vsibench.GENERATION) == set(vsibench.PROTOCOLS)


def _write_video(path, frames=8, width=64, height=48):
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            pixels = np.full((height, width, 3), index * 30, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode())


def _write_folder(folder, parquet=False):
    rows = [row for row, _, _ in ROWS]
    if parquet:
        pq.write_table(pa.Table.from_pylist(rows), folder / "test.parquet")
    else:
        (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    for dataset, scene in {(row["dataset"], row["scene_name"]) for row in rows}:
        _write_video(folder / dataset / f"{scene}.mp4")


@pytest.mark.parametrize("parquet", [False, True])
def test_local_folder_rows_and_prompts(tmp_path, parquet):
    _write_folder(tmp_path, parquet)
    rows = vsibench.load_rows(str(tmp_path))
    assert [{k: row[k] for k in vsibench.ROW_FIELDS} for row in rows] == [row for row, _, _ in ROWS]
    for row in rows:
        prompt = vsibench.build_prompt(row)
        with av.open(prompt.video) as container:
            assert container.streams.video[0].frames in (0, 8)  # mpeg4 in mp4 may not record a frame count
        assert prompt.text.startswith("These are frames of a video.\n")


def test_a_local_snapshot_serves_each_config_its_own_file(tmp_path):
    """A snapshot of huggingface.co/datasets/nyu-visionx/VSI-Bench holds the full set (`test.jsonl`) beside the
    debiased and pruned subsets (`test_debiased.parquet`, `test_pruned.parquet`): vsibench reads the full set,
    vsibench-debiased only its subset, and without that file it says so instead of silently reading the full set."""
    _write_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"no rows file \(looked for test_debiased.parquet, test_debiased.jsonl\)"):
        vsibench_debiased.load_rows(str(tmp_path))
    subset = [row for row, _, _ in ROWS][1:3]
    pq.write_table(pa.Table.from_pylist(subset), tmp_path / "test_debiased.parquet")
    pq.write_table(pa.Table.from_pylist(subset[:1]), tmp_path / "test_pruned.parquet")
    assert len(vsibench.load_rows(str(tmp_path))) == len(ROWS)
    assert [row["id"] for row in vsibench_debiased.load_rows(str(tmp_path))] == [row["id"] for row in subset]


def test_missing_video_names_item_and_path(tmp_path):
    _write_folder(tmp_path)
    row = vsibench.load_rows(str(tmp_path))[0]
    row["scene_name"] = "scene0999_00"
    with pytest.raises(FileNotFoundError, match=r"vsibench item 0: video not found: .*scannet/scene0999_00\.mp4"):
        vsibench.build_prompt(row)


def test_unknown_question_type_is_an_error(tmp_path):
    bad = dict(ROWS[0][0], question_type="object_colour")
    (tmp_path / "test.jsonl").write_text(json.dumps(bad) + "\n")
    with pytest.raises(ValueError, match="item 0: question_type: unknown 'object_colour'"):
        vsibench.load_rows(str(tmp_path))


@pytest.mark.parametrize("module", [vsibench, vsibench_debiased])
def test_score_file_contract(tmp_path, module):
    path = tmp_path / "predictions.jsonl"
    write_predictions(path, [dict(row, response=response, benchmark=module.NAME) for row, response, _ in ROWS])
    for row, response, score in ROWS:
        assert module.score_item(row, response).score == pytest.approx(score)
    # official: rel_direction = (1 + 0 + 1)/3; overall = (100+30+80+0+100+66.67+0+100)/8 = 476.67/8
    official = score_file(module.NAME, path, "official")
    assert official == {
        "benchmark": module.NAME, "protocol": "official", "overall": 59.58,
        "categories": {"object_counting": 100.0, "object_abs_distance": 30.0, "object_size_estimation": 80.0,
                       "room_size_estimation": 0.0, "object_rel_distance": 100.0, "object_rel_direction": 66.67,
                       "route_planning": 0.0, "obj_appearance_order": 100.0},
        "n": 10, "n_unparsed": 2,  # "about 22 square meters" and "(B)"
    }
    assert score_file(module.NAME, path, "vst") == dict(official, protocol="vst")
    # lmms_eval reads 22 from the room answer: 3/25 = 0.12 <= 1 - t for t = 0.50 ... 0.85 -> 80; (476.67 + 80)/8
    lenient = score_file(module.NAME, path, "lmms_eval")
    assert lenient["overall"] == 69.58
    assert (lenient["categories"]["room_size_estimation"], lenient["n_unparsed"]) == (80.0, 1)
