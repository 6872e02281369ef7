"""Multiple-choice letter balance: per option count in LetterBalancer, and uniform letters in a generated shard; the
name-answer form (`answer_form: text`) carries the same questions and truths as the lettered one."""

import inspect
from collections import Counter, defaultdict

import numpy as np
import pytest
from scipy.stats import chisquare

from vst.common.rewards import score
from vst.data.choices import LETTERS, MC_INSTRUCTION, TEXT_INSTRUCTION, LetterBalancer, as_text_answer, multiple_choice
from vst.data.engine import EngineConfig, run
from vst.data.recipes import Recipe
from vst.data.shards import read_samples
from vst.data.skills import SKILLS
from vst.scene.generate import generate_scenes

SCENES = 10
PER_SCENE = 40  # per skill: the rarer skills run out of questions before this
MIN_PER_LETTER = 5  # chi-square needs about 5 expected per cell
# the mixes of option counts the letter bug showed in: 2- and 4-option forms of one stream (issue 12 item 5)
MUST_CHECK = {("mi_object_object", 2), ("mi_object_object", 4), ("video_object_object", 2), ("video_object_object", 3),
              ("video_object_object", 4)}


def mc_skills() -> list[str]:
    """Skills whose module builds lettered options (every "mc" answer comes from `choices.multiple_choice`)."""
    return sorted(name for name, spec in SKILLS.items() if "multiple_choice(" in inspect.getsource(inspect.getmodule(spec.generate)))


def test_letter_balancer_balances_each_option_count_on_its_own():
    rng = np.random.default_rng(0)
    balancer = LetterBalancer()
    counts = [2] * 40 + [4] * 40 + [3] * 30
    placed = defaultdict(Counter)
    for count in rng.permutation(counts):  # 2-, 3- and 4-option questions interleaved in one stream
        index = balancer.place(int(count), rng)
        placed[int(count)][LETTERS[index]] += 1
        assert max(placed[int(count)].values()) - min(placed[int(count)][x] for x in LETTERS[:count]) <= 1  # at every step
    assert placed[2] == {"A": 20, "B": 20}
    assert placed[3] == {"A": 10, "B": 10, "C": 10}
    assert placed[4] == {"A": 10, "B": 10, "C": 10, "D": 10}
    assert balancer.counts(4) == placed[4] and balancer.counts(2) == placed[2]
    # strictly alternating 2 and 4 options: a shared count would put every 4-option answer on C or D
    alternating, fours = LetterBalancer(), Counter()
    for _ in range(20):
        alternating.place(2, rng)
        fours[LETTERS[alternating.place(4, rng)]] += 1
    assert fours == {"A": 5, "B": 5, "C": 5, "D": 5}
    with pytest.raises(ValueError, match="option count 9"):
        balancer.place(9, rng)


def test_multiple_choice_puts_the_answer_on_the_balanced_letter():
    rng, balancer = np.random.default_rng(1), LetterBalancer()
    letters = Counter()
    for k in range(8):
        choice = multiple_choice("right", ["w1", "w2", "w3"], balancer, rng)
        assert choice.options[LETTERS.index(choice.letter)] == "right" and sorted(choice.options) == ["right", "w1", "w2", "w3"]
        letters[choice.letter] += 1
        multiple_choice("yes", ["no"], balancer, rng)  # a 2-option question in between changes nothing for the 4-option ones
    assert letters == {"A": 2, "B": 2, "C": 2, "D": 2}


@pytest.fixture(scope="module")
def mc_shard(tmp_path_factory, small_config):
    """Samples of every multiple-choice skill over SCENES small procedural scenes, read back from one shard."""
    scenes, out = tmp_path_factory.mktemp("mc-scenes"), tmp_path_factory.mktemp("mc-shard")
    generate_scenes(scenes, SCENES, seed=1, config=small_config)
    skills = mc_skills()
    manifest = run(EngineConfig(scenes=scenes, out=out, recipe=Recipe("mc", {s: 1.0 for s in skills}),
                                n=SCENES * PER_SCENE * len(skills), seed=0))
    return skills, list(read_samples([out / manifest["shard"]]))


def test_mc_letters_are_uniform_per_skill_and_option_count(mc_shard):
    skills, samples = mc_shard
    assert set(skills) >= {s for s, _ in MUST_CHECK} and len(skills) >= 8
    letters = defaultdict(Counter)
    for sample in samples:
        if sample.answer["type"] == "mc":
            options = len(sample.answer["options"])
            assert sample.answer["value"] in LETTERS[:options]
            letters[sample.skill, options][sample.answer["value"]] += 1
    assert {skill for skill, _ in letters} == set(skills)  # every such skill did produce lettered answers
    checked = {}
    for (skill, options), counter in sorted(letters.items()):
        observed = [counter[letter] for letter in LETTERS[:options]]
        if sum(observed) < MIN_PER_LETTER * options:
            continue
        checked[skill, options] = chisquare(observed).pvalue
        assert checked[skill, options] > 1e-3, f"{skill}, {options} options: letters {dict(counter)} are not uniform"
    assert MUST_CHECK <= set(checked) and {skill for skill, _ in checked} == set(skills), sorted(checked)


def test_text_form_keeps_the_question_and_the_truth_of_every_lettered_sample(mc_shard):
    _, samples = mc_shard
    lettered = [sample for sample in samples if sample.answer["type"] == "mc"]
    assert len(lettered) > 100
    for sample in lettered:
        text = as_text_answer(sample)
        options = [option.split(". ", 1)[1] for option in sample.answer["options"]]
        truth = options[LETTERS.index(sample.answer["value"])]
        assert text.answer == {**sample.answer, "type": "text", "value": truth, "options": options}
        assert text.response == truth and text.reward == {"fn": "option_text"}
        # the question up to the options is unchanged; the options lose their letters, in the same order
        head = sample.question.split("\nOptions:\n")[0]
        assert text.question == head + "\nOptions:\n" + "\n".join(options) + "\n" + TEXT_INSTRUCTION
        assert MC_INSTRUCTION not in text.question and (text.id, text.images, text.meta_info) == (sample.id, sample.images, sample.meta_info)
        # the option_text reward gives the truth full marks and every other option none
        assert score("option_text", truth, text.answer) == 1.0
        assert all(score("option_text", other, text.answer) == 0.0 for other in options if other != truth)
    others = [sample for sample in samples if sample.answer["type"] != "mc"]
    assert others and all(as_text_answer(sample) is sample for sample in others)


def test_text_form_refuses_a_sample_whose_question_lacks_its_options(mc_shard):
    from dataclasses import replace

    sample = next(s for s in mc_shard[1] if s.answer["type"] == "mc")
    with pytest.raises(ValueError, match=sample.id):
        as_text_answer(replace(sample, answer={**sample.answer, "options": ["A. not", "B. there"]}))


def test_engine_answer_form_text_changes_only_the_lettered_samples(tmp_path, small_config):
    generate_scenes(tmp_path / "scenes", 2, seed=3, config=small_config)
    recipe = Recipe("mix", {"si_depth_comparison": 1.0, "mi_object_object": 1.0, "si_distance": 1.0})
    shards = {}
    for form in ("letter", "text"):
        options = {} if form == "letter" else {"answer_form": form}
        manifest = run(EngineConfig(scenes=tmp_path / "scenes", out=tmp_path / form, recipe=recipe, n=60, seed=0, options=options))
        shards[form] = list(read_samples([tmp_path / form / manifest["shard"]]))
    assert [s.id for s in shards["letter"]] == [s.id for s in shards["text"]]
    assert not any(s.answer["type"] == "mc" for s in shards["text"])
    changed = 0
    for letter, text in zip(shards["letter"], shards["text"]):
        assert text == as_text_answer(letter)
        changed += text != letter
    assert changed >= 10
    with pytest.raises(ValueError, match="answer_form 'word'"):
        run(EngineConfig(scenes=tmp_path / "scenes", out=tmp_path / "bad", recipe=recipe, n=6, seed=0, options={"answer_form": "word"}))


def test_recipe_options_name_the_file_and_reach_the_manifest(tmp_path, small_config):
    from vst.data.recipes import load_recipe

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nskills: {si_depth_comparison: 1}\noptions: {answer_form: word}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: options.answer_form 'word'"):
        load_recipe(str(bad))
    good = tmp_path / "text.yaml"
    good.write_text("name: text\nskills: {si_depth_comparison: 1}\noptions: {answer_form: text}\n")
    recipe = load_recipe(str(good))
    generate_scenes(tmp_path / "scenes", 1, seed=3, config=small_config)
    manifest = run(EngineConfig(scenes=tmp_path / "scenes", out=tmp_path / "out", recipe=recipe, n=6, seed=0))
    assert manifest["options"] == {"answer_form": "text"}
    assert all(s.answer["type"] != "mc" for s in read_samples([tmp_path / "out" / manifest["shard"]]))
    plain = EngineConfig(scenes=tmp_path / "scenes", out=tmp_path / "x", recipe=Recipe("text", recipe.weights), n=6)
    assert EngineConfig(scenes=tmp_path / "scenes", out=tmp_path / "x", recipe=recipe, n=6).fingerprint() != plain.fingerprint()
