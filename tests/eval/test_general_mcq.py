"""General-ability benchmarks read and scored as VLMEvalKit does (open-compass/VLMEvalKit @e8e78f0:
vlmeval/dataset/image_mcq.py `ImageMCQDataset.build_prompt` / `evaluate_heuristic`, vlmeval/dataset/image_base.py for
the TSV's image column, vlmeval/dataset/utils/multiple_choice.py `report_acc` and `mcq_circular_eval`)."""

import base64
import hashlib
import io

import pytest
from PIL import Image

from vst.eval.benchmarks import load_all, mmbench, mmstar
from vst.eval.benchmarks.registry import generation

COLUMNS = ("index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "image")


def picture(color):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), color).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def write_tsv(path, rows):
    """A VLMEvalKit MCQ TSV: header, tabs, empty cells for absent options, base64 images, and for a repeated
    picture the index of the row that holds it (image_base.py: "the index of another question, to save space")."""
    lines = ["\t".join(COLUMNS)] + ["\t".join("" if row.get(c) is None else str(row[c]) for c in COLUMNS) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


# MMBench dev: question 0 asked in 3 rotations (index 0, 1000000, 2000000), question 1 once.
MMBENCH = [
    {"index": 0, "question": "What colour is the square?", "hint": "Look closely.", "A": "red", "B": "green",
     "C": "blue", "answer": "A", "category": "attribute_recognition", "l2-category": "FP-S", "image": picture("red")},
    {"index": 1000000, "question": "What colour is the square?", "hint": "Look closely.", "A": "green", "B": "blue",
     "C": "red", "answer": "C", "category": "attribute_recognition", "l2-category": "FP-S", "image": "0"},
    {"index": 2000000, "question": "What colour is the square?", "hint": "Look closely.", "A": "blue", "B": "red",
     "C": "green", "answer": "B", "category": "attribute_recognition", "l2-category": "FP-S", "image": "0"},
    {"index": 1, "question": "Is it a photo?", "A": "yes", "B": "no", "answer": "B", "category": "image_style",
     "l2-category": "CP", "image": picture("blue")},
]


@pytest.fixture
def mmbench_tsv(tmp_path):
    return write_tsv(tmp_path / "MMBench_DEV_EN.tsv", MMBENCH)


def test_rows_resolve_shared_pictures_and_prompts_match_vlmevalkit(mmbench_tsv):
    rows = mmbench.load_rows(str(mmbench_tsv.parent))
    assert [row["index"] for row in rows] == ["0", "1000000", "2000000", "1"]
    assert rows[1]["image"] == rows[0]["image"] and Image.open(io.BytesIO(rows[0]["image"])).size == (8, 6)
    assert rows[3]["C"] is None and rows[3].get("hint") is None
    assert mmbench.build_prompt(rows[0], "official").text == (
        "Hint: Look closely.\nQuestion: What colour is the square?\nOptions:\nA. red\nB. green\nC. blue\n"
        "Please select the correct answer from the options above. \n")
    assert mmbench.build_prompt(rows[3], "vst").text == (
        "Question: Is it a photo?\nOptions:\nA. yes\nB. no\nPlease select the correct answer from the options above.")


def test_circular_eval_and_report_acc(mmbench_tsv):
    rows = mmbench.load_rows(str(mmbench_tsv))
    # question 0: right in rotations 1 and 3, wrong in rotation 2 -> wrong; question 1 right -> overall 50
    responses = ["A", "B", "B", "B"]
    items = [mmbench.score_item(row, response) for row, response in zip(rows, responses)]
    result = mmbench.aggregate(items)
    assert result.overall == 50.0
    assert result.categories == {"CP": 100.0, "FP-S": 0.0, "attribute_recognition": 0.0, "image_style": 100.0}
    # the same answers on a vanilla (non-circular) benchmark count rows: 3 of 4
    vanilla = [mmstar.score_item(row, response) for row, response in zip(rows, responses)]
    assert mmstar.aggregate(vanilla).overall == 75.0


def test_download_is_md5_checked(tmp_path, monkeypatch):
    import urllib.request

    source = write_tsv(tmp_path / "upstream.tsv", MMBENCH[3:])
    monkeypatch.setenv("VST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(urllib.request, "urlretrieve", lambda url, path: path.write_bytes(source.read_bytes()))
    monkeypatch.setattr(mmstar, "MD5", hashlib.md5(source.read_bytes()).hexdigest())
    assert [row["index"] for row in mmstar.load_rows("vlmevalkit")] == ["1"]
    assert (tmp_path / "cache" / "vlmevalkit" / "MMStar.tsv").is_file()
    monkeypatch.setattr(mmstar, "MD5", "0" * 32)
    (tmp_path / "cache" / "vlmevalkit" / "MMStar.tsv").unlink()
    with pytest.raises(ValueError, match="md5 .* differs from VLMEvalKit's 0000"):
        mmstar.load_rows("vlmevalkit")


def test_a_reference_to_a_missing_picture_is_named(tmp_path):
    write_tsv(tmp_path / "MMStar.tsv", [{**MMBENCH[3], "image": "42"}])
    with pytest.raises(ValueError, match=r"MMStar.tsv: line 2: image: refers to index '42', which holds no image"):
        mmstar.load_rows(str(tmp_path))


def test_general_benchmarks_generate_as_vst_did():
    load_all()
    assert generation(mmbench, "vst")["max_new_tokens"] == 2048 and generation(mmstar, "official")["top_k"] == 1


def write_ocrbench(folder):
    """VLMEvalKit's OCRBench.tsv: index, image, question, answer (a list literal), category."""
    columns = ("index", "image", "question", "answer", "category")
    lines = ["\t".join(columns)] + ["\t".join(str(v) for v in row) for row in OCRBENCH_ROWS]
    (folder / "OCRBench.tsv").write_text("\n".join(lines) + "\n")


def test_ocrbench_scores_as_vlmevalkit(tmp_path):
    """OCRBench.tsv: `answer` is a Python list literal; handwritten maths compares with spaces removed, case kept."""
    from vst.eval.benchmarks import ocrbench

    write_ocrbench(tmp_path)
    loaded = ocrbench.load_rows(str(tmp_path))
    assert ocrbench.answers(loaded[1]) == ["$3.50", "3.50"] and loaded[3]["image"] == loaded[0]["image"]
    assert ocrbench.build_prompt(loaded[0], "vst").text.endswith("with short words or phrases if possible.")
    responses = ["The text says Central.", "It costs 3.50 dollars", "x ^ {2} + 1", "STATIONS"]
    items = [ocrbench.score_item(row, response) for row, response in zip(loaded, responses)]
    assert [item.score for item in items] == [1.0, 1.0, 1.0, 1.0]
    assert ocrbench.score_item(loaded[2], "X^{2}+1").score == 0.0  # case kept for handwritten maths
    result = ocrbench.aggregate(items[:2] + [ocrbench.score_item(loaded[3], "nothing")])
    assert result.overall == pytest.approx(200 / 3)
    assert result.categories == {"Text Recognition": 50.0, "Scene Text-centric VQA": 100.0}


OCRBENCH_ROWS = [
    (0, picture("white"), "what is written in the image?", "['CENTRAL']", "Regular Text Recognition"),
    (1, picture("white"), "what is the price?", "['$3.50', '3.50']", "Scene Text-centric VQA"),
    (2, picture("white"), "Please write out the expression of the formula in the image using LaTeX format.",
     "['x^{2}+1']", "Handwritten Mathematical Expression Recognition"),
    (3, "0", "what is written in the image?", "['station']", "Regular Text Recognition"),
]


def write_mmmu(folder):
    """VLMEvalKit's MMMU_DEV_VAL.tsv: a multi-image row holds a list literal of base64 pictures."""
    columns = ("index", "question", "A", "B", "C", "answer", "category", "split", "image")
    two = "[" + ", ".join(repr(picture(c)) for c in ("red", "blue")) + "]"
    rows = [
        ("validation_Art_1", "Which painting is older? <image 1> <image 2>", "the first", "the second", "", "A", "Art",
         "validation", two),
        ("validation_Math_2", "What is 2 + 2? <image 1>", "", "", "", "4", "Math", "validation", picture("white")),
        ("dev_Art_1", "Which? <image 1>", "x", "y", "", "B", "Art", "dev", picture("white")),
    ]
    lines = ["\t".join(columns)] + ["\t".join(str(v) for v in row) for row in rows]
    (folder / "MMMU_DEV_VAL.tsv").write_text("\n".join(lines) + "\n")


def test_mmmu_validation_split_multi_image_rows_and_open_questions(tmp_path):
    """Dev rows are scored but left out of the means; open questions are scored by answer substring."""
    from vst.eval.benchmarks import mmmu

    write_mmmu(tmp_path)
    loaded = mmmu.load_rows(str(tmp_path))
    assert len(loaded[0]["image"]) == 2 and len(mmmu.build_prompt(loaded[0]).images) == 2
    items = [mmmu.score_item(loaded[0], "A"), mmmu.score_item(loaded[1], "The answer is 5."),
             mmmu.score_item(loaded[2], "B")]
    result = mmmu.aggregate(items)
    assert result.overall == 50.0 and result.categories == {"Art": 100.0, "Math": 0.0}  # the dev row is left out
    assert mmmu.score_item(loaded[1], "2 + 2 = 4").score == 1.0


@pytest.mark.parametrize("response, letter, found", [
    ("(B)", "B", True),
    ("The answer is (B), not (A).", "A", True),  # MMMU: the option mentioned last wins
    ("B", "B", True),
    ("I would say the second painting is older", "B", True),  # over five words: option text
    ("hmm", None, False),  # nothing: MMMU's random letter, seeded per item
])
def test_mmmu_official_choice_extraction(response, letter, found):
    from vst.eval.benchmarks import mmmu

    options = {"A": "the first painting", "B": "the second painting"}
    picked, really = mmmu.parse_choice(response, options, seed="validation_Art_1")
    assert really == found and (picked == letter if letter else picked in options)
    assert mmmu.parse_choice(response, options, seed="validation_Art_1") == (picked, really)  # same on a re-score


@pytest.mark.parametrize("response, gold, right", [
    ("So the answer is 3,000", "3000", True),  # numbers normalised
    ("2 + 2 = 4", "4", True),  # the last sentence also after "="
    ("The colour is Red.", "red", True),
    ("It is 3.14159", "3.14", True),  # two decimals
    ("The answer is 5.", "4", False),
])
def test_mmmu_official_open_extraction(response, gold, right):
    from vst.eval.benchmarks import mmmu

    assert mmmu.open_is_right(gold, mmmu.parse_open(response)) is right


def test_mmmu_official_prompt(tmp_path):
    from vst.eval.benchmarks import mmmu

    write_mmmu(tmp_path)
    rows = mmmu.load_rows(str(tmp_path))
    assert mmmu.build_prompt(rows[0], "official").text == (
        "Which painting is older? <image 1> <image 2>\n\n(A) the first\n(B) the second\n\n\n"
        "Answer with the option's letter from the given choices directly.")
    assert mmmu.build_prompt(rows[1], "official").text.endswith("\n\nAnswer the question using a single word or phrase.")
