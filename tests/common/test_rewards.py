"""Reward tables with literal responses (each with why), VST's combination, and fuzzing: no text raises."""

import doctest
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vst.common import rewards
from vst.common.rewards import REWARDS, batched, format_reward, score, total

MC = {"type": "mc", "value": "B", "options": ["A. chair", "B. lamp"]}
NUMBER = {"type": "number", "value": 2.0}
BOX = {"bbox_3d": [0.5, 0.35, 3.0, 0.4, 0.9, 0.6, 0.0, 0.0, 0.0], "label": "chair"}


@pytest.mark.parametrize(
    "response, expected",
    [
        ("<think>a</think> B", 1.0),  # one think block, non-empty answer
        ("<think>a</think>", 0.0),  # nothing after </think>
        ("B", 0.0),  # no think block
        ("<think>a</think><think>b</think> B", 0.0),  # two blocks
        ("<think><think>a</think> B", 0.0),  # unbalanced
        ("  <think>\nmulti\nline\n</think>\n\nB  ", 1.0),  # newlines inside and around are fine
    ],
)
def test_format(response, expected):
    assert format_reward(response) == expected


@pytest.mark.parametrize(
    "response, expected",
    [
        ("B", 1.0),  # exact
        ("b", 1.0),  # exact ignoring case
        ("<think>x</think> B", 1.0),  # answer after think
        ("B. lamp", 1.0),  # isolated letter
        ("(B)", 1.0),
        ("`B`", 1.0),  # backticks stripped, as VST does
        ("The answer is B", 1.0),  # isolated capital B
        ("A", 0.0),
        ("A lamp", 0.0),  # 'A' starts a phrase, so it is not taken as a letter: nothing isolated
        ("", 0.0),
        ("<think>B</think> A", 0.0),  # only the part after </think> counts
    ],
)
def test_multiple_choice(response, expected):
    assert score("multiple_choice", response, MC) == expected


@pytest.mark.parametrize(
    "response, expected",
    [
        ("2", 1.0),
        ("2.0 meters", 1.0),
        ("<think>maybe 3</think> 2.1", 1.0),  # 5 % relative error allowed
        ("2.2", 0.0),  # 10 % off
        ("about 1.9 m", 1.0),
        ("nan", 0.0),
        ("", 0.0),
    ],
)
def test_numeric(response, expected):
    assert score("numeric", response, NUMBER) == expected


@pytest.mark.parametrize(
    "response, expected",
    [
        ("2", 1.0),
        ("2.7", 0.3),  # VSI float artefact: 0.7/2 = 0.35000000000000003 > 0.35, so 3 of 10 thresholds pass
        ("1.5", 0.6),  # 25 % error passes thresholds 0.50..0.75
        ("-1", 0.0),  # negative predictions score 0
        ("3,5", 0.0),  # first number 3 -> 50 % error passes only threshold 0.50 -> 0.1; see assertion below
        ("<think>4</think> 2", 1.0),
    ],
)
def test_mra(response, expected):
    value = score("mra", response, NUMBER)
    if response == "3,5":
        assert value == pytest.approx(0.1)
    else:
        assert value == pytest.approx(expected)


def test_yes_no_order_option_text_exact_math():
    assert score("yes_no", "Yes, it is.", {"value": "yes"}) == 1.0
    assert score("yes_no", "No", {"value": "yes"}) == 0.0
    assert score("order", "D, C, A", {"value": ["D", "C", "A"]}) == 1.0
    assert score("order", "D, A, C", {"value": ["D", "C", "A"]}) == 0.0
    options = {"value": "chair", "options": ["chair", "armchair"]}
    assert score("option_text", "the chair is closer", options) == 1.0
    assert score("option_text", "the armchair", options) == 0.0  # 'chair' inside 'armchair' does not count
    assert score("option_text", "chair or armchair", options) == 0.0  # names both
    assert score("exact", "Turn Left.", {"value": "turn left"}) == 1.0
    assert score("math", "<think>…</think> $\\frac{1}{2}$", {"value": "0.5"}) == 1.0


def test_boxes3d_vst_definition():
    answer = {"value": [BOX]}
    perfect = "```json\n" + json.dumps([BOX]) + "\n```"
    assert score("boxes3d", perfect, answer) == pytest.approx(1.0)
    # a perfect box plus a false positive: matched IoU 1 over 1 truth -> 0.5; F1 = 2*(0.5*1)/(1.5) = 2/3 -> 1/3
    extra = json.dumps([BOX, {**BOX, "bbox_3d": [5, 5, 9, 0.4, 0.9, 0.6, 0, 0, 0]}])
    assert score("boxes3d", extra, answer) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # shifted by half the width along x: IoU = 0.2 / 0.6 = 1/3 -> 0.5 * 1/3 + 0.5 * F1(1.0) since 1/3 >= 0.25
    shifted = json.dumps([{**BOX, "bbox_3d": [0.7, 0.35, 3.0, 0.4, 0.9, 0.6, 0, 0, 0]}])
    assert score("boxes3d", shifted, answer) == pytest.approx(0.5 / 3 + 0.5)
    wrong_label = json.dumps([{**BOX, "label": "table"}])
    assert score("boxes3d", wrong_label, answer) == 0.0
    assert score("boxes3d", "[{\"bbox_3d\": [1, 2]}]", answer) == 0.0  # 2 numbers, not 9


def test_map_score_spacer_definition():
    truth = {"value": {"chair": [[1, 1]], "table": [[5, 5], [7, 7]]}}
    assert score("map", json.dumps(truth["value"]), truth) == pytest.approx(1.0)
    # chair 1 cell off: 1 - 1/(10 sqrt 2); table missing: 0; weights 1 and 2
    guess = {"chair": [[2, 1]]}
    assert score("map", json.dumps(guess), truth) == pytest.approx((1 - 1 / (10 * 2**0.5)) / 3)


def test_total_and_batched_adapter():
    assert total("multiple_choice", "<think>x</think> B", MC) == 1.0
    assert total("multiple_choice", "B", MC) == 0.5  # right answer, no format
    assert total("multiple_choice", "<think>x</think> A", MC) == 0.5  # format only
    reward = batched("multiple_choice")
    assert reward(["<think>x</think> B", [{"role": "assistant", "content": "A"}]], answer=[json.dumps(MC), MC]) == [1.0, 0.0]
    with pytest.raises(KeyError, match="unknown reward 'nope'; known rewards: boxes3d"):
        score("nope", "x", {})


def test_doctests():
    assert doctest.testmod(rewards).failed == 0


ANSWERS = {
    "multiple_choice": MC, "yes_no": {"value": "yes"}, "numeric": NUMBER, "mra": NUMBER, "math": {"value": "2"},
    "order": {"value": ["A", "B"]}, "option_text": {"value": "a", "options": ["a", "b"]}, "exact": {"value": "x"},
    "boxes3d": {"value": [BOX]}, "map": {"value": {"chair": [[1, 1]]}}, "format": {},
}


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200) | st.sampled_from(["```json\n[{]", "[{\"bbox_3d\": [1e999, 0, 0, 0, 0, 0, 0, 0, 0]}]", "{\"chair\": [[null, 1]]}", "<think></think>", "[[[[[[]]]]]]"]))
def test_no_response_text_raises(text):
    assert set(ANSWERS) == set(REWARDS)
    for name, answer in ANSWERS.items():
        value = REWARDS[name](text, answer)  # the raw functions themselves, not the guarded `score`
        assert 0.0 <= value <= 1.0


def test_format_without_a_regex_means_what_the_regex_meant():
    """`format` counts and finds instead of matching `<think>.*?</think>` (quadratic on unclosed tags); on random
    mixes of the tags it agrees with the regex definition."""
    import random
    import re

    block = re.compile(r"<think>.*?</think>", re.DOTALL)

    def by_regex(text):
        if len(block.findall(text)) != 1 or text.count("<think>") != 1:
            return 0.0
        return 1.0 if text.split("</think>", 1)[1].strip() else 0.0

    rng = random.Random(0)
    parts = ["<think>", "</think>", " a ", "B", "\n", "<think", "think>", "</think"]
    texts = ["".join(rng.choice(parts) for _ in range(rng.randint(0, 8))) for _ in range(5000)]
    assert [rewards.format_reward(t) for t in texts] == [by_regex(t) for t in texts]
    assert sum(by_regex(t) for t in texts) > 100  # the mix holds well-formed answers too


def test_babble_is_cut_before_it_costs():
    """GRPO scores every rollout: a policy that lists hundreds of boxes or writes a megabyte gets 0, quickly."""
    box = {"bbox_3d": [0, 0, 3, 1, 1, 1, 0, 0, 0], "label": "chair"}
    truth = {"value": [box]}
    assert rewards.boxes3d(json.dumps([box]), truth) == 1.0
    assert rewards.boxes3d(json.dumps([box] * (rewards.MAX_REWARD_BOXES + 1)), truth) == 0.0
    far = {**box, "bbox_3d": [5, 0, 3, 1, 1, 1, 0, 0, 0]}
    assert not rewards._may_overlap(far["bbox_3d"], box["bbox_3d"])
    assert rewards._may_overlap([0.9, 0, 3, 1, 1, 1, 0, 0, 0], box["bbox_3d"])
    assert rewards.boxes3d(json.dumps([far]), truth) == 0.0
    points = {"chair": [[1.0, 1.0]] * 5000}
    assert 0.0 <= rewards.map_score(json.dumps(points), {"value": {"chair": [[1.0, 1.0]]}}) <= 1.0
    assert rewards.format_reward("<think>" * 50_000) == 0.0
