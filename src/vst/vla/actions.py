"""Actions <-> tokens: quantile normalisation and OpenVLA / VST's uniform 256-bin tokenizer (spec vla.md §2.3-2.4).

- `QuantileNormalizer`: `a_n = (a - q01) / (q99 - q01 + 1e-6) * 2 - 1` on the dimensions whose `mask` is set (VST
  normalises all seven, gripper included: its statistics carry the gripper in RLDS' [0, 1] convention while LIBERO's
  HDF5 gripper is -1/+1, so -1 becomes -3, clipped to -1 by the tokenizer, and +1 stays +1; `unnormalize` then leaves
  the masked-off gripper as the network's value and the policy binarises it with `sign(2x - 1)`). Statistics are
  written in OpenVLA's `dataset_statistics.json` layout (`{"action": {mean, std, min, max, q01, q99, mask},
  "num_transitions", "num_trajectories"}`), the file VST ships per suite.
- `BinningTokenizer`: `bins = linspace(-1, 1, n)`, `d = digitize(clip(a, -1, 1), bins)` in 1..n, token
  `<|action_{n - d}|>` (VST's `ActionTokenizerV2`: added tokens, id = len(tokenizer) - d, so bin n is the first added
  token), decoded to the centre of bin `clip(d - 1, 0, n - 2)`; worst-case round-trip error half a bin. `chunk` K > 1
  predicts K steps at once, time-major (`[t0 d0..d6, t1 d0..d6, ...]`): the action-chunking switch of the stronger
  anchors (openpi, OpenVLA-OFT), from the same code as VST's single step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

ACTION_DIM = 7
EPS = 1e-6


def action_token(index: int) -> str:
    return f"<|action_{index}|>"


def action_tokens(n_bins: int = 256) -> list[str]:
    """The added tokens, in the order they are added (`<|action_0|>` first)."""
    return [action_token(i) for i in range(n_bins)]


@dataclass
class QuantileNormalizer:
    q01: np.ndarray
    q99: np.ndarray
    mask: np.ndarray  # which dimensions are (un)normalised
    stats: dict = field(default_factory=dict)  # the rest of the statistics file (mean, std, counts ...)

    def __post_init__(self):
        self.q01 = np.asarray(self.q01, dtype=np.float64)
        self.q99 = np.asarray(self.q99, dtype=np.float64)
        self.mask = np.asarray(self.mask, dtype=bool)
        if not (self.q01.shape == self.q99.shape == self.mask.shape) or self.q01.ndim != 1:
            raise ValueError(f"normalizer: q01 {self.q01.shape}, q99 {self.q99.shape} and mask {self.mask.shape} "
                             "must be equal 1-D shapes")

    @classmethod
    def fit(cls, actions: np.ndarray, mask: Sequence[bool] | None = None, n_trajectories: int = 0,
            gripper_01: bool = True) -> QuantileNormalizer:
        """Statistics of `actions` (N, D). `gripper_01` reproduces VST's statistics for the last dimension (RLDS'
        [0, 1] gripper range: q01 = 0, q99 = 1) while the data's gripper is LIBERO's -1/+1; `mask` defaults to
        OpenVLA's (all but the gripper)."""
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or len(actions) == 0:
            raise ValueError(f"normalizer: expected actions (N, D) with N > 0, got {actions.shape}")
        q01, q99 = np.quantile(actions, 0.01, axis=0), np.quantile(actions, 0.99, axis=0)
        stats = {"mean": actions.mean(0), "std": actions.std(0), "min": actions.min(0), "max": actions.max(0)}
        if gripper_01:  # VST's statistics keep RLDS' gripper range, whatever the data's (spec vla.md §2.3)
            q01[-1], q99[-1] = 0.0, 1.0
        if mask is None:
            mask = [True] * (actions.shape[1] - 1) + [False]
        extra = {key: value.tolist() for key, value in stats.items()}
        return cls(q01, q99, np.asarray(mask, dtype=bool),
                   {"action": extra, "num_transitions": int(len(actions)), "num_trajectories": int(n_trajectories)})

    def normalize(self, actions: np.ndarray) -> np.ndarray:
        """Every dimension, masked or not, as VST's `_normalize_quantile` (spec vla.md §2.3)."""
        actions = np.asarray(actions, dtype=np.float64)
        return (actions - self.q01) / (self.q99 - self.q01 + EPS) * 2.0 - 1.0

    def unnormalize(self, normalized: np.ndarray) -> np.ndarray:
        """`0.5 (a_n + 1)(q99 - q01) + q01` where `mask` is set; masked-off dimensions stay as given."""
        normalized = np.asarray(normalized, dtype=np.float64)
        restored = 0.5 * (normalized + 1.0) * (self.q99 - self.q01) + self.q01
        return np.where(self.mask, restored, normalized)

    def to_json(self) -> dict:
        action = dict(self.stats.get("action", {}))
        action.update({"q01": self.q01.tolist(), "q99": self.q99.tolist(), "mask": self.mask.tolist()})
        return {**{k: v for k, v in self.stats.items() if k != "action"}, "action": action,
                "proprio": self.stats.get("proprio", {})}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        temp = path.with_name(path.name + ".tmp")
        temp.write_text(json.dumps(self.to_json(), indent=1) + "\n")
        temp.replace(path)
        return path

    def with_proprio(self, states: np.ndarray) -> QuantileNormalizer:
        """Also fit statistics of the robot's state (N, S), kept under `proprio` (OpenVLA's key for them)."""
        states = np.asarray(states, dtype=np.float64)
        if states.ndim != 2 or len(states) == 0:
            raise ValueError(f"normalizer: expected states (N, S) with N > 0, got {states.shape}")
        fitted = {"q01": np.quantile(states, 0.01, axis=0), "q99": np.quantile(states, 0.99, axis=0),
                  "mean": states.mean(0), "std": states.std(0), "min": states.min(0), "max": states.max(0)}
        self.stats["proprio"] = {key: value.tolist() for key, value in fitted.items()}
        return self

    def proprio(self) -> QuantileNormalizer | None:
        """The state's statistics as a normaliser of every dimension, or None when the file has none."""
        stats = self.stats.get("proprio") or {}
        if "q01" not in stats or "q99" not in stats:
            return None
        return QuantileNormalizer(stats["q01"], stats["q99"], [True] * len(stats["q01"]))

    @classmethod
    def from_json(cls, payload: dict, where: str = "statistics") -> QuantileNormalizer:
        """OpenVLA's `dataset_statistics.json` (optionally keyed by dataset name, as OpenVLA writes it) or VST's
        `norm_stats_libero_*.json`."""
        if "action" not in payload and len(payload) == 1:
            payload = next(iter(payload.values()))
        try:
            action = payload["action"]
            mask = action.get("mask", [True] * (len(action["q01"]) - 1) + [False])
            return cls(action["q01"], action["q99"], mask, {k: v for k, v in payload.items()})
        except (KeyError, TypeError) as error:
            raise ValueError(f"{where}: action.{error.args[0] if error.args else '?'}: missing (expected OpenVLA's "
                             "dataset_statistics.json layout)") from None

    @classmethod
    def load(cls, path: str | Path) -> QuantileNormalizer:
        path = Path(path)
        try:
            payload = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error.msg})") from None
        return cls.from_json(payload, str(path))


@dataclass(frozen=True)
class BinningTokenizer:
    n_bins: int = 256
    dim: int = ACTION_DIM
    chunk: int = 1  # steps predicted per forward pass (VST: 1)

    @property
    def bins(self) -> np.ndarray:
        return np.linspace(-1.0, 1.0, self.n_bins)

    @property
    def centers(self) -> np.ndarray:
        bins = self.bins
        return (bins[:-1] + bins[1:]) / 2.0

    @property
    def n_tokens(self) -> int:
        """Tokens of one prediction: chunk × dim."""
        return self.chunk * self.dim

    def encode(self, normalized: np.ndarray) -> list[int]:
        """(chunk, dim) or (dim,) normalised actions -> local token indices k (the token is `<|action_k|>`)."""
        values = np.asarray(normalized, dtype=np.float64).reshape(-1)
        if values.size != self.n_tokens:
            raise ValueError(f"expected {self.n_tokens} action values (chunk {self.chunk} × {self.dim}), got {values.size}")
        digits = np.digitize(np.clip(values, -1.0, 1.0), self.bins)  # 1 .. n_bins
        return (self.n_bins - digits).astype(int).tolist()

    def decode(self, indices: Sequence[int]) -> np.ndarray:
        """Local token indices -> (chunk, dim) normalised actions at the bins' centres."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size != self.n_tokens:
            raise ValueError(f"expected {self.n_tokens} action tokens, got {indices.size}")
        digits = self.n_bins - indices
        return self.centers[np.clip(digits - 1, 0, self.n_bins - 2)].reshape(self.chunk, self.dim)

    def text(self, normalized: np.ndarray) -> str:
        """The assistant's answer: the action tokens, concatenated."""
        return "".join(action_token(k) for k in self.encode(normalized))

    def parse(self, text: str) -> list[int]:
        """Local indices of the action tokens in `text`, in order (anything else ignored)."""
        import re

        return [int(k) for k in re.findall(r"<\|action_(\d+)\|>", text) if int(k) < self.n_bins]


def state_text(state: np.ndarray, proprio: QuantileNormalizer, n_bins: int = 256) -> str:
    """The robot's state as prompt tokens: each dimension quantile-normalised and binned like an action, written
    with the same `<|action_k|>` tokens (one token per dimension; openpi's π0-FAST puts its binned state in the
    prompt the same way, as text)."""
    state = np.asarray(state, dtype=np.float64).reshape(-1)
    return BinningTokenizer(n_bins, dim=state.size).text(proprio.normalize(state))


def chunk_targets(actions: np.ndarray, chunk: int) -> np.ndarray:
    """(T, D) actions -> (T, chunk, D): step t's target is actions t .. t+chunk-1, the last action repeated past the
    episode's end (the convention of chunked policies, e.g. openpi)."""
    actions = np.asarray(actions)
    index = np.minimum(np.arange(len(actions))[:, None] + np.arange(chunk)[None, :], len(actions) - 1)
    return actions[index]
