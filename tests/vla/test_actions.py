"""Action tokens and normalisation against hand-computed values (spec vla.md §2.3-2.4, §5.6 items 1-2)."""

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from vst.vla.actions import BinningTokenizer, QuantileNormalizer, action_token, chunk_targets, state_text

# VST's norm_stats_libero_spatial.json (Yangr116/VST prepare_data/vla/libero), spec vla.md §2.3.
SPATIAL_Q01 = [-0.7455, -0.6616, -0.9375, -0.1071, -0.2068, -0.1843, 0.0]
SPATIAL_Q99 = [0.9375, 0.8759, 0.9321, 0.1039, 0.1768, 0.1457, 1.0]
SPATIAL_MASK = [True] * 6 + [False]
HALF_BIN = 1.0 / 255  # bins = linspace(-1, 1, 256): width 2 / 255


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=7, max_size=7))
def test_round_trip_error_is_at_most_half_a_bin(values):
    tokenizer = BinningTokenizer()
    decoded = tokenizer.decode(tokenizer.encode(np.array(values)))[0]
    assert np.max(np.abs(decoded - values)) <= HALF_BIN + 1e-12


def test_token_indices_by_hand():
    tokenizer = BinningTokenizer()
    # -1 -> digitize 1 -> <|action_255|>; +1 (and beyond, clipped) -> digitize 256 -> <|action_0|>;
    # 0 lies in bin 128 (edges ±1/255 around it: edge 127 = -1/255, edge 128 = +1/255) -> index 256 - 128 = 128.
    assert tokenizer.encode([-1, 1, 5, -5, 0, 0.5, -0.5]) == [255, 0, 0, 255, 128, 256 - 192, 256 - 64]
    # the top index maps to the last centre, index 255 (digit 1) to the first
    centres = tokenizer.centers
    assert tokenizer.decode([0, 255, 128, 128, 128, 128, 128])[0, :3].tolist() == [centres[-1], centres[0], centres[127]]
    assert tokenizer.text([1, -1, 0, 0, 0, 0, 0]).startswith(action_token(0) + action_token(255) + action_token(128))
    assert tokenizer.parse("noise<|action_3|>x<|action_300|><|action_7|>") == [3, 7]


def test_chunked_tokens_are_time_major():
    tokenizer = BinningTokenizer(chunk=2)
    chunk = np.array([[1, 1, 1, 1, 1, 1, 1], [-1, -1, -1, -1, -1, -1, -1]], dtype=float)
    assert tokenizer.encode(chunk) == [0] * 7 + [255] * 7
    assert tokenizer.decode(tokenizer.encode(chunk)).shape == (2, 7)
    with pytest.raises(ValueError, match="14 action values"):
        tokenizer.encode(np.zeros(7))
    targets = chunk_targets(np.arange(3)[:, None] * np.ones((3, 7)), 3)
    assert targets[:, :, 0].tolist() == [[0, 1, 2], [1, 2, 2], [2, 2, 2]]  # the last action repeated past the end


def test_quantile_normalisation_and_the_gripper_quirk():
    normalizer = QuantileNormalizer(SPATIAL_Q01, SPATIAL_Q99, SPATIAL_MASK)
    raw = np.array([0.9375, -0.6616, 0.0, 0.0, 0.0, 0.0, -1.0])  # x at q99, y at q01, gripper open (-1)
    normalized = normalizer.normalize(raw)
    assert normalized[0] == pytest.approx(1.0, abs=1e-5) and normalized[1] == pytest.approx(-1.0, abs=1e-5)
    assert normalized[2] == pytest.approx((0 + 0.9375) / (0.9321 + 0.9375 + 1e-6) * 2 - 1)
    assert normalized[6] == pytest.approx(-3.0, abs=1e-5)  # LIBERO's -1 against RLDS' [0, 1] statistics
    tokens = BinningTokenizer().encode(normalized)
    assert tokens[6] == 255  # clipped to -1: the first bin
    centre = BinningTokenizer().decode(tokens)[0]
    restored = normalizer.unnormalize(centre)
    assert restored[6] == centre[6]  # masked off: left as the network's value
    assert np.sign(2 * restored[6] - 1) == -1  # binarised: open
    assert np.abs(restored[:6] - raw[:6]).max() <= HALF_BIN * (max(np.subtract(SPATIAL_Q99, SPATIAL_Q01)) / 2) + 1e-4
    close = BinningTokenizer().decode(BinningTokenizer().encode(normalizer.normalize(np.r_[np.zeros(6), 1.0])))[0, 6]
    assert np.sign(2 * close - 1) == 1


def test_fit_matches_numpy_quantiles_and_saves_openvla_layout(tmp_path):
    rng = np.random.default_rng(0)
    actions = np.c_[rng.normal(size=(500, 6)), rng.choice([-1.0, 1.0], 500)]
    normalizer = QuantileNormalizer.fit(actions, n_trajectories=5)
    assert np.allclose(normalizer.q01[:6], np.quantile(actions[:, :6], 0.01, axis=0))
    assert np.allclose(normalizer.q99[:6], np.quantile(actions[:, :6], 0.99, axis=0))
    assert (normalizer.q01[6], normalizer.q99[6]) == (0.0, 1.0)  # VST's gripper statistics
    assert normalizer.mask.tolist() == SPATIAL_MASK
    path = normalizer.save(tmp_path / "dataset_statistics.json")
    payload = json.loads(path.read_text())
    assert set(payload["action"]) >= {"q01", "q99", "mask", "mean", "std", "min", "max"}
    assert payload["num_transitions"] == 500 and payload["num_trajectories"] == 5
    again = QuantileNormalizer.load(path)
    assert np.array_equal(again.q01, normalizer.q01) and np.array_equal(again.mask, normalizer.mask)
    # OpenVLA writes the statistics keyed by dataset name; VST's files are the inner mapping
    keyed = tmp_path / "keyed.json"
    keyed.write_text(json.dumps({"libero_spatial_no_noops": payload}))
    assert np.array_equal(QuantileNormalizer.load(keyed).q99, normalizer.q99)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"action": {"q99": [1]}}))
    with pytest.raises(ValueError, match="bad.json: action.q01"):
        QuantileNormalizer.load(bad)


def test_proprio_statistics_are_saved_and_the_state_becomes_one_token_per_dimension(tmp_path):
    rng = np.random.default_rng(1)
    actions = np.c_[rng.normal(size=(300, 6)), rng.choice([-1.0, 1.0], 300)]
    states = np.c_[rng.uniform(-0.3, 0.3, (300, 3)), rng.normal(3.0, 0.1, (300, 3)), rng.uniform(0, 0.04, (300, 2))]
    normalizer = QuantileNormalizer.fit(actions).with_proprio(states)
    again = QuantileNormalizer.load(normalizer.save(tmp_path / "stats.json"))
    proprio = again.proprio()
    assert np.allclose(proprio.q01, np.quantile(states, 0.01, axis=0)) and proprio.mask.all()
    assert QuantileNormalizer.fit(actions).proprio() is None  # no statistics, no proprio
    # a state at or below q01 is the lowest bin (token 255), one above q99 the highest (token 0); one token a dimension
    assert state_text(proprio.q01, proprio) == action_token(255) * 8
    assert state_text(proprio.q99 + 1.0, proprio) == action_token(0) * 8
    # a state is recovered within half a bin of its normalised range
    state = states[17]
    indices = BinningTokenizer().parse(state_text(state, proprio))
    decoded = proprio.unnormalize(BinningTokenizer(dim=8).decode(indices)[0])
    clipped = np.clip(state, proprio.q01, proprio.q99)
    assert np.all(np.abs(decoded - clipped) <= HALF_BIN / 2 * (proprio.q99 - proprio.q01) + 1e-9)
