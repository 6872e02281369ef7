"""Every reward on adversarial text: GRPO calls them on whatever a policy writes, so none may raise, return outside
[0, 1], or depend on anything but its inputs. Texts are built from the pieces rewards parse (think tags, JSON
brackets, box and map fragments, letters, numbers, LaTeX) plus arbitrary unicode, up to tens of kilobytes.
Worst-case cost is measured by `python benchmarks/rewards.py`, not here."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vst.common import rewards

PIECES = ["<think>", "</think>", "<think", "think>", "```json", "```", "[", "]", "{", "}", '"bbox_3d":', '"label":',
          '"chair"', ":", ",", "A", "B.", "(C)", "yes", "No", "1e308", "-0", "nan", "inf", "3.5", "\\boxed{", "\\frac{1}{2}",
          "\n", " ", "answer: D", json.dumps({"bbox_3d": [0, 0, 3, 1, 1, 1, 0, 0, 0], "label": "chair"}),
          json.dumps({"chair": [[1, 2]]})]
TEXT = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=200).map("".join),
    st.text(max_size=2000),
    st.tuples(st.sampled_from(PIECES), st.integers(1, 20_000)).map(lambda piece_times: piece_times[0] * piece_times[1]),
)
ANSWERS = {
    "multiple_choice": {"value": "B"}, "yes_no": {"value": "yes"}, "numeric": {"value": 3.5}, "mra": {"value": 3.5},
    "math": {"value": "\\frac{1}{2}"}, "order": {"value": ["A", "B"]}, "exact": {"value": "chair"},
    "option_text": {"value": "chair", "options": ["chair", "armchair"]},
    "boxes3d": {"value": [{"bbox_3d": [0, 0, 3, 1, 1, 1, 0, 0, 0], "label": "chair"}]},
    "map": {"value": {"chair": [[1.0, 2.0]]}},
}


def test_every_reward_has_an_answer_here():
    assert set(rewards.REWARDS) - {"format"} <= set(ANSWERS)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXT, fn=st.sampled_from(sorted(ANSWERS)))
def test_rewards_never_raise_and_stay_in_range(text, fn):
    value = rewards.score(fn, text, ANSWERS[fn])
    assert 0.0 <= value <= 1.0 and value == rewards.score(fn, text, ANSWERS[fn])
    assert 0.0 <= rewards.total(fn, text, ANSWERS[fn]) <= 1.0
    assert rewards.format_reward(text) in (0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(value=st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=20), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=5), st.integers(), max_size=3)),
       fn=st.sampled_from(sorted(ANSWERS)))
def test_malformed_answers_score_zero_or_in_range(value, fn):
    assert 0.0 <= rewards.score(fn, "<think>x</think> B", {"value": value}) <= 1.0
