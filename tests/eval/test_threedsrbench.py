"""3DSRBench: VLMEvalKit rule matching, official CircularEval grouping (flips apart), prompts, local rows."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.eval.benchmarks import threedsrbench
from vst.eval.benchmarks.registry import BENCHMARKS, register_benchmark
from vst.eval.predictions import score_file

TWO = {"qid": "Q2", "question": "Which object is higher in the 3D world space?", "A": "the lamp", "B": "the chair",
       "C": None, "D": None, "answer": "B", "category": "height_higher"}
FOUR = {"qid": "Q1", "question": "Where is the cup relative to the table?", "A": "above", "B": "below", "C": "left",
        "D": "right", "answer": "A", "category": "location_above"}


@pytest.mark.parametrize(
    "row, response, parsed",
    [
        (TWO, "B", "B"),  # bare letter
        (TWO, "(B)", "B"),  # brackets split like spaces
        (TWO, "B.", "B"),  # so does the period
        (TWO, " B", "B"),  # surrounding space
        (TWO, "The answer is B", "B"),  # exactly one option letter among the tokens
        (TWO, "b", None),  # letters are case-sensitive and 'b' is no option text
        (TWO, "the chair", "B"),  # no letter: the one option text found in the response
        (TWO, "The Chair is higher.", "B"),  # option texts are matched lower-cased
        (TWO, "A chair is higher than B", None),  # two option letters (A as an article): ambiguous
        (TWO, "C", None),  # C is not an option of a 2-option question
        (TWO, "Z", None),  # VLMEvalKit's explicit 'no answer'
        (TWO, "", None),  # empty response
        (TWO, "3.5 meters", None),  # nothing to match
        (FOUR, "D", "D"),  # a 4-option question
        (FOUR, "above or left?", None),  # two option texts in the response
    ],
)
def test_rule_matching(row, response, parsed):
    item = threedsrbench.score_item(row, response, "official")
    assert (item.parsed, item.unparsed) == (parsed, parsed is None)
    assert item.score == float(parsed == row["answer"])


@pytest.mark.parametrize(
    "qid, official, flip, flip_circular",
    [
        ("VIN6MS3J", "VIN6MS3J", "VIN6MS3J", "VIN6MS3J"),
        ("VIN6MS3J-1", "VIN6MS3J", "VIN6MS3J-1", "VIN6MS3J"),  # a rotation joins its base question
        ("VIN6MS3J-flip", "VIN6MS3J-flip", "VIN6MS3J", "VIN6MS3J"),  # officially the flip is its own group
        ("VIN6MS3J-flip-3", "VIN6MS3J-flip", "VIN6MS3J-3", "VIN6MS3J"),
    ],
)
def test_group_keys(qid, official, flip, flip_circular):
    assert threedsrbench.group_key(qid, "official") == official
    assert threedsrbench.group_key(qid, "flip") == flip
    assert threedsrbench.group_key(qid, "flip_circular") == flip_circular
    assert threedsrbench.group_key(qid, "vst") is None


def _circular_rows():
    """Q1 (4 options, location_above): 4 rotations + 4 flipped rotations; Q2 (2 options, height_higher): 2 + 2."""
    rows = []
    for base, suffixes in ((FOUR, ("", "-1", "-2", "-3")), (TWO, ("", "-1"))):
        for flip in ("", "-flip"):
            rows += [{**base, "qid": base["qid"] + flip + suffix} for suffix in suffixes]
    return rows


# Every row answered right except Q1-flip-2 (wrong letter) and Q2-flip-1 (no answer found).
WRONG = {"Q1-flip-2": "C", "Q2-flip-1": "I cannot tell"}


def _responses(rows):
    return [WRONG.get(row["qid"], f"({row['answer']})") for row in rows]


def _aggregate(protocol):
    rows = _circular_rows()
    items = [threedsrbench.score_item(row, response, protocol) for row, response in zip(rows, _responses(rows))]
    return threedsrbench.aggregate(items, protocol)


def test_official_circular_aggregate():
    # Groups Q1 (4/4 right) = 1, Q1-flip (3/4) = 0, Q2 (2/2) = 1, Q2-flip (1/2) = 0 -> 2 of 4.
    result = _aggregate("official")
    assert result.overall == pytest.approx(50.0)
    assert result.categories == {"height": 50.0, "location": 50.0, "location_above": 50.0, "height_higher": 50.0}


def test_vst_vanilla_aggregate():
    # 10 of 12 rows right; location 7 of 8, height 3 of 4.
    result = _aggregate("vst")
    assert result.overall == pytest.approx(100 * 10 / 12)
    assert result.categories == pytest.approx(
        {"height": 75.0, "location": 87.5, "location_above": 87.5, "height_higher": 75.0}
    )


def test_flip_aggregates():
    # flip pairs: Q1, Q1-1, Q1-2 (x), Q1-3, Q2, Q2-1 (x) -> 4 of 6; flip_circular: Q1 (x), Q2 (x) -> 0.
    assert _aggregate("flip").overall == pytest.approx(100 * 4 / 6)
    assert _aggregate("flip_circular").overall == 0.0


def test_prompt_snapshots():
    row = {**TWO, "image": b"png bytes"}
    official = threedsrbench.build_prompt(row, "official")
    assert official.text == (
        "Question: Which object is higher in the 3D world space?\nOptions:\nA. the lamp\nB. the chair\n"
        "Please select the correct answer from the options above. \n"
    )
    assert official.images == [b"png bytes"]
    assert threedsrbench.build_prompt(row, "vst").text == (
        "Question: Which object is higher in the 3D world space?\nOptions:\nA. the lamp\nB. the chair\n"
        "Please select the correct answer from the options above."
    )
    with pytest.raises(ValueError, match="item Q2"):
        threedsrbench.build_prompt(TWO, "official")


def _folder(tmp_path, image="coco/000001.jpg"):
    (tmp_path / "coco").mkdir()
    Image.new("RGB", (8, 6), (10, 200, 10)).save(tmp_path / "coco/000001.jpg")
    rows = [{**row, "index": i, "image": image} for i, row in enumerate(_circular_rows()[:2])]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "3dsrbench_v1_circular.parquet")
    return tmp_path


def test_local_folder_rows(tmp_path):
    rows = threedsrbench.load_rows(str(_folder(tmp_path)))
    assert [row["qid"] for row in rows] == ["Q1", "Q1-1"]
    prompt = threedsrbench.build_prompt(rows[1], "official")
    assert prompt.images == [str(tmp_path / "coco/000001.jpg")]
    assert prompt.text.startswith("Question: Where is the cup relative to the table?\nOptions:\nA. above\n")


TSV_COLUMNS = ("index", "qid", "question", "A", "B", "C", "D", "answer", "category", "image", "image_source", "image_url")


def write_circular_tsv(folder, rows=None):
    """`3dsrbench_v1_vlmevalkit_circular.tsv` as the HF dataset repo ccvl/3DSRBench publishes it (and VLMEvalKit
    reads it, vlmeval/dataset/image_mcq.py): a header, tab-separated, the image base64-encoded, empty C/D cells on
    2-option questions, qids with rotation and flip suffixes."""
    import base64
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 10)).save(buffer, format="JPEG")
    picture = base64.b64encode(buffer.getvalue()).decode()
    lines = ["\t".join(TSV_COLUMNS)]
    for index, row in enumerate(rows or _circular_rows()):
        values = {**row, "index": index, "image": picture, "image_source": "MS-COCO",
                  "image_url": "http://images.cocodataset.org/val2017/000000000001.jpg"}
        lines.append("\t".join("" if values.get(c) is None else str(values[c]) for c in TSV_COLUMNS))
    path = folder / threedsrbench.CIRCULAR_TSV
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_published_circular_tsv_loads_locally_and_from_the_hub(tmp_path, monkeypatch):
    path = write_circular_tsv(tmp_path)
    rows = threedsrbench.load_rows(str(tmp_path))
    assert [row["qid"] for row in rows] == [row["qid"] for row in _circular_rows()]
    assert rows[8]["C"] is None and rows[8]["D"] is None and rows[8]["answer"] == "B"  # Q2: 2 options
    prompt = threedsrbench.build_prompt(rows[1], "official")
    assert Image.open(__import__("io").BytesIO(prompt.images[0])).size == (8, 6)
    assert threedsrbench.aggregate([threedsrbench.score_item(r, r["answer"], "official") for r in rows],
                                   "official").overall == 100.0

    import huggingface_hub

    asked = {}

    def fake_download(repo_id, filename, repo_type=None, revision=None, **kwargs):
        asked.update(repo_id=repo_id, filename=filename, repo_type=repo_type, revision=revision)
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    assert len(threedsrbench.load_rows("ccvl/3DSRBench", revision="abc123", limit=3)) == 3
    assert asked == {"repo_id": "ccvl/3DSRBench", "filename": "3dsrbench_v1_vlmevalkit_circular.tsv",
                     "repo_type": "dataset", "revision": "abc123"}


def test_the_base_question_parquet_is_refused_with_the_reason(tmp_path):
    """The repo's `3dsrbench_v1-00000-of-00001.parquet` has index, question, A-D, answer, category, image_source and
    image_url: no qid and no image, so nothing can be scored circularly."""
    rows = [{k: v for k, v in FOUR.items() if k != "qid"} | {"index": 0, "image_source": "MS-COCO", "image_url": "u"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "3dsrbench_v1-00000-of-00001.parquet")
    with pytest.raises(ValueError, match=r"column\(s\) qid, image missing: not 3DSRBench's circular layout"):
        threedsrbench.load_rows(str(tmp_path))


def test_missing_image_names_item_and_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"item Q1: image: .*coco/missing\.jpg"):
        threedsrbench.load_rows(str(_folder(tmp_path, image="coco/missing.jpg")))


def test_score_file(tmp_path):
    if threedsrbench.NAME not in BENCHMARKS:
        register_benchmark(threedsrbench)
    rows = _circular_rows()
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps({**row, "response": r}) + "\n" for row, r in zip(rows, _responses(rows))))
    result = score_file("3dsrbench", path)
    print(json.dumps(result))
    assert result == {
        "benchmark": "3dsrbench",
        "protocol": "official",
        "overall": 50.0,
        "categories": {"height": 50.0, "location": 50.0, "location_above": 50.0, "height_higher": 50.0},
        "n": 12,
        "n_unparsed": 1,
    }
    assert score_file("3dsrbench", path, "vst")["overall"] == 83.33
