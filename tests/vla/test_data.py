"""Robot episodes from the real on-disk layouts, written here by hand in those layouts:

- LIBERO HDF5: Lifelong-Robot-Learning/LIBERO `scripts/create_dataset.py` (group `data`, attrs `problem_info` JSON with
  `language_instruction`, `data/demo_i/{actions, obs/agentview_rgb, obs/eye_in_hand_rgb, obs/ee_states,
  obs/gripper_states, obs/joint_states, states, rewards, dones}`, images upside down, 128 px, uint8);
- LeRobot v3.0: huggingface/lerobot `src/lerobot/datasets/utils.py` (`meta/info.json` with `data_path` /
  `video_path` templates, `meta/tasks.parquet` indexed by task, `meta/episodes/chunk-000/file-000.parquet`,
  `data/chunk-000/file-000.parquet`, `videos/{key}/chunk-000/file-000.mp4` holding several episodes).
"""

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.vla.actions import BinningTokenizer, QuantileNormalizer
from vst.vla.data import (PROMPT, Episode, episode_samples, instruction_from_filename, noop_mask, read_episodes,
                          read_libero_hdf5, read_lerobot, upright, write_libero_hdf5)

h5py = pytest.importorskip("h5py")


def frames(n: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Frames whose top-left quarter is bright, so a 180° turn is visible."""
    images = np.random.default_rng(seed).integers(0, 60, (n, size, size, 3), dtype=np.uint8)
    images[:, : size // 2, : size // 2] = 250
    return images


def write_libero_fixture(path, n_demos=2, steps=5, instruction="put the bowl on the plate"):
    """A LIBERO *_demo.hdf5 exactly as create_dataset.py lays it out."""
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_name"] = "libero_tabletop_manipulation"
        data.attrs["problem_info"] = json.dumps({"problem_name": "libero_tabletop_manipulation",
                                                 "domain_name": "robosuite", "language_instruction": instruction})
        data.attrs["bddl_file_name"] = "libero/bddl_files/libero_spatial/x.bddl"
        data.attrs["env_args"] = json.dumps({"type": 1, "env_name": "x"})
        data.attrs["macros_image_convention"] = "opengl"
        for i in range(n_demos):
            demo = data.create_group(f"demo_{i}")
            obs = demo.create_group("obs")
            obs.create_dataset("agentview_rgb", data=frames(steps, seed=i))
            obs.create_dataset("eye_in_hand_rgb", data=frames(steps, seed=10 + i))
            obs.create_dataset("ee_states", data=rng.normal(size=(steps, 6)))
            obs.create_dataset("gripper_states", data=rng.normal(size=(steps, 2)))
            obs.create_dataset("joint_states", data=rng.normal(size=(steps, 7)))
            actions = np.clip(rng.normal(scale=0.3, size=(steps, 7)), -1, 1)
            actions[:, 6] = np.where(np.arange(steps) < steps // 2, -1.0, 1.0)
            demo.create_dataset("actions", data=actions)
            demo.create_dataset("states", data=rng.normal(size=(steps, 20)))
            demo.create_dataset("rewards", data=np.eye(steps, dtype=np.uint8)[-1])
            demo.create_dataset("dones", data=np.eye(steps, dtype=np.uint8)[-1])
            demo.attrs["num_samples"] = steps
        data.attrs["num_demos"] = n_demos
        data.attrs["total"] = n_demos * steps
    return path


def test_reads_libero_hdf5(tmp_path):
    path = write_libero_fixture(tmp_path / "pick_up_the_bowl_demo.hdf5")
    episodes = list(read_libero_hdf5(path))
    assert len(episodes) == 2 and len(episodes[0]) == 5
    assert episodes[0].instruction == "put the bowl on the plate"
    assert episodes[0].images.dtype == np.uint8 and episodes[0].images.shape == (5, 32, 32, 3)
    assert episodes[0].states.shape == (5, 8) and not episodes[0].upright
    with h5py.File(path) as f:
        assert np.array_equal(episodes[1].actions, f["data/demo_1/actions"][()])
    with h5py.File(path, "a") as f:
        del f["data/demo_1/obs/agentview_rgb"]
    with pytest.raises(ValueError, match="data/demo_1: obs/agentview_rgb: missing"):
        list(read_libero_hdf5(path))


def test_instruction_from_the_file_name():
    assert instruction_from_filename("KITCHEN_SCENE3_turn_on_the_stove_demo.hdf5") == "turn on the stove"
    assert instruction_from_filename("LIVING_ROOM_SCENE2_put_both_the_alphabet_soup_and_the_tomato_sauce_in_the_"
                                     "basket_demo.hdf5") == "put both the alphabet soup and the tomato sauce in the basket"
    assert instruction_from_filename("pick_up_the_black_bowl_on_the_plate_demo.hdf5") == "pick up the black bowl on the plate"


def test_writer_round_trips_through_the_reader(tmp_path):
    episode = Episode("stack the cups", frames(4), np.linspace(-1, 1, 28).reshape(4, 7),
                      states=np.zeros((4, 8), np.float32), joints=np.zeros((4, 7)))
    path = write_libero_hdf5(tmp_path / "stack_the_cups_demo.hdf5", [episode, episode], problem_name="p")
    back = list(read_libero_hdf5(path))
    assert len(back) == 2 and back[1].instruction == "stack the cups"
    assert np.array_equal(back[0].images, episode.images) and np.array_equal(back[0].actions, episode.actions)
    assert not list(tmp_path.glob("*.tmp"))


def test_noop_filter_follows_openvla():
    actions = np.zeros((5, 7))
    actions[:, 6] = [-1, -1, 1, 1, 1]
    actions[3, 0] = 0.5
    # step 0: still (first step); 1: still, same gripper; 2: gripper changed; 3: moving; 4: still, same gripper
    assert noop_mask(actions).tolist() == [False, False, True, True, False]


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def write_lerobot_fixture(root, video: bool, lengths=(4, 3), fps=10, size=32, index_name="task"):
    """A LeRobot v3.0 dataset of len(lengths) episodes (one data file, one video file for all episodes)."""
    camera = "observation.images.image"
    images = [frames(n, size, seed=i) for i, n in enumerate(lengths)]
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "data" / "chunk-000").mkdir(parents=True)
    info = {"codebase_version": "v3.0", "robot_type": "panda", "fps": fps, "chunks_size": 1000,
            "total_episodes": len(lengths), "total_frames": sum(lengths), "total_tasks": 2,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": {camera: {"dtype": "video" if video else "image", "shape": [size, size, 3],
                                  "names": ["height", "width", "rgb"]},
                         "observation.state": {"dtype": "float32", "shape": [8]},
                         "action": {"dtype": "float32", "shape": [7]},
                         "timestamp": {"dtype": "float32", "shape": [1]},
                         "frame_index": {"dtype": "int64", "shape": [1]},
                         "episode_index": {"dtype": "int64", "shape": [1]},
                         "index": {"dtype": "int64", "shape": [1]},
                         "task_index": {"dtype": "int64", "shape": [1]}}}
    (root / "meta" / "info.json").write_text(json.dumps(info))
    tasks = ["Put the bowl on the plate", "open the drawer"]
    # as LeRobotDatasetMetadata.save_episode_tasks / convert_tasks: the task strings are the pandas index, named
    # "task" by the v2.1 -> v3.0 converter and unnamed by save_episode_tasks
    import pandas as pd

    pd.DataFrame({"task_index": [0, 1]}, index=pd.Index(tasks, name=index_name)).to_parquet(root / "meta" / "tasks.parquet")
    rows, episodes, index, start = [], [], 0, 0.0
    for e, n in enumerate(lengths):
        for t in range(n):
            row = {"timestamp": t / fps, "frame_index": t, "episode_index": e, "index": index, "task_index": e,
                   "action": [float(e), t / 10, 0, 0, 0, 0, 1.0], "observation.state": [0.0] * 8}
            if not video:
                row[camera] = {"bytes": _png(images[e][t]), "path": f"frame-{index:06d}.png"}
            rows.append(row)
            index += 1
        entry = {"episode_index": e, "tasks": [tasks[e]], "length": n, "dataset_from_index": index - n,
                 "dataset_to_index": index, "data/chunk_index": 0, "data/file_index": 0}
        if video:
            entry.update({f"videos/{camera}/chunk_index": 0, f"videos/{camera}/file_index": 0,
                          f"videos/{camera}/from_timestamp": start, f"videos/{camera}/to_timestamp": start + n / fps})
            start += n / fps
        episodes.append(entry)
    pq.write_table(pa.Table.from_pylist(rows), root / "data" / "chunk-000" / "file-000.parquet")
    pq.write_table(pa.Table.from_pylist(episodes), root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    if video:
        import av

        path = root / "videos" / camera / "chunk-000" / "file-000.mp4"
        path.parent.mkdir(parents=True)
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width = stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "0"}
            for array in np.concatenate(images):
                for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return images


@pytest.mark.parametrize("video, index_name", [(False, "task"), (True, None)], ids=["png-in-parquet", "mp4"])
def test_reads_lerobot_v3(tmp_path, video, index_name):
    images = write_lerobot_fixture(tmp_path, video, index_name=index_name)
    episodes = list(read_lerobot(tmp_path))
    assert [len(e) for e in episodes] == [4, 3]
    assert [e.instruction for e in episodes] == ["put the bowl on the plate", "open the drawer"]
    assert episodes[1].actions[:, 0].tolist() == [1.0, 1.0, 1.0] and episodes[0].actions[2, 1] == pytest.approx(0.2)
    assert episodes[0].upright and episodes[0].states.shape == (4, 8)
    for episode, expected in zip(episodes, images):
        error = np.abs(episode.images.astype(int) - expected.astype(int)).mean()
        assert error < (1 if not video else 12), error  # lossless PNG; the right frames from the shared mp4
    assert list(read_episodes([tmp_path]))[0].instruction == "put the bowl on the plate"


def test_lerobot_errors_name_file_and_field(tmp_path):
    write_lerobot_fixture(tmp_path, video=False)
    with pytest.raises(ValueError, match="features: no camera 'wrist'"):
        list(read_lerobot(tmp_path, camera="wrist"))
    info = json.loads((tmp_path / "meta" / "info.json").read_text())
    (tmp_path / "meta" / "info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(ValueError, match="info.json: codebase_version: 'v2.1'"):
        list(read_lerobot(tmp_path))


def test_samples_have_vst_layout(tmp_path, tiny_folder):
    from transformers import AutoProcessor

    from vst.vla.actions import action_tokens

    episode = list(read_libero_hdf5(write_libero_fixture(tmp_path / "x_demo.hdf5")))[0]
    normalizer = QuantileNormalizer.fit(episode.actions)
    samples = list(episode_samples(episode, normalizer, BinningTokenizer(), image_size=28))
    assert len(samples) == 5
    first = samples[0]
    assert first.question == "<|image_pad|>" + PROMPT.format(instruction="put the bowl on the plate")
    assert first.question.endswith("What action should the robot take to put the bowl on the plate?")
    image = np.asarray(Image.open(io.BytesIO(first.images[0].bytes)))
    assert image.shape == (28, 28, 3)
    assert image[-4:, -4:].mean() > 200 and image[:4, :4].mean() < 100  # the bright corner turned to bottom-right
    assert np.array_equal(upright(upright(episode.images[0])), episode.images[0])
    processor = AutoProcessor.from_pretrained(tiny_folder)
    processor.tokenizer.add_tokens(action_tokens(), special_tokens=True)
    ids = processor.tokenizer(first.response, add_special_tokens=False)["input_ids"]
    assert len(ids) == 7  # every action token is one id
    assert BinningTokenizer().parse(first.response) == BinningTokenizer().encode(normalizer.normalize(episode.actions[0]))
