"""Worst-case reward cost: every registered reward on adversarial responses (up to ~1 MB) beside the same reward on
a normal answer, in the same process. GRPO calls these on every rollout, so none may grow worse than linearly.

    python benchmarks/rewards.py            # prints one line per reward x input: ms per call, ratio to the normal
                                            # answer, and then one JSON line; exits 1 if a call takes > 50 ms

Inputs: 50,000 unclosed `<think>`, 1 MB of digits, a JSON list of 5,000 boxes, a map with 5,000 points per category,
1 MB of LaTeX-like text, and 1 MB of letters and spaces; then each again cut to just under the input cap
(`rewards.MAX_RESPONSE_CHARS`), the longest text a reward reads.
"""

from __future__ import annotations

import json
import sys
import time

from vst.common import rewards

BOX = {"bbox_3d": [0, 0, 3, 1, 1, 1, 0, 0, 0], "label": "chair"}
ANSWERS = {
    "format": None, "multiple_choice": {"value": "B"}, "yes_no": {"value": "yes"}, "numeric": {"value": 3.0},
    "mra": {"value": 3.0}, "math": {"value": "\\frac{1}{2}"}, "order": {"value": ["A", "B"]},
    "option_text": {"value": "chair", "options": ["chair", "table"]}, "exact": {"value": "chair"},
    "boxes3d": {"value": [BOX]}, "map": {"value": {"chair": [[1.0, 1.0]]}},
}
NORMAL = "<think>the chair is nearer</think> B"
ADVERSARIAL = {
    "unclosed_think": "<think>" * 50_000,
    "digits": "1" * 1_000_000,
    "boxes": json.dumps([BOX] * 5_000),
    "map_points": json.dumps({"chair": [[1.0, 1.0]] * 5_000}),
    "latex": "\\frac{" * 100_000 + "1}" * 100_000,
    "words": "A b " * 250_000,
}
ADVERSARIAL.update({f"{name}_capped": text[: rewards.MAX_RESPONSE_CHARS] for name, text in list(ADVERSARIAL.items())})
LIMIT_MS = 50.0


def per_call_ms(fn: str, response: str, answer, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        value = rewards.format_reward(response) if fn == "format" else rewards.score(fn, response, answer)
        best = min(best, time.perf_counter() - started)
        assert 0.0 <= value <= 1.0
    return best * 1000


def main() -> int:
    results, slow = {}, []
    for fn in sorted(rewards.REWARDS):
        answer = ANSWERS.get(fn, {"value": "x"})
        baseline = per_call_ms(fn, NORMAL, answer)
        for name, text in ADVERSARIAL.items():
            ms = per_call_ms(fn, text, answer, repeats=1)
            results[f"{fn}/{name}"] = round(ms, 2)
            print(f"{fn:16s} {name:15s} {ms:9.2f} ms  ({ms / max(baseline, 1e-3):8.0f} x a normal answer)")
            if ms > LIMIT_MS:
                slow.append(f"{fn}/{name}")
    print(json.dumps({"per_call_ms": results, "over_limit": slow, "limit_ms": LIMIT_MS}))
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(main())
