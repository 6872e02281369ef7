"""Robot episodes: read LIBERO's HDF5 and LeRobot v3 datasets, write LIBERO's HDF5, and turn episodes into Samples.

Layouts (read from tiny fixtures written in these layouts by tests/vla/test_data.py):
- **LIBERO HDF5** (Lifelong-Robot-Learning/LIBERO `scripts/create_dataset.py`; OpenVLA's
  `experiments/robot/libero/regenerate_libero_dataset.py` keeps it): one `{task}_demo.hdf5` per task; group `data`
  with attributes `problem_info` (JSON, `language_instruction`), `env_args` (JSON), `bddl_file_name`, `num_demos`,
  `total`; per episode `data/demo_{i}/` with `actions` (T, 7) float64, `obs/agentview_rgb` (T, H, W, 3) uint8
  upside down (robosuite's OpenGL image convention), `obs/eye_in_hand_rgb`, `obs/ee_states` (T, 6: position +
  axis-angle), `obs/gripper_states` (T, 2), `obs/joint_states` (T, 7), `states` (flattened MuJoCo states),
  `rewards`, `dones`, attribute `num_samples`. The instruction is `problem_info.language_instruction`, else the
  file name's words after the `SCENE<n>` token (VST's `prepare_data/vla/libero`).
- **LeRobot v3** (huggingface/lerobot `src/lerobot/datasets/utils.py`, `CODEBASE_VERSION = "v3.0"`):
  `meta/info.json` (`fps`, `features`, `data_path`, `video_path` templates), `meta/tasks.parquet` (task string ->
  `task_index`), `meta/episodes/chunk-XXX/file-YYY.parquet` (one row per episode: `episode_index`, `length`,
  `dataset_from_index`, `dataset_to_index`, `data/chunk_index`, `data/file_index`, and per video key
  `videos/{key}/chunk_index|file_index|from_timestamp|to_timestamp`), `data/chunk-XXX/file-YYY.parquet` (one row
  per frame: `timestamp`, `frame_index`, `episode_index`, `index`, `task_index`, `action`, `observation.state`,
  image features as `{bytes, path}` structs) and `videos/{key}/chunk-XXX/file-YYY.mp4` (many episodes per file).
  LIBERO's LeRobot datasets (`lerobot/libero`, openpi's conversion) hold frames already turned upright.

`episode_samples` makes one `Sample` per kept step (VST's `preprocess_vla.py`): the agentview image turned 180°
(`upright`), resized to `image_size`, PNG; the question `What action should the robot take to {instruction}?`; the
answer, the action tokens of the normalised action (or chunk); `meta_info` with the normalised and raw action.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

PROMPT = "What action should the robot take to {instruction}?"
NOOP_THRESHOLD = 1e-4


@dataclass
class Episode:
    instruction: str
    images: np.ndarray  # (T, H, W, 3) uint8, the third-person camera
    actions: np.ndarray  # (T, 7): delta position (3), delta rotation (3), gripper (-1 open, +1 close)
    states: np.ndarray | None = None  # (T, 8) eef position, axis-angle, gripper joints
    joints: np.ndarray | None = None  # (T, 7)
    wrist: np.ndarray | None = None  # (T, H, W, 3) uint8
    sim_states: np.ndarray | None = None  # (T, S) flattened MuJoCo states
    upright: bool = False  # images already turned 180° from LIBERO's render (LeRobot's LIBERO data is)
    source: str = ""  # file and episode, for error messages
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.images = np.asarray(self.images)
        self.actions = np.asarray(self.actions, dtype=np.float64)
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"{self.source}: images: expected (T, H, W, 3) uint8, got {self.images.shape} "
                             f"{self.images.dtype}")
        if self.actions.ndim != 2 or len(self.actions) != len(self.images):
            raise ValueError(f"{self.source}: actions: expected ({len(self.images)}, D), got {self.actions.shape}")

    def __len__(self) -> int:
        return len(self.actions)

    def select(self, keep: np.ndarray) -> Episode:
        """The episode restricted to the steps in `keep` (indices or a boolean mask)."""
        pick = (lambda a: None if a is None else np.asarray(a)[keep])
        return Episode(self.instruction, self.images[keep], self.actions[keep], pick(self.states), pick(self.joints),
                       pick(self.wrist), pick(self.sim_states), self.upright, self.source, dict(self.meta))


def upright(image: np.ndarray) -> np.ndarray:
    """LIBERO's upside-down render turned 180° (`img[::-1, ::-1]`, VST and OpenVLA)."""
    return np.ascontiguousarray(np.asarray(image)[::-1, ::-1])


def noop_mask(actions: np.ndarray, threshold: float = NOOP_THRESHOLD) -> np.ndarray:
    """True for the steps to keep: OpenVLA's regeneration drops a step whose first six values have norm below
    `threshold` and whose gripper equals the previous action's (the first step: when it is all but zero)."""
    actions = np.asarray(actions, dtype=np.float64)
    still = np.linalg.norm(actions[:, :6], axis=1) < threshold
    same_gripper = np.ones(len(actions), dtype=bool)
    same_gripper[1:] = actions[1:, -1] == actions[:-1, -1]
    return ~(still & same_gripper)


# ---------------------------------------------------------------------------------------------------------------
# LIBERO HDF5


def instruction_from_filename(path: str | Path) -> str:
    """`KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5` -> "turn on the stove" (the words after the SCENE token)."""
    stem = Path(path).name
    stem = stem[: -len("_demo.hdf5")] if stem.endswith("_demo.hdf5") else Path(stem).stem
    words = stem.split("_")
    scene = [i for i, word in enumerate(words) if re.fullmatch(r"SCENE\d+", word)]
    return " ".join(words[scene[-1] + 1:] if scene else words).lower()


def _h5py():
    try:
        import h5py
    except ImportError:
        raise RuntimeError("reading LIBERO HDF5 needs h5py: pip install 'vst[vla]'") from None
    return h5py


def read_libero_hdf5(path: str | Path, camera: str = "agentview_rgb", with_wrist: bool = False) -> Iterator[Episode]:
    """The episodes of one LIBERO `*_demo.hdf5`, in `demo_{i}` order."""
    h5py = _h5py()
    path = Path(path)
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path}: not a readable HDF5 file ({error})") from None
    with handle:
        if "data" not in handle:
            raise ValueError(f"{path}: data: missing (expected LIBERO's data/demo_i groups)")
        data = handle["data"]
        instruction = None
        if "problem_info" in data.attrs:
            try:
                instruction = json.loads(data.attrs["problem_info"]).get("language_instruction")
            except (json.JSONDecodeError, TypeError, AttributeError):
                instruction = None
        instruction = (instruction or instruction_from_filename(path)).strip().lower()
        names = sorted((k for k in data.keys() if k.startswith("demo_")), key=lambda k: int(k.split("_")[1]))
        for name in names:
            demo, where = data[name], f"{path}:data/{name}"
            for key in ("actions", f"obs/{camera}"):
                if key not in demo:
                    raise ValueError(f"{where}: {key}: missing")
            obs = demo["obs"]
            states = None
            if "ee_states" in obs and "gripper_states" in obs:
                states = np.concatenate([obs["ee_states"][()], obs["gripper_states"][()]], axis=1).astype(np.float32)
            yield Episode(
                instruction, obs[camera][()], demo["actions"][()], states,
                obs["joint_states"][()] if "joint_states" in obs else None,
                obs["eye_in_hand_rgb"][()] if with_wrist and "eye_in_hand_rgb" in obs else None,
                demo["states"][()] if "states" in demo else None, upright=False, source=where)


def write_libero_hdf5(path: str | Path, episodes: Sequence[Episode], problem_name: str = "",
                      bddl_file_name: str = "", env_name: str = "") -> Path:
    """Write `episodes` of one task in LIBERO's layout, atomically (a temporary name, then a rename)."""
    h5py = _h5py()
    path = Path(path)
    if not episodes:
        raise ValueError(f"{path}: no episodes to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    with h5py.File(temp, "w") as handle:
        data = handle.create_group("data")
        data.attrs["env_name"] = env_name
        data.attrs["problem_info"] = json.dumps({"problem_name": problem_name, "domain_name": "robosuite",
                                                  "language_instruction": episodes[0].instruction})
        data.attrs["bddl_file_name"] = bddl_file_name
        data.attrs["env_args"] = json.dumps({"type": 1, "env_name": env_name, "problem_name": problem_name,
                                              "bddl_file": bddl_file_name, "env_kwargs": {}})
        data.attrs["macros_image_convention"] = "opengl"
        total = 0
        for i, episode in enumerate(episodes):
            demo = data.create_group(f"demo_{i}")
            obs = demo.create_group("obs")
            obs.create_dataset("agentview_rgb", data=episode.images)
            if episode.wrist is not None:
                obs.create_dataset("eye_in_hand_rgb", data=episode.wrist)
            if episode.states is not None:
                obs.create_dataset("ee_states", data=episode.states[:, :6].astype(np.float64))
                obs.create_dataset("ee_pos", data=episode.states[:, :3].astype(np.float64))
                obs.create_dataset("ee_ori", data=episode.states[:, 3:6].astype(np.float64))
                obs.create_dataset("gripper_states", data=episode.states[:, 6:8].astype(np.float64))
            if episode.joints is not None:
                obs.create_dataset("joint_states", data=episode.joints.astype(np.float64))
            demo.create_dataset("actions", data=episode.actions.astype(np.float64))
            if episode.sim_states is not None:
                demo.create_dataset("states", data=episode.sim_states)
            ends = np.zeros(len(episode), dtype=np.uint8)
            ends[-1] = 1
            demo.create_dataset("rewards", data=ends)
            demo.create_dataset("dones", data=ends)
            demo.attrs["num_samples"] = len(episode)
            for key, value in episode.meta.items():
                demo.attrs[key] = value
            total += len(episode)
        data.attrs["num_demos"] = len(episodes)
        data.attrs["total"] = total
    temp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------------------------
# LeRobot v3

LEROBOT_CAMERAS = ("observation.images.image", "observation.images.agentview", "observation.images.front", "image")


def _read_table(path: Path):
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ValueError(f"{path}: missing")
    return pq.read_table(path)


def _lerobot_tasks(root: Path) -> dict[int, str]:
    table = _read_table(root / "meta" / "tasks.parquet").to_pandas()
    if "task" not in table.columns:
        table = table.reset_index()
        table = table.rename(columns={table.columns[0]: "task"})
    if "task_index" not in table.columns:
        raise ValueError(f"{root / 'meta' / 'tasks.parquet'}: task_index: missing")
    return {int(i): str(t) for i, t in zip(table["task_index"], table["task"])}


class _VideoFrames:
    """Decoded frames of the mp4 files of a LeRobot dataset, one file in memory at a time."""

    def __init__(self):
        self.path, self.frames, self.times = None, None, None

    def get(self, path: Path, timestamps: np.ndarray) -> np.ndarray:
        import av

        if path != self.path:
            if not path.is_file():
                raise ValueError(f"{path}: missing")
            frames, times = [], []
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                for frame in container.decode(stream):
                    frames.append(frame.to_ndarray(format="rgb24"))
                    times.append(float(frame.pts * stream.time_base) if frame.pts is not None else len(times))
            self.path, self.frames, self.times = path, np.stack(frames), np.asarray(times)
        index = np.searchsorted(self.times, np.asarray(timestamps) - 1e-4)
        return self.frames[np.clip(index, 0, len(self.frames) - 1)]


def read_lerobot(root: str | Path, camera: str | None = None, action_key: str = "action",
                 state_key: str = "observation.state", upright_images: bool = True) -> Iterator[Episode]:
    """The episodes of a local LeRobot v3 dataset folder, in `episode_index` order. `camera` defaults to the first
    of `LEROBOT_CAMERAS` the dataset has; `upright_images` says whether its frames are already turned 180° (True for
    LIBERO's LeRobot datasets)."""
    import pyarrow.compute as pc

    root = Path(root)
    info_path = root / "meta" / "info.json"
    try:
        info = json.loads(info_path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{info_path}: missing (not a LeRobot v3 dataset)") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{info_path}: not valid JSON ({error.msg})") from None
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise ValueError(f"{info_path}: codebase_version: {version!r}; this reader reads LeRobot v3.x")
    features = info.get("features", {})
    camera = camera or next((key for key in LEROBOT_CAMERAS if key in features), None)
    if camera not in features:
        images = [k for k, v in features.items() if v.get("dtype") in ("image", "video")]
        raise ValueError(f"{info_path}: features: no camera {camera!r}; the dataset has {images}")
    if action_key not in features:
        raise ValueError(f"{info_path}: features: no {action_key!r}")
    is_video = features[camera].get("dtype") == "video"
    fps = float(info.get("fps") or 10)
    tasks = _lerobot_tasks(root)
    episode_files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not episode_files:
        raise ValueError(f"{root / 'meta' / 'episodes'}: no chunk-*/file-*.parquet")
    import pyarrow as pa

    episodes = pa.concat_tables([_read_table(p) for p in episode_files]).to_pylist()
    episodes.sort(key=lambda row: row["episode_index"])
    data_template = info.get("data_path", "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet")
    video_template = info.get("video_path", "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4")
    data_cache: dict[Path, object] = {}
    videos = _VideoFrames()
    for row in episodes:
        index = int(row["episode_index"])
        data_path = root / data_template.format(chunk_index=int(row["data/chunk_index"]),
                                                file_index=int(row["data/file_index"]))
        if data_path not in data_cache:
            data_cache.clear()
            data_cache[data_path] = _read_table(data_path)
        table = data_cache[data_path]
        frames = table.filter(pc.equal(table["episode_index"], index)).sort_by("frame_index")
        where = f"{data_path}: episode {index}"
        if frames.num_rows == 0:
            raise ValueError(f"{where}: no frames")
        actions = np.asarray(frames[action_key].to_pylist(), dtype=np.float64)
        states = (np.asarray(frames[state_key].to_pylist(), dtype=np.float32)
                  if state_key in frames.column_names else None)
        if is_video:
            video_path = root / video_template.format(video_key=camera,
                                                      chunk_index=int(row[f"videos/{camera}/chunk_index"]),
                                                      file_index=int(row[f"videos/{camera}/file_index"]))
            start = float(row[f"videos/{camera}/from_timestamp"])
            stamps = start + np.asarray(frames["frame_index"].to_pylist(), dtype=np.float64) / fps
            images = videos.get(video_path, stamps)
        else:
            if camera not in frames.column_names:
                raise ValueError(f"{where}: {camera}: missing column")
            images = np.stack([np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB"))
                               for cell in frames[camera].to_pylist()])
        task_index = int(frames["task_index"][0].as_py())
        if task_index not in tasks:
            raise ValueError(f"{where}: task_index {task_index}: not in meta/tasks.parquet")
        yield Episode(tasks[task_index].strip().lower(), images, actions, states, upright=upright_images,
                      source=where)


# ---------------------------------------------------------------------------------------------------------------
# Reading any of them, and episodes -> Samples


def read_episodes(paths: Iterable[str | Path], **options) -> Iterator[Episode]:
    """Episodes of LIBERO HDF5 files, folders of them, or LeRobot v3 folders (those with `meta/info.json`)."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and (path / "meta" / "info.json").is_file():
            yield from read_lerobot(path, **{k: v for k, v in options.items() if k in ("camera", "upright_images")})
        elif path.is_dir():
            files = sorted(path.glob("*.hdf5"))
            if not files:
                raise ValueError(f"{path}: no *.hdf5 files and no meta/info.json (neither LIBERO HDF5 nor LeRobot v3)")
            for file in files:
                yield from read_libero_hdf5(file)
        elif path.is_file():
            yield from read_libero_hdf5(path)
        else:
            raise ValueError(f"{path}: no such file or folder")


def frame_png(image: np.ndarray, size: int, turn: bool) -> bytes:
    """One observation as the model sees it: turned 180° when `turn`, resized to `size`² (bicubic), PNG bytes."""
    picture = Image.fromarray(upright(image) if turn else np.asarray(image))
    if picture.size != (size, size):
        picture = picture.resize((size, size), Image.BICUBIC)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False, compress_level=1)
    return buffer.getvalue()


def question(instruction: str, state: np.ndarray | None = None, proprio=None, n_bins: int = 256) -> str:
    """The prompt's text: VST's question, and with `proprio` statistics the robot's state after it as binned tokens
    (`vla.actions.state_text`; off in VST's recipe)."""
    text = PROMPT.format(instruction=instruction.strip().lower())
    if proprio is None:
        return text
    if state is None:
        raise ValueError("the policy was trained with the robot's state in its prompt (proprio); give the state")
    from vst.vla.actions import state_text

    return f"{text} State: {state_text(state, proprio, n_bins)}"


def episode_samples(episode: Episode, normalizer, tokenizer, image_size: int = 256, episode_id: str = "",
                    data_source: str = "libero", proprio=None):
    """One training `Sample` per step of `episode` (filter no-ops first: `Episode.select(noop_mask(...))`); with
    `proprio` statistics the prompt also holds the step's state."""
    from vst.data.sample import IMAGE_PLACEHOLDER, Media, Sample, Turn
    from vst.vla.actions import chunk_targets

    if proprio is not None and episode.states is None:
        raise ValueError(f"{episode.source}: states: missing; proprio=true needs the robot's state "
                         "(LIBERO HDF5 obs/ee_states + obs/gripper_states, LeRobot observation.state)")
    targets = chunk_targets(episode.actions, tokenizer.chunk)  # (T, chunk, 7)
    normalized = normalizer.normalize(targets)
    for t in range(len(episode)):
        state = None if proprio is None else episode.states[t]
        prompt = question(episode.instruction, state, proprio, tokenizer.n_bins)
        yield Sample(
            id=f"{episode_id}-{t:04d}", type="vla", skill="vla", modality="single", data_source=data_source,
            conversations=[Turn("human", IMAGE_PLACEHOLDER + prompt), Turn("gpt", tokenizer.text(normalized[t]))],
            images=[Media(frame_png(episode.images[t], image_size, not episode.upright))],
            meta_info={"action": np.round(normalized[t], 6).tolist(), "action_unnorm": targets[t].tolist(),
                       "language_instruction": episode.instruction, "data_source": data_source,
                       "source": episode.source, "step": t,
                       **({} if state is None else {"state": np.asarray(state, dtype=np.float64).round(6).tolist()})},
            answer={"type": "text", "value": tokenizer.text(normalized[t])},
        )
