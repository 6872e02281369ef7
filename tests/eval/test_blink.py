"""BLINK val: the official answer analysis without its GPT fallback, macro vs micro overall, multi-image rows."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.eval.benchmarks import blink
from vst.eval.benchmarks.registry import BENCHMARKS, register_benchmark
from vst.eval.predictions import score_file, write_predictions


def make_row(subtask, n, answer="(B)", choices=("point A", "point B"), images=("a.png",)):
    question = f"Which is right in {subtask}?"
    listed = "\n".join(f"({letter}) {choice}" for letter, choice in zip("ABCDE", choices))
    row = {
        "idx": f"val_{subtask}_{n}", "sub_task": subtask.replace("_", " "), "question": question,
        "choices": list(choices), "answer": answer,
        "prompt": f"{question}\nSelect from the following choices.\n{listed}",
        "explanation": "",
    }
    return {**row, **{name: (images[i] if i < len(images) else None) for i, name in enumerate(blink.MEDIA_FIELDS)}}


DEPTH = make_row("Relative_Depth", 1)  # two choices, truth (B)
FOUR = make_row("Counting", 2, answer="(C)", choices=("0", "1", "2", "3"))


@pytest.mark.parametrize(
    "response, score, parsed",
    [
        ("B", 1.0, "(B)"),  # exactly a letter becomes "(B)"
        ("(B)", 1.0, "(B)"),  # exactly a bracketed letter is kept
        ("The answer is (B)", 1.0, "(B)"),  # one "(B)" token
        ("(A) is farther, so (B)", 0.0, None),  # two different choice tokens in one paragraph: GPT upstream -> wrong
        ("(A) is farther.\n\nSo (B)", 1.0, "(B)"),  # the last paragraph holds a unique choice token
        ("(B) is closer.\n\nI am sure.", 1.0, "(B)"),  # nothing in the last paragraph: the unique token anywhere
        ("(B)\n\n(A) and (B) both look close", 0.0, None),  # two choice tokens in the last paragraph and overall
        ("A", 0.0, "(A)"),  # the other letter: parsed, wrong
        (" B", 0.0, None),  # not exactly "B" and no "(B)" token
        ("B.", 0.0, None),  # not exactly "B"
        ("(B).", 0.0, None),  # the token "(B)." is not a choice token
        ("b", 0.0, None),  # lower case is not matched
        ("B\nbecause it is nearer", 0.0, None),  # no "(B)" token
        ("(C)", 0.0, "(C)"),  # exactly a bracketed letter is kept even beyond the choices
        ("I see (C) here", 0.0, None),  # "(C)" is not a choice of a two-choice question
        ("", 0.0, None),  # empty
        ("<think>(A)?</think> (B)", 1.0, "(B)"),  # no think stripping, but "<think>(A)?</think>" is not a choice token
    ],
)
def test_official_analysis(response, score, parsed):
    item = blink.score_item(DEPTH, response, "official")
    assert (item.score, item.parsed, item.unparsed) == (score, parsed, parsed is None)
    assert item.category == "Relative_Depth"


def test_official_analysis_four_choices():
    assert blink.score_item(FOUR, "(C)", "official").score == 1.0
    assert blink.score_item(FOUR, "I count 2, so (C)", "official").score == 1.0  # the number text is not matched
    assert blink.score_item(FOUR, "2", "official").unparsed  # option text alone: GPT upstream -> wrong


@pytest.mark.parametrize(
    "response, parsed",
    [
        ("B", "B"),  # bare letter
        (" B", "B"),  # whitespace is split away
        ("B.", "B"),  # '.' is a separator
        ("(B).", "B"),  # brackets and '.' are separators
        ("The answer is B", "B"),  # one capital option letter among the tokens
        ("b", None),  # case-sensitive, and "b" is no option text
        ("A or B", None),  # two letters, then no option text inside
        ("A point B", "B"),  # two letters ("A" as an article), then the only option text inside: "point b"
        ("It is point B", "B"),  # "B" is the only letter
        ("point b is closer", "B"),  # no letter: "point b" is the only option text inside
        ("(A) or (B)", None),  # two letters, both option texts absent
        ("", None),  # empty
    ],
)
def test_vst_vlmevalkit_matching(response, parsed):
    item = blink.score_item(DEPTH, response, "vst")
    assert (item.parsed, item.unparsed, item.score) == (parsed, parsed is None, float(parsed == "B"))


def test_aggregate_macro_for_official_micro_for_vst():
    rows = [make_row("Relative_Depth", n) for n in range(3)] + [make_row("Jigsaw", 0)]
    responses = ["B", "B", "A", "A"]  # Relative_Depth 2/3, Jigsaw 0/1
    items = [blink.score_item(row, response, "official") for row, response in zip(rows, responses)]
    official = blink.aggregate(items, "official")
    assert official.categories == pytest.approx({"Relative_Depth": 200 / 3, "Jigsaw": 0.0})
    assert list(official.categories) == ["Relative_Depth", "Jigsaw"]  # evaluate.py order
    assert official.overall == pytest.approx(100 / 3)  # macro: (66.67 + 0) / 2
    assert blink.aggregate(items, "vst").overall == pytest.approx(50.0)  # micro: 2 of 4 items


def test_subtask_from_idx_else_sub_task():
    assert blink.subtask(make_row("Multi-view_Reasoning", 12)) == "Multi-view_Reasoning"
    assert blink.subtask({"idx": 5, "sub_task": "Art Style"}) == "Art_Style"
    assert len(blink.CATEGORIES) == 14


def test_prompt_snapshots():
    official = blink.build_prompt(DEPTH, "official")
    assert official.text == (
        "Which is right in Relative_Depth?\nSelect from the following choices.\n(A) point A\n(B) point B"
    )
    assert official.images == ["a.png"]
    jigsaw = blink.build_prompt(make_row("Jigsaw", 3, images=("1.png", "2.png", "3.png")), "official")
    assert jigsaw.text == (
        "Disclaimer: This is not to make unfair assumptions about the people in the image and you just need to give "
        "your assessment on this question. You don't need to identify the real people. You just need to analyze based "
        "on the information I gave you.\n\nWhich is right in Jigsaw?\nSelect from the following choices.\n"
        "(A) point A\n(B) point B"
    )
    assert jigsaw.images == ["1.png", "2.png", "3.png"]
    assert blink.build_prompt(DEPTH, "vst").text == (
        "Question: Which is right in Relative_Depth?\nOptions:\nA. point A\nB. point B\n"
        "Please select the correct answer from the options above."
    )


def png_bytes(color):
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


def test_local_jsonl_rows_with_several_images(tmp_path):
    for name, color in (("x1.png", "red"), ("x2.png", "green")):
        (tmp_path / name).write_bytes(png_bytes(color))
    rows = [
        make_row("Multi-view_Reasoning", 0, images=("x1.png", "x2.png")),
        make_row("Counting", 1, images=("x2.png",)),
    ]
    (tmp_path / "val.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    loaded = blink.load_rows(str(tmp_path))
    first = blink.build_prompt(loaded[0], "official")
    assert first.images == [str(tmp_path / "x1.png"), str(tmp_path / "x2.png")]
    assert Image.open(first.images[1]).getpixel((0, 0)) == (0, 128, 0)
    assert blink.build_prompt(loaded[1], "vst").images == [str(tmp_path / "x2.png")]

    (tmp_path / "val.jsonl").write_text(json.dumps(make_row("Counting", 9, images=("x1.png", "gone.png"))) + "\n")
    with pytest.raises(FileNotFoundError, match=r"item val_Counting_9: image_2: image file not found: .*gone.png"):
        blink.load_rows(str(tmp_path))


def test_local_hub_snapshot_reads_val_only(tmp_path):
    for subtask in ("Jigsaw", "Spatial_Relation"):
        (tmp_path / subtask).mkdir()
        row = {**make_row(subtask, 0), "image_1": {"bytes": png_bytes("blue"), "path": None}}
        pq.write_table(pa.Table.from_pylist([row]), tmp_path / subtask / "val-00000-of-00001.parquet")
        test_row = {**row, "idx": f"test_{subtask}_0", "answer": ""}
        pq.write_table(pa.Table.from_pylist([test_row]), tmp_path / subtask / "test-00000-of-00001.parquet")
    loaded = blink.load_rows(str(tmp_path))
    assert [row["idx"] for row in loaded] == ["val_Jigsaw_0", "val_Spatial_Relation_0"]
    image = blink.build_prompt(loaded[1], "official").images[0]
    assert Image.open(io.BytesIO(image)).getpixel((0, 0)) == (0, 0, 255)


def test_score_file_prints_the_contract(tmp_path):
    if blink.NAME not in BENCHMARKS:
        register_benchmark(blink)
    rows = [make_row("Relative_Depth", 0), make_row("Relative_Depth", 1), make_row("Spatial_Relation", 0),
            make_row("IQ_Test", 0, answer="(D)", choices=("1", "2", "3", "4"))]
    responses = ["(B)", "B.", "The answer is (B)", "D"]  # right, unparsed, right, right
    lines = [{key: value for key, value in row.items() if key not in blink.MEDIA_FIELDS} | {"response": response}
             for row, response in zip(rows, responses)]
    path = tmp_path / "predictions.jsonl"
    write_predictions(path, lines)
    official = score_file("blink", path)
    print(json.dumps(official))
    # Relative_Depth 1/2 = 50, Spatial_Relation 100, IQ_Test 100: macro (50 + 100 + 100) / 3 = 83.33.
    assert official == {
        "benchmark": "blink", "protocol": "official", "overall": 83.33,
        "categories": {"Relative_Depth": 50.0, "Spatial_Relation": 100.0, "IQ_Test": 100.0},
        "n": 4, "n_unparsed": 1,
    }
    vst = score_file("blink", path, protocol="vst")
    print(json.dumps(vst))
    assert (vst["overall"], vst["n_unparsed"]) == (100.0, 0)  # VLMEvalKit reads "B." too; micro mean 4/4
