"""Rendering and scene-generation throughput at 448x448, each against a baseline run in the same process.

    python benchmarks/render.py            # or: make benchmark
    LP_NUM_THREADS=1 python benchmarks/render.py

Render-only (frames/s of `Renderer.render`, buffers read back to numpy):
  baseline  the spec's reference setup (data.md §3.1): 10 random boxes in a 6 x 5 x 2.8 m room, exact pass only
  exact     a furnished procedural room, exact pass (RGB + depth + ids, aliased)
  aa        the same plus the edge anti-aliasing pass that generation uses
Generation (frames/s including occlusion queries, visibility, JPEG/PNG encoding and atomic writes):
  baseline  every step one after another on one thread
  pipelined what `vst scenes generate` does: writer threads encode while the next frame renders
Prints a table, then one JSON line with the ratios. Each number is the best of `--repeats` timed runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vst.scene.capture import render_frames
from vst.scene.geometry import focal_from_fov, look_at
from vst.scene.mesh import scene_mesh
from vst.scene.procedural import ProceduralConfig, generate_layout
from vst.scene.render import Renderer
from vst.scene.types import OBB, Frame, Intrinsics, ObjectInstance, Room, Scene
from vst.scene.cameras import CameraConfig

SIZE = 448


def reference_scene(frames: int) -> Scene:
    rng = np.random.default_rng(0)
    objects = [
        ObjectInstance(instance_id=10 + i, category="box", box=OBB(center=(rng.uniform(-2.3, 2.3), rng.uniform(-1.8, 1.8), 0.4), size=tuple(rng.uniform(0.3, 0.8, 3)), rotation=np.eye(3).tolist()))
        for i in range(10)
    ]
    focal = focal_from_fov(70.0, SIZE)
    intrinsics = Intrinsics(fx=focal, fy=focal, cx=(SIZE - 1) / 2, cy=(SIZE - 1) / 2, width=SIZE, height=SIZE)
    poses = [look_at([2.6 * np.cos(a), 2.1 * np.sin(a), 1.5], [0, 0, 0.5]) for a in np.linspace(0, 2 * np.pi, frames, endpoint=False)]
    return Scene(
        scene_id="reference", source="benchmark", objects=objects,
        frames=[Frame(frame_id=f"f{i}", intrinsics=intrinsics, cam_to_world=p.tolist(), image_path="") for i, p in enumerate(poses)],
        room=Room(floor_polygon=[(-3, -2.5), (3, -2.5), (3, 2.5), (-3, 2.5)], ceiling_z=2.8, area_m2=30.0),
    )


def best_rate(run, frames: int, repeats: int) -> float:
    run()  # warm-up: shader compilation, framebuffer allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return frames / min(times)


def render_rate(renderer: Renderer, scene: Scene, repeats: int) -> float:
    renderer.set_mesh(scene_mesh(scene))
    return best_rate(lambda: [renderer.render(f.intrinsics, f.pose) for f in scene.frames], len(scene.frames), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=40, help="frames per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    config = ProceduralConfig(cameras=CameraConfig(n_stills=0, n_pairs=0, video_frames=(args.frames, args.frames)))
    room = generate_layout(np.random.default_rng([0, 4]), "benchmark-room", config)
    reference = reference_scene(args.frames)
    exact, antialiased = Renderer(antialias=False), Renderer(antialias=True)
    results = {
        "render_baseline_fps": render_rate(exact, reference, args.repeats),
        "render_exact_fps": render_rate(exact, room, args.repeats),
        "render_aa_fps": render_rate(antialiased, room, args.repeats),
    }
    antialiased.set_mesh(scene_mesh(room))
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "frames").mkdir()
        for name, threads in (("generation_baseline_fps", 0), ("generation_pipelined_fps", 2)):
            results[name] = best_rate(lambda: render_frames(antialiased, room, Path(folder), threads), len(room.frames), args.repeats)

    triangles = scene_mesh(room).triangle_count
    rows = [
        ("render baseline (spec §3.1 reference room)", results["render_baseline_fps"], 1.0),
        (f"render exact (procedural room, {triangles} triangles)", results["render_exact_fps"], results["render_exact_fps"] / results["render_baseline_fps"]),
        ("render + edge anti-aliasing pass (what generation uses)", results["render_aa_fps"], results["render_aa_fps"] / results["render_baseline_fps"]),
        ("generation baseline (sequential)", results["generation_baseline_fps"], 1.0),
        ("generation pipelined (vst scenes generate)", results["generation_pipelined_fps"], results["generation_pipelined_fps"] / results["generation_baseline_fps"]),
    ]
    print(f"448x448, {args.frames} frames per run, best of {args.repeats}; LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs")
    print(f"{'':52s} {'frames/s':>9s} {'ratio':>7s}")
    for name, rate, ratio in rows:
        print(f"{name:52s} {rate:9.1f} {ratio:7.2f}")
    summary = {k: round(v, 1) for k, v in results.items()}
    summary["render_exact_vs_baseline"] = round(results["render_exact_fps"] / results["render_baseline_fps"], 3)
    summary["generation_pipelined_vs_baseline"] = round(results["generation_pipelined_fps"] / results["generation_baseline_fps"], 3)
    print(json.dumps(summary))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
