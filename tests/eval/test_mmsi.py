"""MMSI-Bench: official backtick/regex extraction, item-mean and circular aggregation, prompts, local rows."""

import json

import pytest
from PIL import Image

from vst.eval.benchmarks import mmsi
from vst.eval.benchmarks.registry import BENCHMARKS, ItemScore, register_benchmark
from vst.eval.predictions import score_file

QUESTION = "Which image was taken closer to the sofa?\nOptions: A: the first, B: the second, C: both, D: neither"
CAM_OBJ = "Positional Relationship (Cam.–Obj.)"
ROW = {"id": 7, "question_type": CAM_OBJ, "question": QUESTION, "answer": "B", "thought": ""}


@pytest.mark.parametrize(
    "response, parsed, score",
    [
        ("B", "B", 1.0),  # bare letter
        ("``B``", "B", 1.0),  # the requested double-backtick format
        ("`B`", "B", 1.0),  # single backticks
        ("(B)", "B", 1.0),  # brackets are word boundaries
        ("B.", "B", 1.0),  # trailing period
        (" B", "B", 1.0),  # leading space is fine (regex search, no tokenising)
        ("The answer is B", "B", 1.0),  # 'The' holds no A-D; B stands alone at the end
        ("Answer: B", "B", 1.0),  # the A of 'Answer' is inside a word
        ("I think it is D.", "D", 0.0),  # 'I' is not A-D; D is the answer given
        ("The answer is `C`", "C", 0.0),  # backtick content wins over the text
        ("A bike is nearer, so B", "B", 1.0),  # 'A bike' is an article, skipped by the lookahead
        ("b", None, 0.0),  # lower case never matches
        ("B because the sofa is larger", None, 0.0),  # 'B because': letter + space + word is rejected
        ("B\nbecause", None, 0.0),  # \s in the lookahead also matches the newline
        ("`A bike`", None, 0.0),  # inside backticks only 'A bike' is left, and it is rejected
        ("AB", None, 0.0),  # no word boundary between the letters
        ("", None, 0.0),  # empty response
        ("3.5 meters", None, 0.0),  # no letter at all
        ("<think>Compare A and C.</think> B", "C", 0.0),  # no think stripping: 'C.' is the first standalone letter
    ],
)
def test_official_extraction(response, parsed, score):
    item = mmsi.score_item(ROW, response, "official")
    assert (item.parsed, item.score, item.unparsed) == (parsed, score, parsed is None)
    assert item.category == "Positional Relationship (Cam.–Obj.)" and item.group is None


def test_hyphen_category_is_read_as_en_dash():
    row = {**ROW, "question_type": "Positional Relationship (Cam.-Obj.)"}
    assert mmsi.score_item(row, "B").category == "Positional Relationship (Cam.–Obj.)"


def test_prompt_snapshots():
    row = {**ROW, "images": ["a.jpg", "b.jpg"]}
    official = mmsi.build_prompt(row, "official")
    assert official.text == (
        "Which image was taken closer to the sofa?\nOptions: A: the first, B: the second, C: both, D: neither\n"
        "Answer with the option's letter from the given choices directly. Enclose the option's letter within ``."
    )
    assert official.images == ["a.jpg", "b.jpg"]
    # Qwen's custom MCQ prompt adds options + instruction only for A-D columns; MMSI rows have none.
    assert mmsi.build_prompt(row, "vst").text == (
        "Question: Which image was taken closer to the sofa?\n"
        "Options: A: the first, B: the second, C: both, D: neither"
    )
    rotated = mmsi.expand_rows([row], "circular")[1]
    assert mmsi.build_prompt(rotated, "circular").text == (
        "Which image was taken closer to the sofa?\nOptions: A: the second, B: both, C: neither, D: the first\n"
        "Answer with the option's letter from the given choices directly. Enclose the option's letter within ``."
    )


def test_rotations():
    rows = mmsi.expand_rows([ROW], "circular")
    # ABCD, BCDA, CDAB, DABC: 'the second' (B) moves to A, D, C.
    assert [row["answer"] for row in rows] == ["B", "A", "D", "C"]
    assert rows[0]["question"] == QUESTION and [row["circular_shift"] for row in rows] == [0, 1, 2, 3]
    assert mmsi.expand_rows([ROW], "official") == [ROW]
    with pytest.raises(ValueError, match="item 9"):
        mmsi.expand_rows([{**ROW, "id": 9, "question": "No options here"}], "circular")


def test_aggregate_item_means():
    items = [
        ItemScore("MSR", 1.0, "A", False),
        ItemScore("MSR", 0.0, None, True),
        ItemScore("Motion (Cam.)", 1.0, "C", False),
        ItemScore("Attribute (Meas.)", 0.0, "D", False),
    ]
    result = mmsi.aggregate(items, "official")
    assert result.overall == pytest.approx(50.0)  # 2 right of 4 items
    assert result.categories == {"Attribute (Meas.)": 0.0, "Motion (Cam.)": 100.0, "MSR": 50.0}  # official order


def test_circular_aggregate():
    first = {**ROW, "id": 1}
    second = {**ROW, "id": 2, "question_type": "MSR", "answer": "A"}
    rows = mmsi.expand_rows([first, second], "circular")
    # Item 1: every rotation answered right. Item 2: right 3 times, then a wrong letter.
    responses = ["``B``", "``A``", "``D``", "``C``", "A", "D", "C", "A"]
    items = [mmsi.score_item(row, response, "circular") for row, response in zip(rows, responses)]
    result = mmsi.aggregate(items, "circular")
    assert result.overall == pytest.approx(50.0)  # 1 of 2 items has all 4 rotations right
    assert result.categories == {"Positional Relationship (Cam.–Obj.)": 100.0, "MSR": 0.0}
    # The same answers scored without circular grouping: 7 of 8 rows right.
    assert mmsi.aggregate([mmsi.score_item(r, s) for r, s in zip(rows, responses)]).overall == pytest.approx(87.5)


def _folder(tmp_path, images=("img/7_0.png", "img/7_1.png")):
    (tmp_path / "img").mkdir()
    for name in ("img/7_0.png", "img/7_1.png"):
        Image.new("RGB", (8, 6), (200, 10, 10)).save(tmp_path / name)
    (tmp_path / "test.jsonl").write_text(json.dumps({**ROW, "images": list(images)}) + "\n")
    return tmp_path


def test_local_folder_rows(tmp_path):
    rows = mmsi.load_rows(str(_folder(tmp_path)))
    prompt = mmsi.build_prompt(rows[0], "official")
    assert prompt.images == [str(tmp_path / "img/7_0.png"), str(tmp_path / "img/7_1.png")]
    assert prompt.text.startswith("Which image was taken closer")


def test_missing_image_names_item_and_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"item 7: images: .*img/7_9\.png"):
        mmsi.load_rows(str(_folder(tmp_path, images=("img/7_0.png", "img/7_9.png"))))


def test_score_file(tmp_path):
    if mmsi.NAME not in BENCHMARKS:
        register_benchmark(mmsi)
    lines = [
        {**ROW, "id": 1, "response": "``B``"},  # right
        {**ROW, "id": 2, "question_type": "MSR", "answer": "C", "response": "C"},  # right
        {**ROW, "id": 3, "question_type": "MSR", "answer": "A", "response": "b"},  # unparsed
    ]
    path = tmp_path / "predictions.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = score_file("mmsi", path)
    print(json.dumps(result))
    assert result == {
        "benchmark": "mmsi",
        "protocol": "official",
        "overall": 66.67,
        "categories": {"Positional Relationship (Cam.–Obj.)": 100.0, "MSR": 50.0},
        "n": 3,
        "n_unparsed": 1,
    }
