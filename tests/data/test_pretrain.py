"""The tiny base's pretraining data (vst.data.pretrain): general, never spatial; seeded; answers true to the prompt."""

import io
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from vst.data import pretrain
from vst.data.choices import LETTERS, MC_INSTRUCTION
from vst.data.engine import EngineConfig, run
from vst.data.recipes import load_recipe
from vst.data.shards import read_samples
from vst.scene.generate import generate_scenes

N = 2000


@pytest.fixture(scope="module")
def rooms(tmp_path_factory, small_config):
    folder = tmp_path_factory.mktemp("base-rooms")
    generate_scenes(folder, 2, seed=11, config=small_config)
    return sorted(p for p in folder.iterdir() if (p / "scene.json").is_file())


@pytest.fixture(scope="module")
def base_samples(rooms):
    return pretrain.generate(N, 0, pretrain.Context(pretrain.room_frames(rooms)))


@pytest.fixture(scope="module")
def vst_p_questions(rooms, tmp_path_factory):
    """Questions of all 19 VST-P skills generated on the same rooms (the data the base must never see)."""
    out = tmp_path_factory.mktemp("vst-p")
    manifest = run(EngineConfig(scenes=rooms[0].parent, out=out, recipe=load_recipe("vst-p"), n=250, seed=0))
    return [s.question for s in read_samples([out / manifest["shard"]])]


def _stem(question: str) -> str:
    """The question without media placeholders, option lines and the shared multiple-choice instruction."""
    text = re.sub(r"<\|(image|video)_pad\|>", "", question).replace(MC_INSTRUCTION, "")
    text = re.sub(r"\n[A-H]\. [^\n]*", "", text).replace("Options:", "")
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


NAMES = re.compile(r"\b(" + "|".join(sorted(map(re.escape, pretrain.WORDS), key=len, reverse=True)) + r")\b")


def _ngrams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams of a stem with every vocabulary name replaced by one placeholder: template phrasing, not names."""
    words = NAMES.sub("<name>", text).split()
    grams = {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}
    return {gram for gram in grams if set(gram) != {"<name>"}}  # a run of names (a list) is no phrasing


def test_base_questions_never_ask_a_spatial_question(base_samples, vst_p_questions):
    words = pretrain.SPATIAL_PATTERN
    # the word list is a real filter: it flags every VST-P question of every skill
    assert len(vst_p_questions) > 150
    missed = [q for q in vst_p_questions if not words.search(_stem(q))]
    assert not missed, missed[:3]
    # and no base question (or answer) contains one of its words
    hits = [(s.skill, s.question) for s in base_samples if words.search(_stem(s.question))]
    assert not hits, hits[:3]
    # no five-word phrase of a VST-P template (names replaced) appears in a base question stem
    spatial = set().union(*(_ngrams(_stem(q)) for q in vst_p_questions))
    shared = {gram for s in base_samples for gram in _ngrams(_stem(s.question)) & spatial}
    assert not shared, sorted(shared)[:5]


def test_every_task_appears_and_same_seed_same_samples(base_samples, rooms):
    assert set(Counter(s.skill for s in base_samples)) == set(pretrain.TASKS)
    context = pretrain.Context(pretrain.room_frames(rooms))
    again = pretrain.generate(200, 0, context)
    assert [s.to_row() for s in again] == [s.to_row() for s in base_samples[:200]]  # sample i does not depend on n
    other = pretrain.generate(200, 1, context)
    assert [s.question for s in other] != [s.question for s in again]


def test_without_rooms_the_room_tasks_are_left_out():
    samples = pretrain.generate(400, 3, pretrain.Context())
    assert not {s.skill for s in samples} & set(pretrain.ROOM_TASKS)


def test_multiple_choice_answers_are_true_and_letters_uniform(base_samples):
    letters = Counter()
    for sample in base_samples:
        answer = sample.answer
        if answer["type"] != "mc":
            continue
        options = [o.split(". ", 1)[1] for o in answer["options"]]
        index = LETTERS.index(answer["value"])
        letters[len(options), answer["value"]] += 1
        assert sample.response.endswith(answer["value"])
        if sample.skill in ("option_says",):
            asked = re.search(r"(?:Which option says|Which option is|Find the option) ([a-z ]+)[?.]",
                              sample.question).group(1)
            assert options[index] == asked
        if sample.skill in ("group_member", "think_group"):
            group = re.search(r"Which option is an? ([a-z ]+)\?", sample.question).group(1)
            members = [o for o in options if o in pretrain.GROUPS[group]]
            assert members == [options[index]]
    for count in (2, 3, 4):
        observed = [letters[count, letter] for letter in LETTERS[:count]]
        assert min(observed) > 0.7 * sum(observed) / count, (count, observed)


def test_pictures_show_what_the_answer_says(base_samples):
    checked = 0
    for sample in base_samples:
        if sample.skill != "shape_colour":
            continue
        image = np.asarray(Image.open(io.BytesIO(sample.images[0].bytes)).convert("RGB")).reshape(-1, 3).astype(int)
        colour = pretrain.DRAW_COLORS[sample.answer["value"] if sample.answer["type"] == "text"
                                      else sample.answer["options"][LETTERS.index(sample.answer["value"])][3:]]
        assert (np.abs(image - colour).sum(axis=1) == 0).sum() > 30  # the shape's exact colour fills pixels
        checked += 1
    assert checked > 50


def test_option_drill_and_facts_bind_names_to_letters():
    rng = np.random.default_rng(5)
    for _ in range(50):
        drill = pretrain.option_drill(rng, pretrain.Context())
        options = dict(re.findall(r"\n([A-H])\. ([^\n]+)", drill.conversations[0].value))
        assert len(drill.conversations) >= 4
        for question, reply in zip(drill.conversations[::2], drill.conversations[1::2]):
            if "which option says" in question.value.lower():
                name = re.search(r"Which option says ([^?]+)\?", question.value).group(1)
                assert options[reply.value] == name
            else:
                letter = re.search(r"What does option ([A-H]) say\?", question.value).group(1)
                assert reply.value == options[letter]
        facts = pretrain.option_facts(rng, pretrain.Context())
        options = dict(re.findall(r"\n([A-H])\. ([^\n]+)", facts.question))
        for name, letter in re.findall(r"([a-z ]+?) is option ([A-H])\.", facts.response):
            assert options[letter] == name.strip()
