"""VLMEvalKit's multiple-choice prompts, written once for every benchmark that VST ran through VLMEvalKit (CV-Bench,
3DSRBench, BLINK, MMSI-Bench: spec/benchmarks.md §9).

- `vlmevalkit_mcq_prompt`: the dataset prompt of `ImageMCQDataset.build_prompt` (open-compass/VLMEvalKit:
  vlmeval/dataset/image_mcq.py), used when a model has no prompt of its own. It ends in "above. \\n" (space, newline).
- `qwen_mcq_prompt`: `Qwen2VLPromptMixin._build_mcq_prompt` (open-compass/VLMEvalKit:vlmeval/vlm/qwen2_vl/prompt.py),
  which replaces the dataset prompt when Qwen2VLChat runs with `use_custom_prompt=True`, as VST's config does. Same
  body, instruction without the trailing " \\n", the whole text right-stripped. Both add the "Options:" block and the
  instruction only when the row has option columns: a question with its options written inline (MMSI-Bench) is sent
  as "Question: …" alone.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

MCQ_INSTRUCTION = "Please select the correct answer from the options above."
QWEN_MCQ_INSTRUCTION_CN = "请直接回答选项字母。"
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def present(value: Any) -> bool:
    """VLMEvalKit's `not pd.isna(value)` for one option cell: None and NaN are absent options."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def row_options(row: Mapping[str, Any]) -> dict[str, str]:
    """{letter: text} of the row's option columns A, B, … that are present, in letter order."""
    return {letter: str(row[letter]) for letter in OPTION_LETTERS if letter in row and present(row[letter])}


def _body(question: str, options: Mapping[str, str], hint: str | None) -> str:
    text = f"Hint: {hint}\n" if hint is not None else ""
    text += f"Question: {question}\n"
    if options:
        text += "Options:\n" + "".join(f"{letter}. {option}\n" for letter, option in options.items())
    return text


def vlmevalkit_mcq_prompt(question: str, options: Mapping[str, str], hint: str | None = None) -> str:
    """VLMEvalKit's default MCQ text: "Question: q\\nOptions:\\nA. x\\nB. y\\nPlease select … above. \\n"."""
    text = _body(question, options, hint)
    return text + MCQ_INSTRUCTION + " \n" if options else text


def qwen_mcq_prompt(question: str, options: Mapping[str, str], hint: str | None = None) -> str:
    """Qwen2VLChat's custom MCQ text: "Question: q\\nOptions:\\nA. x\\nB. y\\nPlease select … above." (right-stripped).

    VLMEvalKit switches to a Chinese instruction when the text so far holds CJK characters; kept for fidelity.
    """
    text = _body(question, options, hint)
    if options:
        chinese = any("\u4e00" <= char <= "\u9fff" for char in text)
        text += QWEN_MCQ_INSTRUCTION_CN if chinese else MCQ_INSTRUCTION
    return text.rstrip()
