"""Data-engine throughput: samples/s for a recipe, end to end, beside the render + encode floor of the same scenes.

    python benchmarks/data_engine.py                      # default recipe vst-p, 4 scenes, 1000 samples
    python benchmarks/data_engine.py --scenes 8 --n 2000 --recipe vst-p
    python benchmarks/data_engine.py --workers 2                          # also the engine in 2 processes
    python benchmarks/data_engine.py --ray 1,2                            # also the engine on a local Ray with 1, 2 CPUs

Measured in one process, in this order and on the same scenes:
  floor      rendering + encoding of the scenes' frames (what `vst scenes generate` spends), frames/s
  engine     scenes on disk -> parquet shard (`vst data generate`), samples/s
  uncached   the engine again on a copy of the scenes without their stored videos (each run encodes them, as before
             the scene video cache), samples/s, and whether the shard is the same bytes
  end2end    (scene generation + engine) -> samples/s over both
  workers    with --workers N > 1: the engine again on the same scenes in N processes, samples/s, the speed-up over
             one process and whether the shard is byte-identical
  ray        with --ray N1,N2,...: the engine as Ray tasks on a local Ray started with N CPUs (Ray's start-up
             excluded), samples/s, speed-up and byte identity, and the hours for VST-P's 4.1 M samples on N cores
It also prints where engine time goes per skill (seconds), then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from vst.data.engine import EngineConfig, run
from vst.data.recipes import load_recipe
from vst.scene.generate import generate_scenes
from vst.scene.video import VIDEOS_DIR


def timed_skills() -> dict[str, float]:
    """Wrap every registered skill so the time spent inside its generator is accumulated per skill."""
    from vst.data.skills import SKILLS
    from vst.data.skills.registry import Skill

    spent: dict[str, float] = defaultdict(float)
    for name, skill in list(SKILLS.items()):
        def generate(ctx, rng, _inner=skill.generate, _name=name):
            iterator = _inner(ctx, rng)
            while True:
                start = time.perf_counter()
                try:
                    sample = next(iterator)
                except StopIteration:
                    spent[_name] += time.perf_counter() - start
                    return
                spent[_name] += time.perf_counter() - start
                yield sample

        SKILLS[name] = Skill(skill.name, skill.vst_skill, skill.modality, generate)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--recipe", default="vst-p")
    parser.add_argument("--workers", type=int, default=1, help="also time the engine in this many processes")
    parser.add_argument("--ray", default="", help="comma-separated CPU counts of local Ray instances to time, e.g. 1,2")
    args = parser.parse_args()
    recipe = load_recipe(args.recipe)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        start = time.perf_counter()
        scenes = generate_scenes(folder / "scenes", args.scenes, seed=123)
        scene_seconds = time.perf_counter() - start
        spent = timed_skills()
        start = time.perf_counter()
        manifest = run(EngineConfig(scenes=folder / "scenes", out=folder / "shards", recipe=recipe, n=args.n, seed=0))
        engine_seconds = time.perf_counter() - start
        spent = dict(spent)  # the first run's; the runs below are timed as a whole
        # baseline: the same scenes without the videos `vst scenes generate` stores, so every run encodes them again
        # (what the engine did before the scene video cache); the shard must be the same bytes
        shutil.copytree(folder / "scenes", folder / "uncached", ignore=shutil.ignore_patterns(VIDEOS_DIR))
        start = time.perf_counter()
        uncached = run(EngineConfig(scenes=folder / "uncached", out=folder / "uncached-shards", recipe=recipe, n=args.n, seed=0))
        uncached_seconds = time.perf_counter() - start
        uncached_same = (folder / "uncached-shards" / uncached["shard"]).read_bytes() == (folder / "shards" / manifest["shard"]).read_bytes()
        parallel = {}
        if args.workers > 1:
            start = time.perf_counter()
            again = run(EngineConfig(scenes=folder / "scenes", out=folder / "parallel", recipe=recipe, n=args.n, seed=0),
                        workers=args.workers)
            seconds = time.perf_counter() - start
            same = (folder / "parallel" / again["shard"]).read_bytes() == (folder / "shards" / manifest["shard"]).read_bytes()
            parallel = {"workers": args.workers, "workers_samples_per_s": round(again["rows"] / seconds, 1),
                        "workers_speedup": round(engine_seconds / seconds, 2), "workers_identical_bytes": same}
        ray_runs = {}
        for cpus in [int(c) for c in args.ray.split(",") if c]:
            import ray

            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
            ray.get([ray.remote(lambda: 0).remote() for _ in range(cpus)])  # workers up before the clock starts
            start = time.perf_counter()
            again = run(EngineConfig(scenes=folder / "scenes", out=folder / f"ray{cpus}", recipe=recipe, n=args.n, seed=0),
                        ray_address="auto")
            seconds = time.perf_counter() - start
            ray.shutdown()
            same = (folder / f"ray{cpus}" / again["shard"]).read_bytes() == (folder / "shards" / manifest["shard"]).read_bytes()
            rate = again["rows"] / seconds
            ray_runs[cpus] = {"samples_per_s": round(rate, 1), "speedup": round(engine_seconds / seconds, 2),
                              "identical_bytes": same, "hours_for_4_1M_samples": round(4.1e6 / rate / 3600, 1)}
        if ray_runs:
            parallel["ray"] = ray_runs
    samples = manifest["rows"]
    results = {
        "floor_frames_per_s": round(scenes.frames / scene_seconds, 1),
        "engine_samples_per_s": round(samples / engine_seconds, 1),
        "engine_uncached_samples_per_s": round(samples / uncached_seconds, 1),
        "video_cache_speedup": round(uncached_seconds / engine_seconds, 2), "video_cache_identical_bytes": uncached_same,
        "end_to_end_samples_per_s": round(samples / (scene_seconds + engine_seconds), 1),
        "samples": samples, "frames": scenes.frames, "scene_seconds": round(scene_seconds, 2), "engine_seconds": round(engine_seconds, 2),
        "skill_seconds": {k: round(v, 3) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}, **parallel,
    }
    print(f"recipe {recipe.name}: {samples} samples from {args.scenes} scenes ({scenes.frames} frames)")
    print(f"  floor: render + encode         {results['floor_frames_per_s']:8.1f} frames/s  ({scene_seconds:.1f} s)")
    print(f"  engine: scenes -> shard        {results['engine_samples_per_s']:8.1f} samples/s ({engine_seconds:.1f} s)")
    print(f"  engine, videos encoded per run {results['engine_uncached_samples_per_s']:8.1f} samples/s "
          f"(the scene video cache: {results['video_cache_speedup']:.2f}x; identical shard: {uncached_same})")
    print(f"  end to end                     {results['end_to_end_samples_per_s']:8.1f} samples/s")
    if parallel:
        print(f"  engine, {args.workers} processes            {parallel['workers_samples_per_s']:8.1f} samples/s "
              f"({parallel['workers_speedup']:.2f}x; identical shard: {parallel['workers_identical_bytes']})")
    for cpus, run_ in parallel.get("ray", {}).items():
        print(f"  engine, Ray with {cpus} CPU(s)        {run_['samples_per_s']:8.1f} samples/s ({run_['speedup']:.2f}x; "
              f"identical shard: {run_['identical_bytes']}; 4.1 M samples: {run_['hours_for_4_1M_samples']} h)")
    print(f"  skill generator time (s): {results['skill_seconds']}")
    print(f"  engine time outside skills (s): {engine_seconds - sum(spent.values()):.2f} (shard writing, scene loading)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
