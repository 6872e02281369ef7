"""CV-Bench: Cambrian's official extraction and the (2D + 3D)/2 combination, VST's VLMEvalKit protocol, local rows."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.eval.benchmarks import cvbench
from vst.eval.benchmarks.registry import BENCHMARKS, register_benchmark
from vst.eval.predictions import score_file, write_predictions


def make_row(idx, task, source, answer="(C)", choices=("3", "2", "1", "0"), image="img/a.png"):
    kind = "3D" if source == "Omni3D" else "2D"
    question = f"Question {idx}?"
    listed = "\n".join(f"({letter}) {choice}" for letter, choice in zip("ABCD", choices))
    return {
        "idx": idx, "type": kind, "task": task, "source": source, "question": question, "choices": list(choices),
        "answer": answer, "prompt": f"{question} Select from the following choices.\n{listed}", "image": image,
    }


COUNT = make_row(0, "Count", "COCO")  # truth (C) = "1"


@pytest.mark.parametrize(
    "response, score, parsed",
    [
        ("C", 1.0, "C"),  # bare letter
        ("(C)", 1.0, "C"),  # brackets are stripped
        ("C.", 1.0, "C"),  # trailing '.' is stripped
        ("(C).", 1.0, "C"),  # '.' first, then '(' and ')'
        (" c", 1.0, "C"),  # lower-cased and stripped
        ("The answer is C", 1.0, "C"),  # text after "answer is"
        ("The answer is (C).", 1.0, "C"),  # after "answer is": " (c)." -> "c"
        ("The answer is: (C)", 0.0, None),  # after "answer is": ": (c)" keeps ':' first -> ":"
        ("Answer: C", 1.0, "C"),  # text after "answer:"
        ("C because the ball is alone", 1.0, "C"),  # a long answer keeps its first character
        ("C\nbecause", 1.0, "C"),  # first character, newline or not
        ("There is 1 ball", 0.0, None),  # first character "t": a sentence without "answer" is wrong
        ("Answer: The lamp (C)", 0.0, None),  # after "answer:" -> "the lamp (c" -> "t"
        ("B", 0.0, "B"),  # a wrong option letter is parsed but wrong
        ("1", 0.0, None),  # the option text does not count for 2D sources
        ("", 0.0, None),  # empty
        ("<think>it is C</think> C", 0.0, None),  # no think stripping: first character "<"
        ("3.5 meters", 0.0, None),  # junk never raises
    ],
)
def test_official_extraction(response, score, parsed):
    item = cvbench.score_item(COUNT, response, "official")
    assert (item.score, item.parsed, item.unparsed) == (score, parsed, parsed is None)
    assert (item.category, item.source) == ("Count", "COCO")


def test_official_omni3d_accepts_the_option_text_and_strips_colon_comma():
    row = make_row(1, "Depth", "Omni3D", answer="(B)", choices=("1", "2"))
    assert cvbench.score_item(row, "2", "official").score == 1.0  # equals the correct option's text (Omni3D only)
    assert cvbench.score_item(row, "1", "official").score == 0.0  # the other option's text
    assert cvbench.score_item(row, "B,", "official").parsed == "B"  # omni strips trailing ',' too
    assert cvbench.score_item({**row, "source": "COCO"}, "2", "official").score == 0.0  # 2D: letters only


@pytest.mark.parametrize(
    "response, parsed",
    [
        ("C", "C"),  # bare letter
        ("(C)", "C"),  # brackets are separators
        ("C.", "C"),  # '.' is a separator
        ("The answer is C", "C"),  # the only capital option letter among the tokens
        ("c", None),  # letters are case-sensitive; "c" is no option text either
        ("A ball, answer C", None),  # two option letters ("A" as an article): then option texts, none unique
        ("There is 1 ball", "C"),  # no letter: the only option text ("1") inside the response
        ("3 or 2", None),  # two option texts: no answer
        ("Cannot determine the answer", None),  # a VLMEvalKit refusal
        ("Z", None),  # 'Z' means no answer
        ("", None),  # empty
    ],
)
def test_vst_vlmevalkit_matching(response, parsed):
    item = cvbench.score_item(COUNT, response, "vst")
    assert (item.parsed, item.unparsed, item.score) == (parsed, parsed is None, float(parsed == "C"))


def test_aggregate_averages_sources_then_2d_and_3d():
    items = [
        cvbench.score_item(make_row(0, "Count", "ADE20K"), "C", "official"),  # ADE20K 1/2 -> 50
        cvbench.score_item(make_row(1, "Relation", "ADE20K"), "A", "official"),
        cvbench.score_item(make_row(2, "Count", "COCO"), "C", "official"),  # COCO 1/1 -> 100
        cvbench.score_item(make_row(3, "Depth", "Omni3D"), "C", "official"),  # Omni3D 1/4 -> 25
        cvbench.score_item(make_row(4, "Depth", "Omni3D"), "A", "official"),
        cvbench.score_item(make_row(5, "Distance", "Omni3D"), "A", "official"),
        cvbench.score_item(make_row(6, "Distance", "Omni3D"), "A", "official"),
    ]
    result = cvbench.aggregate(items, "official")
    # 2D = (50 + 100) / 2 = 75; 3D = 25; overall = (75 + 25) / 2 = 50 (the item mean would be 3/7 = 42.86).
    assert result.overall == pytest.approx(50.0)
    assert result.categories == pytest.approx(
        {"Count": 100.0, "Relation": 0.0, "Depth": 50.0, "Distance": 0.0, "2D": 75.0, "3D": 25.0,
         "ADE20K": 50.0, "COCO": 100.0, "Omni3D": 25.0}  # the per-source accuracies the official script prints
    )
    assert list(result.categories) == [name for name in cvbench.CATEGORIES]
    assert cvbench.aggregate(items, "vst").overall == pytest.approx(50.0)  # same combination for VST's number


def test_prompt_snapshots():
    official = cvbench.build_prompt(COUNT, "official")
    assert official.text == (
        "Question 0? Select from the following choices.\n(A) 3\n(B) 2\n(C) 1\n(D) 0\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert official.images == ["img/a.png"]
    assert cvbench.build_prompt(COUNT, "vst").text == (
        "Question: Question 0?\nOptions:\nA. 3\nB. 2\nC. 1\nD. 0\n"
        "Please select the correct answer from the options above."
    )
    with pytest.raises(ValueError, match="unknown protocol"):
        cvbench.build_prompt(COUNT, "lmms_eval")


def png_bytes(color):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_local_jsonl_rows_resolve_image_paths(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(png_bytes("red"))
    rows = [make_row(0, "Count", "ADE20K"), make_row(1, "Depth", "Omni3D")]
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    loaded = cvbench.load_rows(str(tmp_path))
    assert [row["idx"] for row in loaded] == [0, 1]
    prompt = cvbench.build_prompt(loaded[1], "official")
    assert prompt.images == [str(tmp_path / "img" / "a.png")]
    assert Image.open(prompt.images[0]).size == (8, 6)
    assert len(cvbench.load_rows(str(tmp_path), limit=1)) == 1

    (tmp_path / "test.jsonl").write_text(json.dumps(make_row(7, "Count", "COCO", image="img/missing.png")) + "\n")
    with pytest.raises(FileNotFoundError, match=r"item 7: image: image file not found: .*img/missing.png"):
        cvbench.load_rows(str(tmp_path))


def test_official_repo_jsonl_names_its_image_in_filename(tmp_path):
    """The layout of the official repo (huggingface.co/datasets/nyu-visionx/CV-Bench, `test.jsonl` beside `img/`):
    each line names its picture in `filename`, e.g. "img/2D/count/ade20k_10.png", and has no `image` field; it also
    carries `source_dataset`, `source_filename`, `target_class`, `target_size` and `bbox`."""
    (tmp_path / "img" / "2D" / "count").mkdir(parents=True)
    (tmp_path / "img" / "2D" / "count" / "ade20k_10.png").write_bytes(png_bytes("red"))
    row = make_row(0, "Count", "ADE20K")
    del row["image"]
    row.update({"filename": "img/2D/count/ade20k_10.png", "source_dataset": "ADE20K", "source_filename": "x.jpg",
                "target_class": "chair", "target_size": None, "bbox": None})
    (tmp_path / "test.jsonl").write_text(json.dumps(row) + "\n")
    (loaded,) = cvbench.load_rows(str(tmp_path))
    assert cvbench.build_prompt(loaded, "official").images == [str(tmp_path / "img/2D/count/ade20k_10.png")]
    (tmp_path / "test.jsonl").write_text(json.dumps({**row, "filename": "../outside.png"}) + "\n")
    with pytest.raises(ValueError, match=r"item 0: filename: must be a relative path inside"):
        cvbench.load_rows(str(tmp_path))


def test_local_snapshot_reads_test_parquet_with_embedded_images(tmp_path):
    row = {**make_row(3, "Relation", "COCO"), "image": {"bytes": png_bytes("blue"), "path": "x.png"}}
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "test.parquet")
    pq.write_table(pa.Table.from_pylist([row, row]), tmp_path / "test_2d.parquet")  # another split beside it
    loaded = cvbench.load_rows(str(tmp_path))
    assert len(loaded) == 1
    image = cvbench.build_prompt(loaded[0], "vst").images[0]
    assert Image.open(io.BytesIO(image)).getpixel((0, 0)) == (0, 0, 255)


def test_score_file_prints_the_contract(tmp_path):
    if cvbench.NAME not in BENCHMARKS:
        register_benchmark(cvbench)
    lines = [
        {**make_row(0, "Count", "ADE20K"), "response": "(C)"},
        {**make_row(1, "Relation", "COCO"), "response": "I cannot tell"},  # "i": unparsed
        {**make_row(2, "Depth", "Omni3D"), "response": "The answer is C."},
        {**make_row(3, "Distance", "Omni3D"), "response": "B"},
    ]
    for line in lines:
        del line["image"]  # predictions omit media
    path = tmp_path / "predictions.jsonl"
    write_predictions(path, lines)
    result = score_file("cvbench", path)
    print(json.dumps(result))
    # 2D = (100 + 0) / 2 = 50; 3D = 1/2 = 50; overall 50.
    assert result == {
        "benchmark": "cvbench", "protocol": "official", "overall": 50.0,
        "categories": {"Count": 100.0, "Relation": 0.0, "Depth": 100.0, "Distance": 0.0, "2D": 50.0, "3D": 50.0,
                       "ADE20K": 100.0, "COCO": 0.0, "Omni3D": 50.0},
        "n": 4, "n_unparsed": 1,
    }
