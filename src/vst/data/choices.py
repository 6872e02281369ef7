"""Multiple-choice options: the one place answers become lettered options (skills never format them).

Format: options are written `A. chair` one per line after "Options:", and the answer is the bare letter. VSI-Bench
and VST's Qwen multiple-choice prompt use exactly this shape ("Answer with the option's letter from the given
choices directly."), so training matches evaluation. The correct option goes to the letter used least so far in
the same (scene, skill) stream among questions with the same number of options, ties broken by the rng (spec
data.md §1.9 "MC balance", after VLM-3R), so no letter carries a prior. Counting per option count matters when a
skill mixes 2- and 4-option forms: with one shared count the 2-option questions fill A and B, and the 4-option ones
are then pushed onto C and D. Numeric distractors follow VLM-3R: drawn from [0.25, 1.75] x truth, at least 20 %
apart.

`as_text_answer` rewrites a lettered question into the name-answer form (the options listed without letters, the
answer their text, reward `option_text`; engine option `answer_form: text`). VST answers by letter, and so do all
shipped configs: on the tiny demo the text form measured no better, since copying an option needs the same lookup
as binding a letter (docs/demo.md).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from vst.data.sample import Sample, Turn

LETTERS = "ABCDEFGH"
MC_INSTRUCTION = "Answer with the option's letter from the given choices directly."
TEXT_INSTRUCTION = "Answer with one of the options, word for word."
ANSWER_FORMS = ("letter", "text")


@dataclass
class LetterBalancer:
    """Counts how often each letter has been the right answer, per option count, to place the next one on the rarest.

    `used` is keyed by (option count, letter): 2-option and 4-option questions of one stream are balanced separately,
    so each option count on its own puts its answers evenly on its letters.
    """

    used: Counter = field(default_factory=Counter)

    def place(self, count: int, rng: np.random.Generator) -> int:
        if not 1 <= count <= len(LETTERS):
            raise ValueError(f"option count {count} must be in [1, {len(LETTERS)}]")
        letters = LETTERS[:count]
        fewest = min(self.used[count, letter] for letter in letters)
        candidates = [i for i, letter in enumerate(letters) if self.used[count, letter] == fewest]
        index = candidates[int(rng.integers(len(candidates)))]
        self.used[count, letters[index]] += 1
        return index

    def counts(self, count: int) -> dict[str, int]:
        """{letter: times it was the answer} among the placements with `count` options."""
        return {letter: self.used[count, letter] for letter in LETTERS[:count]}


@dataclass
class Choice:
    options: list[str]  # option texts, in letter order
    letter: str  # the correct letter

    @property
    def lines(self) -> str:
        return "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(self.options))

    def prompt(self, question: str) -> str:
        return f"{question}\nOptions:\n{self.lines}\n{MC_INSTRUCTION}"

    @property
    def answer(self) -> dict:
        return {"type": "mc", "value": self.letter, "options": [f"{LETTERS[i]}. {t}" for i, t in enumerate(self.options)]}


def multiple_choice(correct: str, distractors: list[str], balancer: LetterBalancer, rng: np.random.Generator) -> Choice:
    """Shuffle the distractors, put `correct` on the balancer's letter."""
    if correct in distractors:
        raise ValueError(f"distractor equals the correct option {correct!r}")
    others = [distractors[i] for i in rng.permutation(len(distractors))]
    index = balancer.place(len(others) + 1, rng)
    options = others[:index] + [correct] + others[index:]
    return Choice(options, LETTERS[index])


def numeric_distractors(value: float, rng: np.random.Generator, count: int = 3, low: float = 0.25, high: float = 1.75, min_gap: float = 0.2, decimals: int = 1) -> list[float]:
    """`count` values in [low, high] x value, each at least `min_gap` (relative) from the truth and each other."""
    chosen: list[float] = []
    for _ in range(200):
        candidate = round(float(value * rng.uniform(low, high)), decimals)
        if all(abs(candidate - other) >= min_gap * max(abs(value), 1e-9) for other in [value, *chosen]):
            chosen.append(candidate)
            if len(chosen) == count:
                return chosen
    raise ValueError(f"could not draw {count} distractors for {value}")


def count_distractors(count: int, rng: np.random.Generator, n: int = 3) -> list[int]:
    """Counts near the truth (truth +- 1..3), never below zero."""
    pool = [c for c in range(max(0, count - 3), count + 4) if c != count]
    return sorted(int(c) for c in rng.choice(pool, size=min(n, len(pool)), replace=False))


def check_answer_form(options: dict) -> str:
    """The `answer_form` engine option ("letter" when absent), or a ValueError that names the bad value."""
    form = options.get("answer_form", "letter")
    if form not in ANSWER_FORMS:
        raise ValueError(f"answer_form {form!r}: expected one of {', '.join(ANSWER_FORMS)}")
    return form


def as_text_answer(sample: Sample) -> Sample:
    """A lettered multiple-choice sample in the name-answer form; samples of other answer types come back unchanged.

    "Options:\nA. bed\nB. sofa\n<letter instruction>" becomes "Options:\nbed\nsofa\n<TEXT_INSTRUCTION>", the
    answer `{"type": "text", "value": "sofa", "options": ["bed", "sofa"]}` and the reward `option_text`.
    """
    answer = sample.answer
    if answer.get("type") != "mc":
        return sample
    lettered = [str(option) for option in answer.get("options", [])]
    texts = [option.split(". ", 1)[1] if option[:1] in LETTERS and option[1:3] == ". " else "" for option in lettered]
    block = "Options:\n" + "\n".join(lettered) + "\n" + MC_INSTRUCTION
    if not lettered or "" in texts or block not in sample.question:
        raise ValueError(f"sample {sample.id} ({sample.skill}): its question does not hold its lettered options {lettered}")
    if len(set(texts)) != len(texts):
        raise ValueError(f"sample {sample.id} ({sample.skill}): options {texts} repeat a text; the name form needs distinct ones")
    value = texts[LETTERS.index(str(answer["value"]))]
    question = sample.question.replace(block, "Options:\n" + "\n".join(texts) + "\n" + TEXT_INSTRUCTION)
    turns = [Turn(turn.role, question if turn.role == "human" and turn.value == sample.question else
                  value if turn.role == "gpt" and turn.value == sample.response else turn.value)
             for turn in sample.conversations]
    return replace(sample, conversations=turns, answer={**answer, "type": "text", "value": value, "options": texts},
                   reward={"fn": "option_text"})
