"""VST's VLA experiment at CPU scale (docs/vla.md): the same VLA recipe from `tiny-medium` (random weights) and from
the same model after the demo's spatial SFT, on scripted-expert demonstrations of LIBERO-Spatial task 0, evaluated
in closed loop on held-out initial states. Every step is a `vst` command and is skipped when its output exists.

    python benchmarks/vla_tiny_experiment.py --demos runs/vla/demos --out runs/vla-proprio224   # round 5, ~50 min
    python benchmarks/vla_tiny_experiment.py --out runs/vla-r3 image_size=112 image_max_pixels=12544 proprio=false
    python benchmarks/vla_tiny_experiment.py --out runs/vla-proprio224 --plot-only            # the figure again

Recipe (docs/vla.md, round 5): configs/train/tiny-cpu-vla.yaml with chunk=8 execute_steps=4 image_size=224
proprio=true max_steps=1200; the two arms train side by side (one thread each), then evaluate side by side. Extra
key=value arguments override it for both arms (round 3: 112 px, no state).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

RECIPE = ["chunk=8", "execute_steps=4", "image_size=224", "image_max_pixels=50176", "proprio=true", "max_steps=1200",
          "save_steps=400"]


def vst(*args: str) -> list[str]:
    return [sys.executable, "-m", "vst", *args]


def run_side_by_side(commands: list[list[str]]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen(command, env=env) for command in commands]
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"a command failed: {codes}")


def plot(out: Path, arms: dict[str, Path], figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4))
    for label, folder in arms.items():
        history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
        steps = [e["step"] for e in history if "loss" in e]
        ax.plot(steps, [e["loss"] for e in history if "loss" in e], label=label)
    results = {label: json.loads((out / f"eval-{label}" / "results.json").read_text())
               for label in arms if (out / f"eval-{label}" / "results.json").is_file()}
    title = "; ".join(f"{label}: {r['success']}/{r['episodes']} successes" for label, r in results.items())
    ax.set(xlabel="step", ylabel="loss (action tokens)", yscale="log", title=title or "training loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(figure, dpi=110)
    print(f"figure -> {figure}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/vla-proprio224"))
    parser.add_argument("--spatial-init", default="runs/demo/checkpoints/sft", help="the spatially tuned checkpoint")
    parser.add_argument("--episodes", type=int, default=40, help="expert demonstrations (initial states 0..N-1)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="held-out initial states N..N+M-1")
    parser.add_argument("--figure", type=Path, default=Path("docs/images/vla_tiny_proprio224.png"))
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument("--demos", type=Path, default=None, help="demonstrations to reuse (default: OUT/demos)")
    parser.add_argument("overrides", nargs="*", help="more key=value for both arms' training, e.g. proprio=true")
    args = parser.parse_args()
    out = args.out
    arms = {"scratch": out / "scratch", "spatial": out / "spatial"}
    if not args.plot_only:
        demos = args.demos or out / "demos"
        if not (demos / "collect.json").is_file():
            subprocess.run(vst("vla", "collect", "--suite", "libero_spatial", "--tasks", "0", "--episodes",
                               str(args.episodes), "--resolution", "128", "--workers", "2", "--out", str(demos)),
                           check=True)
        inits = {"scratch": "tiny-medium", "spatial": args.spatial_init}
        run_side_by_side([vst("train", "vla", "--config", "configs/train/tiny-cpu-vla.yaml", f"data=[{demos}]",
                              *RECIPE, *args.overrides, f"model_name_or_path={inits[label]}", f"output_dir={folder}")
                          for label, folder in arms.items() if not (folder / "vla.json").is_file()])
        run_side_by_side([vst("vla", "eval", "--model", str(folder), "--suite", "libero_spatial", "--tasks", "0",
                              "--start", str(args.episodes), "--episodes-per-task", str(args.eval_episodes),
                              "--out", str(out / f"eval-{label}")) for label, folder in arms.items()])
        subprocess.run(vst("vla", "compare", *(str(out / f"eval-{label}" / "results.json") for label in arms)),
                       check=True)
    plot(out, arms, args.figure)


if __name__ == "__main__":
    main()
