"""ScanNet++ (`SRC/data/<scene_id>/` or `SRC/<scene_id>/`, spec data.md §2.2), iPhone stream + annotated mesh.

Read per scene (scannetpp/scannetpp: `common/scene_release.py` for the paths, `iphone/prepare_iphone_data.py` for the
frame and depth encodings, `semantic/prep/semantics_2d.py` for the boxes):
- `scans/mesh_aligned_0.05.ply` (z-up metres), `scans/segments.json` (`segIndices` per vertex),
  `scans/segments_anno.json` (`segGroups[]`: `objectId`, `label`, `segments`, `obb` {`centroid`, `axesLengths`,
  `normalizedAxes` (row-major; R = reshape(3, 3).T)}).
- `iphone/pose_intrinsic_imu.json`: `{"frame_000000": {"timestamp", "intrinsic" (3 x 3, for the 1920 x 1440 RGB),
  "pose", "aligned_pose" (4 x 4 camera-to-world in the mesh frame, OpenCV axes), "imu"}}`.
- Colour: `iphone/rgb/frame_%06d.jpg` when extracted by `prepare_iphone_data.py`, else decoded from `iphone/rgb.mkv`
  (PyAV, one sequential pass, only the frames the import needs).
- Depth: `iphone/depth/frame_%06d.png` (uint16 mm) when extracted, else `iphone/depth.bin` (256 x 192, its K is the
  RGB K scaled by 256 / 1920) in either encoding: one raw-deflate stream of float32 metres, or per-frame records
  `[uint32 little-endian size][lz4 block of uint16 mm]` (or a raw-deflate float32 frame). Both are read streaming.
Objects: instance id = objectId + 1, box from `obb`, masks from the mesh labelled by segment groups, re-rendered.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from vst.scene.importers.common import (read_json, ImportError_, ImportOptions, Intrinsics, LabelledMesh, RawFrame, RawScene,
                                        is_structure, obb_from_axes, plan_sequences, read_depth_png, read_mesh, read_rgb,
                                        readable_category, room_from_points, select_frames)
from vst.scene.types import ObjectInstance

LICENSE = "ScanNet++ Terms of Use (non-commercial research; no redistribution)"
DEPTH_WIDTH, DEPTH_HEIGHT = 256, 192  # depth.bin frames; the RGB is 1920 x 1440 (read from the frames or the video)


def _scene_dir(src: Path, scene_id: str) -> Path:
    for folder in (src / "data" / scene_id, src / scene_id):
        if (folder / "scans").is_dir():
            return folder
    raise ImportError_(f"{src}: no data/{scene_id}/scans folder")


def list_scenes(src: Path, options: ImportOptions | None = None) -> list[str]:
    root = src / "data" if (src / "data").is_dir() else src
    return sorted(p.name for p in root.iterdir() if (p / "scans" / "segments_anno.json").is_file()
                  and (p / "iphone" / "pose_intrinsic_imu.json").is_file())


def depth_bin_frames(path: Path, wanted: set[int], height: int = DEPTH_HEIGHT, width: int = DEPTH_WIDTH) -> dict[int, np.ndarray]:
    """Frames `wanted` of an iPhone `depth.bin` as float32 metres, read streaming in either known encoding."""
    frame_bytes = height * width * 4
    found: dict[int, np.ndarray] = {}
    with open(path, "rb") as handle:
        head = handle.read(4)
        handle.seek(0)
        size = int.from_bytes(head, "little") if len(head) == 4 else 0
        per_frame = 0 < size < frame_bytes * 2 and _looks_like_record(handle, size)
        handle.seek(0)
        if not per_frame:  # one raw-deflate stream of float32 metres
            inflater, buffer, index = zlib.decompressobj(wbits=-zlib.MAX_WBITS), b"", 0
            try:
                while chunk := handle.read(1 << 20):
                    buffer += inflater.decompress(chunk)
                    while len(buffer) >= frame_bytes:
                        if index in wanted:
                            found[index] = np.frombuffer(buffer[:frame_bytes], dtype=np.float32).reshape(height, width).copy()
                        buffer, index = buffer[frame_bytes:], index + 1
                    if len(found) == len(wanted):
                        break
            except zlib.error as error:
                raise ImportError_(f"{path}: neither a deflate stream of float32 frames nor lz4 records ({error})") from None
            return found
        index = 0
        while len(found) < len(wanted):
            head = handle.read(4)
            if len(head) < 4:
                break
            size = struct.unpack("<I", head)[0]
            if index not in wanted:
                handle.seek(size, 1)
            else:
                found[index] = _decode_record(handle.read(size), height, width, path, index)
            index += 1
    return found


def _looks_like_record(handle, size: int) -> bool:
    """Whether the file starts with a `[size][payload]` record (lz4 or deflate) rather than a deflate stream."""
    handle.seek(4)
    payload = handle.read(size)
    try:
        _decode_record(payload, DEPTH_HEIGHT, DEPTH_WIDTH, Path("?"), 0)
        return True
    except ImportError_:
        return False


def _decode_record(payload: bytes, height: int, width: int, path: Path, index: int) -> np.ndarray:
    import lz4.block

    try:
        data = lz4.block.decompress(payload, uncompressed_size=height * width * 2)
        return np.frombuffer(data, dtype=np.uint16).reshape(height, width).astype(np.float32) / 1000.0
    except (lz4.block.LZ4BlockError, ValueError):
        pass
    try:
        data = zlib.decompress(payload, wbits=-zlib.MAX_WBITS)
        return np.frombuffer(data, dtype=np.float32).reshape(height, width).copy()
    except (zlib.error, ValueError):
        raise ImportError_(f"{path}: depth record {index} is neither lz4 uint16 nor deflate float32") from None


class _Stream:
    """The colour and depth of the frames an import needs, decoded once, on first use, in one pass each."""

    def __init__(self, iphone: Path, wanted: set[int]):
        self.iphone, self.wanted = iphone, wanted
        self._rgb: dict[int, bytes] | None = None
        self._depth: dict[int, np.ndarray] | None = None

    def rgb(self, index: int) -> np.ndarray:
        extracted = self.iphone / "rgb" / f"frame_{index:06d}.jpg"
        if extracted.is_file():
            return read_rgb(extracted)
        if self._rgb is None:
            self._rgb = self._decode_video()
        if index not in self._rgb:
            raise ImportError_(f"{self.iphone / 'rgb.mkv'}: has no frame {index}")
        with Image.open(io.BytesIO(self._rgb[index])) as image:
            return np.asarray(image.convert("RGB"))

    def _decode_video(self) -> dict[int, bytes]:
        import av

        path, frames = self.iphone / "rgb.mkv", {}
        try:
            with av.open(str(path)) as container:
                for index, frame in enumerate(container.decode(video=0)):
                    if index in self.wanted:  # kept as JPEG: a 1920 x 1440 frame is 8 MB decoded
                        buffer = io.BytesIO()
                        frame.to_image().save(buffer, format="JPEG", quality=95)
                        frames[index] = buffer.getvalue()
                    if len(frames) == len(self.wanted):
                        break
        except (av.error.FFmpegError, OSError) as error:
            raise ImportError_(f"{path}: not a readable video ({error})") from None
        return frames

    def depth(self, index: int) -> np.ndarray:
        extracted = self.iphone / "depth" / f"frame_{index:06d}.png"
        if extracted.is_file():
            return read_depth_png(extracted)
        if self._depth is None:
            self._depth = depth_bin_frames(self.iphone / "depth.bin", self.wanted)
        if index not in self._depth:
            raise ImportError_(f"{self.iphone / 'depth.bin'}: has no frame {index}")
        return self._depth[index]


def _rgb_size(iphone: Path) -> tuple[int, int]:
    """(width, height) of the iPhone colour frames: the first extracted frame's, else the video stream's."""
    extracted = sorted((iphone / "rgb").glob("frame_*.jpg")) if (iphone / "rgb").is_dir() else []
    if extracted:
        with Image.open(extracted[0]) as image:
            return image.size
    import av

    try:
        with av.open(str(iphone / "rgb.mkv")) as container:
            stream = container.streams.video[0]
            return stream.codec_context.width, stream.codec_context.height
    except (av.error.FFmpegError, OSError, IndexError) as error:
        raise ImportError_(f"{iphone}: no rgb/frame_*.jpg and no readable rgb.mkv ({error})") from None


def read_scene(src: Path, scene_id: str, options: ImportOptions) -> RawScene:
    folder = _scene_dir(src, scene_id)
    vertices, faces, colors = read_mesh(folder / "scans" / "mesh_aligned_0.05.ply")
    segments = np.asarray(read_json(folder / "scans" / "segments.json").get("segIndices", []), dtype=np.int64)
    if len(segments) != len(vertices):
        raise ImportError_(f"{folder / 'scans' / 'segments.json'}: segIndices: {len(segments)} entries for {len(vertices)} vertices")
    anno_path = folder / "scans" / "segments_anno.json"
    vertex_ids = np.zeros(len(vertices), dtype=np.int32)
    objects = []
    for index, group in enumerate(read_json(anno_path).get("segGroups", [])):
        try:
            instance_id, label = int(group["objectId"]) + 1, str(group["label"])
            members = np.isin(segments, np.asarray(group["segments"], dtype=np.int64))
            obb = group["obb"]
            box = obb_from_axes(obb["centroid"], obb["axesLengths"], obb["normalizedAxes"])
        except (KeyError, TypeError, ValueError) as error:
            raise ImportError_(f"{anno_path}: segGroups[{index}]: {error}") from None
        vertex_ids[members] = instance_id
        category = readable_category(label)
        objects.append(ObjectInstance(instance_id=instance_id, category=category, raw_label=label, box=box,
                                      is_structure=is_structure(category)))
    iphone = folder / "iphone"
    poses = read_json(iphone / "pose_intrinsic_imu.json")
    rgb_width, rgb_height = _rgb_size(iphone)
    frames = []
    for key in sorted(poses):
        entry = poses[key]
        try:
            index = int(key.rsplit("_", 1)[1])
            k = np.asarray(entry["intrinsic"], dtype=np.float64).reshape(3, 3)
            pose = np.asarray(entry["aligned_pose"], dtype=np.float64).reshape(4, 4)
            timestamp = float(entry.get("timestamp", index / 60.0))
        except (KeyError, ValueError, IndexError) as error:
            raise ImportError_(f"{iphone / 'pose_intrinsic_imu.json'}: {key}: {error}") from None
        intrinsics = Intrinsics(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], width=rgb_width, height=rgb_height)
        scale = DEPTH_WIDTH / rgb_width
        depth_k = Intrinsics(fx=k[0, 0] * scale, fy=k[1, 1] * scale, cx=(k[0, 2] + 0.5) * scale - 0.5,
                             cy=(k[1, 2] + 0.5) * scale - 0.5, width=DEPTH_WIDTH, height=DEPTH_HEIGHT)
        frames.append(RawFrame(frame_id=f"{index:06d}", timestamp=timestamp, intrinsics=intrinsics, cam_to_world=pose,
                               rgb=lambda: None, depth_intrinsics=depth_k))
    # pick the frames here, so that the video and depth.bin are decoded once, for exactly those frames
    frames = select_frames(frames, options)
    needed = {int(frame.frame_id) for frame, *_ in plan_sequences(frames, options)} if frames else set()
    stream = _Stream(iphone, needed)
    for frame in frames:
        index = int(frame.frame_id)
        frame.rgb = lambda index=index: stream.rgb(index)
        frame.depth = lambda index=index: stream.depth(index)
    return RawScene(scene_id=scene_id, source="scannetpp", license=LICENSE, objects=objects, frames=frames,
                    mesh=LabelledMesh(vertices, faces, vertex_ids, colors), room=room_from_points(vertices), selected=True)
