"""Scan-import cost at real scale: re-rendering a ScanNet-sized labelled mesh for instance masks and occlusion.

    OMP_NUM_THREADS=2 python benchmarks/import_render.py            # 1 M vertices / 2 M faces, 10 frames of 640 x 480
    python benchmarks/import_render.py --grid 700 --frames 20 --size 320 240

A height-field mesh over an 8 x 8 m room (`--grid`² vertices, 50 instance ids) stands in for a ScanNet
`_vh_clean_2.ply` (0.5–1.5 M vertices). Times: building the render mesh from the labelled one
(`common.labelled_render_mesh`), uploading it, and per frame the render plus the per-instance occlusion queries that
`write_scene` runs (the import's dominant cost for mesh-based formats).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from vst.scene.importers.common import LabelledMesh, labelled_render_mesh
from vst.scene.render import Renderer
from vst.scene.types import Intrinsics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--grid", type=int, default=1000)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--size", type=int, nargs=2, default=(640, 480))
    args = parser.parse_args()
    n = args.grid
    xs = np.linspace(-4, 4, n)
    x, y = np.meshgrid(xs, xs)
    z = 0.3 * (np.sin(x * 3) * np.cos(y * 2) + 1)
    vertices = np.stack([x.ravel(), y.ravel(), z.ravel()], 1)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a = (i * n + j).ravel()
    faces = np.concatenate([np.stack([a, a + 1, a + n + 1], 1), np.stack([a, a + n + 1, a + n], 1)])
    ids = ((np.floor((x.ravel() + 4) / 1.1) * 7 + np.floor((y.ravel() + 4) / 1.1)) % 50 + 1).astype(np.int32)
    start = time.perf_counter()
    mesh = labelled_render_mesh(LabelledMesh(vertices, faces, ids, None))
    build = time.perf_counter() - start
    renderer = Renderer(antialias=False)
    start = time.perf_counter()
    renderer.set_mesh(mesh)
    upload = time.perf_counter() - start
    width, height = args.size
    fx = width / 2 / np.tan(np.radians(35))
    k = Intrinsics(fx=fx, fy=fx, cx=(width - 1) / 2, cy=(height - 1) / 2, width=width, height=height)
    seconds, visible = [], []
    for angle in np.linspace(0, 6, args.frames):
        eye = np.array([3 * np.cos(angle), 3 * np.sin(angle), 1.6])
        forward = -eye + [0, 0, 0.3]
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([right, np.cross(forward, right), forward], 1)
        pose[:3, 3] = eye
        start = time.perf_counter()
        out = renderer.render(k, pose)
        ids_seen = [int(v) for v in np.unique(out.instance_ids) if v > 0]
        renderer.unoccluded_pixels(k, pose, ids_seen)
        seconds.append(time.perf_counter() - start)
        visible.append(len(ids_seen))
    renderer.release()
    result = {"vertices": len(vertices), "faces": len(faces), "mesh_build_s": round(build, 2), "upload_s": round(upload, 2),
              "frame_s": round(float(np.mean(seconds)), 3), "visible_instances": round(float(np.mean(visible)), 1),
              "size": [width, height]}
    print(f"{len(vertices) / 1e6:.1f} M vertices, {len(faces) / 1e6:.1f} M faces: build {build:.1f} s, upload {upload:.1f} s, "
          f"{result['frame_s']:.2f} s per {width} x {height} frame ({result['visible_instances']} visible instances)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
