"""VLMEvalKit's rule matcher, version by version (open-compass/VLMEvalKit vlmeval/utils/matching_util.py at
c6bdffd3 "2024", c3371551 "2025-08" (PR #1175) and a67ace50 "2026-06" (PR #1552)): the responses that move
3DSRBench scores between versions."""

import pytest

from vst.common.parsing import VLMEVALKIT_VERSIONS, vlmevalkit_choice
from vst.eval.benchmarks import threedsrbench

OPTIONS = {"A": "the lamp", "B": "the chair"}


@pytest.mark.parametrize("response, by_version", [
    ("B", {"2024": "B", "2025-08": "B", "2026-06": "B"}),
    # a letter first, then an explanation: from 2025-08 the letter must be among the last five tokens
    ("A because the lamp stands on the shelf, which is higher", {"2024": "A", "2025-08": None, "2026-06": None}),
    # two letters: no option letter; 2026-06 reads "the correct answer is B"
    ("A and B both seem possible, but the correct answer is B", {"2024": None, "2025-08": None, "2026-06": "B"}),
    # no letter: the one option text; from 2025-08 only when the response is at most twice the options' length
    ("I think the chair", {"2024": "B", "2025-08": "B", "2026-06": "B"}),
    ("Looking carefully at the whole scene from this viewpoint, the chair", {"2024": "B", "2025-08": None, "2026-06": None}),
    ("Cannot determine the answer", {"2024": None, "2025-08": None, "2026-06": None}),
])
def test_each_version_reads_what_that_vlmevalkit_read(response, by_version):
    assert {version: vlmevalkit_choice(response, OPTIONS, version) for version in VLMEVALKIT_VERSIONS} == by_version


def test_3dsrbench_is_pinned_to_the_matcher_its_official_script_consumed():
    row = {"qid": "Q", "question": "Which is higher?", "A": "the lamp", "B": "the chair", "C": None, "D": None,
           "answer": "A", "category": "height_higher"}
    assert threedsrbench.MATCHER == "2024"
    assert threedsrbench.score_item(row, "A because the lamp stands on the shelf, which is higher").score == 1.0
    with pytest.raises(ValueError, match="known 2024, 2025-08, 2026-06"):
        vlmevalkit_choice("A", OPTIONS, "latest")
