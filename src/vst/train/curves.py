"""Training curves: one PNG panel per logged metric (x = optimizer step), raw values plus a smoothed line.

Reads what the trainer logs: `trainer_state.json` (`log_history`, written by `train_sft` / `train_rl`), the state
dict itself, or the `log_history` list. Drawn with matplotlib's object API (no pyplot, so no global backend state).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

SFT_KEYS = ("loss", "grad_norm", "learning_rate")
RL_KEYS = ("loss", "reward", "reward_std", "completions/mean_length")
SCHEDULES = ("learning_rate",)  # set, not measured: drawn as is, without a smoothed line
PANEL_INCHES = (4.0, 3.0)
DPI = 100


def log_history(source: str | Path | dict | Sequence[dict]) -> list[dict]:
    """The list of log entries of a `trainer_state.json` path, a trainer-state dict or the list itself."""
    if isinstance(source, (str, Path)):
        source = json.loads(Path(source).read_text())
    if isinstance(source, dict):
        if "log_history" not in source:
            raise ValueError("trainer state: log_history: missing")
        source = source["log_history"]
    return list(source)


def series(history: Sequence[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `key` over the entries that logged a finite number for it, in log order."""
    steps, values = [], []
    for entry in history:
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            steps.append(int(entry.get("step", len(steps) + 1)))
            values.append(float(value))
    return steps, values


def smooth(values: Sequence[float], weight: float = 0.6) -> list[float]:
    """Exponential moving average with TensorBoard's debiasing (the first points are not pulled towards 0)."""
    out, average = [], 0.0
    for count, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight**count))
    return out


def logged_keys(history: Sequence[dict], keys: Sequence[str]) -> list[str]:
    """The `keys` that have at least one finite value in `history`, in the given order."""
    return [key for key in keys if series(history, key)[0]]


def plot_history(source: str | Path | dict | Sequence[dict], out_png: str | Path,
                 keys: Sequence[str] = ("loss",), smoothing: float = 0.6) -> Path:
    """Write one row of panels, one per key of `keys` that was logged (missing keys are skipped), to `out_png`:
    raw values and their EMA (`smooth`), or the values alone for a schedule such as the learning rate.

    Each panel is PANEL_INCHES at DPI, so the image is (400 * panels) x 300 pixels; the PNG's `Description` text
    chunk lists the panels' keys, comma-separated. Raises ValueError when none of `keys` was logged.
    """
    from matplotlib.figure import Figure

    history = log_history(source)
    present = logged_keys(history, keys)
    if not present:
        raise ValueError(f"none of {list(keys)} is logged in the trainer history")
    width, height = PANEL_INCHES
    figure = Figure(figsize=(width * len(present), height), dpi=DPI, layout="constrained")
    for axis, key in zip(figure.subplots(1, len(present), squeeze=False)[0], present):
        steps, values = series(history, key)
        if key in SCHEDULES:
            axis.plot(steps, values, color="tab:blue", linewidth=2)
        else:
            axis.plot(steps, values, color="tab:blue", alpha=0.35, linewidth=1, label="raw")
            axis.plot(steps, smooth(values, smoothing), color="tab:blue", linewidth=2, label=f"EMA {smoothing}")
        axis.set_title(key)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if key == "learning_rate":
            axis.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    if present[0] not in SCHEDULES:
        figure.axes[0].legend(fontsize="small")
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=DPI, metadata={"Description": ",".join(present)})
    return out
