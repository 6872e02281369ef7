"""`vst infer` and `vst.infer`: box drawing against hand-projected corners, VST's detection prompt and answer parsing,
and chat / detect3d end to end on the offline tiny model (whose boxes are nonsense, so only their form is checked)."""

import itertools
import json
import math

import numpy as np
import pytest
from PIL import Image
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from vst import infer
from vst.cli import app
from vst.scene.video import encode_mp4
from vst.infer import DetectedBox, chat, detect3d, draw_boxes3d, fov_intrinsics
from vst.models.processing import DEFAULT_SYSTEM_PROMPT, THINKING_SYSTEM_PROMPT
from vst.scene.types import Intrinsics

RED = (255, 0, 0)
CAMERA = Intrinsics(fx=100.0, fy=100.0, cx=79.5, cy=59.5, width=160, height=120)
SIGNS = np.array(list(itertools.product((-1.0, 1.0), repeat=3)))
EDGES = [(i, j) for i, j in itertools.combinations(range(8), 2) if np.abs(SIGNS[i] - SIGNS[j]).sum() == 2]
# A VST-style answer as a trained model writes it (spec paper.md §2.4): a ```json fence, 2-decimal numbers.
CANNED = (
    '```json\n[\n\t{"bbox_3d": [-0.29, -0.04, 2.23, 0.61, 0.94, 0.47, 0.0, 0.0, 0.0], "label": "chair"},\n'
    '\t{"bbox_3d": [0.5, 0.3, 3.0, 1.2, 0.75, 0.8, 0.0, 0.25, 0.0], "label": "table"}\n]\n```'
)


# -- hand geometry: VST's 9 numbers -> corners -> pixels, written out here, not taken from vst.scene.geometry ------
def corners_by_hand(values) -> np.ndarray:
    """(8, 3) corners of a VST box with pitch = roll = 0: half sizes along camera x, y, z, turned by yaw about y."""
    center, size, yaw = np.array(values[:3]), np.array(values[3:6]), math.radians(values[7] * 180.0)
    turn = np.array([[math.cos(yaw), 0.0, math.sin(yaw)], [0.0, 1.0, 0.0], [-math.sin(yaw), 0.0, math.cos(yaw)]])
    return center + (SIGNS * size / 2.0) @ turn.T


def pinhole(points, camera: Intrinsics) -> np.ndarray:
    points = np.asarray(points)
    return np.column_stack([camera.fx * points[:, 0] / points[:, 2] + camera.cx,
                            camera.fy * points[:, 1] / points[:, 2] + camera.cy])


def visible_edge_pixels(values, camera: Intrinsics, samples: int = 20001) -> np.ndarray:
    """(n, 2) pixels of densely sampled edge points that lie in front of the camera and inside the image."""
    corners = corners_by_hand(values)
    t = np.linspace(0.0, 1.0, samples)[:, None]
    points = np.concatenate([corners[i] + t * (corners[j] - corners[i]) for i, j in EDGES])
    points = points[points[:, 2] > 1e-3]
    uv = pinhole(points, camera)
    inside = (uv[:, 0] > -0.5) & (uv[:, 0] < camera.width - 0.5) & (uv[:, 1] > -0.5) & (uv[:, 1] < camera.height - 0.5)
    return uv[inside]


def lit_pixels(image: Image.Image, color=RED) -> np.ndarray:
    """(n, 2) (u, v) of the pixels drawn in `color` (the canvas is black)."""
    pixels = np.asarray(image).astype(int)
    v, u = np.nonzero(np.abs(pixels - np.array(color)).sum(axis=2) < 60)
    return np.column_stack([u, v]).astype(float)


def nearest_distance(points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(n,) distance from each point to the closest target point."""
    return cKDTree(targets).query(points)[0]


def black(camera: Intrinsics = CAMERA) -> Image.Image:
    return Image.new("RGB", (camera.width, camera.height))


# -- drawing --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("values", [
    [0.2, 0.1, 4.0, 1.0, 0.8, 1.2, 0.0, 0.0, 0.0],  # axis-aligned
    [-0.3, 0.2, 3.5, 1.0, 0.6, 0.5, 0.0, 0.25, 0.0],  # turned 45 degrees about the camera's y axis (VST yaw)
])
def test_drawn_edges_pass_through_the_projected_corners_and_nowhere_else(values):
    corners = pinhole(corners_by_hand(values), CAMERA)
    assert np.all((corners > 0) & (corners < [CAMERA.width - 1, CAMERA.height - 1]))  # the whole box is in view
    drawn = draw_boxes3d(black(), [DetectedBox("chair", tuple(values))], CAMERA, colors={"chair": RED}, labels=False,
                         line_width=1)
    lit = lit_pixels(drawn)
    assert nearest_distance(corners, lit).max() <= 1.5  # every corner is drawn (1.5: pixel rounding)
    assert nearest_distance(lit, visible_edge_pixels(values, CAMERA)).max() <= 1.5  # nothing off the 12 edges
    assert len(lit) > 100


def test_box_partly_behind_the_camera_draws_only_its_visible_part():
    values = [0.6, 0.0, 0.2, 1.0, 0.6, 1.0, 0.0, 0.0, 0.0]  # depth from -0.3 to 0.7 m
    # A naive projection would flip the corners behind the camera into the left half of the image (u = 79.5 - 33).
    assert pinhole(corners_by_hand(values)[:1], CAMERA)[0, 0] < CAMERA.cx
    drawn = draw_boxes3d(black(), [DetectedBox("chair", tuple(values))], CAMERA, colors={"chair": RED}, labels=False,
                         line_width=1)
    lit, expected = lit_pixels(drawn), visible_edge_pixels(values, CAMERA)
    assert len(lit) > 20 and len(expected) > 0
    assert nearest_distance(lit, expected).max() <= 1.5
    assert lit[:, 0].min() >= CAMERA.cx  # all of the visible part has x > 0, so it lies right of the centre


def test_box_wholly_behind_the_camera_draws_nothing():
    drawn = draw_boxes3d(black(), [DetectedBox("chair", (0.0, 0.0, -2.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0))], CAMERA)
    assert not np.asarray(drawn).any()


def test_labels_sit_above_their_box_in_their_own_colour():
    values = (0.0, 0.3, 4.0, 1.0, 0.4, 1.0, 0.0, 0.0, 0.0)
    drawn = draw_boxes3d(black(), [DetectedBox("sofa", values)], CAMERA, colors={"sofa": RED}, line_width=1)
    top = pinhole(corners_by_hand(values), CAMERA)[:, 1].min()
    lit = lit_pixels(drawn)
    assert (lit[:, 1] < top - 2).sum() > 30  # the label box is drawn above the highest corner
    assert infer.label_colors(["sofa", "lamp", "sofa"]) == {"sofa": infer.PALETTE[0], "lamp": infer.PALETTE[1]}


def test_fov_intrinsics_follow_the_pinhole_model():
    camera = fov_intrinsics(640, 480, 60.0)
    assert camera.fx == camera.fy == pytest.approx(320.0 / math.tan(math.radians(30.0)))
    assert (camera.cx, camera.cy) == (319.5, 239.5)  # pixel (i, j) has its centre at (i, j)
    with pytest.raises(ValueError, match="hfov"):
        fov_intrinsics(640, 480, 180.0)


# -- detect3d with a canned answer -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_backend(tiny_folder):
    from vst.eval.backends import TransformersBackend

    return TransformersBackend("tiny", device="cpu", dtype="float32", cache=tiny_folder.parent)


def test_canned_answer_is_parsed_prompted_like_vst_and_drawn(tiny_backend, monkeypatch):
    prompts = []
    monkeypatch.setattr(tiny_backend, "generate", lambda batch, **kwargs: prompts.extend(batch) or [CANNED])
    camera = fov_intrinsics(320, 240, 60.0)
    detection = detect3d(tiny_backend, black(camera), "chair, table")

    assert detection.parsed and detection.response == CANNED and detection.intrinsics == camera
    assert [box.label for box in detection.boxes] == ["chair", "table"]
    assert detection.boxes[1].bbox_3d == (0.5, 0.3, 3.0, 1.2, 0.75, 0.8, 0.0, 0.25, 0.0)
    np.testing.assert_allclose(detection.boxes[1].box.center, [0.5, 0.3, 3.0])
    # VST's camera prompt: hfov 60, vfov from the aspect ratio, the size of the image rescaled to VST's virtual camera
    vfov = math.degrees(2 * math.atan(240 / 320 * math.tan(math.radians(30.0))))
    (prompt,) = prompts
    assert f"hfov=60.00, and vertical fov, vfov={vfov:.2f}" in prompt.text
    assert prompt.text.endswith("Detect the 3D bounding boxes of chair and table")
    assert prompt.images[0].size == (804, 603) and "Image width=804 and height=603" in prompt.text
    assert prompt.system == DEFAULT_SYSTEM_PROMPT

    colors = infer.label_colors(["chair", "table"])
    drawn = draw_boxes3d(black(camera), detection.boxes, camera, labels=False, line_width=1)
    for box in detection.boxes:
        corners = pinhole(corners_by_hand(box.bbox_3d), camera)
        assert nearest_distance(corners, lit_pixels(drawn, colors[box.label])).max() <= 1.5


def test_unparsable_answer_gives_no_boxes_and_keeps_the_text(tiny_backend, monkeypatch):
    monkeypatch.setattr(tiny_backend, "generate", lambda batch, **kwargs: ["I see a chair near the window."])
    detection = detect3d(tiny_backend, black(), ["chair"])
    assert detection.boxes == [] and not detection.parsed
    assert detection.to_json()["response"] == "I see a chair near the window."


# -- end to end on the tiny model ------------------------------------------------------------------------------------
def test_detect3d_on_the_tiny_model(tiny_backend, tmp_path):
    detection = detect3d(tiny_backend, black(), ["chair", "table"], max_new_tokens=8)
    assert isinstance(detection.response, str)
    assert json.loads(json.dumps(detection.to_json()))["hfov"] == pytest.approx(60.0)
    draw_boxes3d(black(), detection.boxes, detection.intrinsics).save(tmp_path / "boxes.png")
    assert Image.open(tmp_path / "boxes.png").size == (CAMERA.width, CAMERA.height)


class Recording:
    """The tiny backend, recording the conversations that reach `vst.models.processing` (the prompt -> tensor step)."""

    def __init__(self, backend, monkeypatch):
        import vst.models.processing as processing

        self.backend, self.conversations = backend, []
        encode = processing.encode_for_generation

        def spy(conversations, *args, **kwargs):
            self.conversations.extend(conversations)
            return encode(conversations, *args, **kwargs)

        monkeypatch.setattr(processing, "encode_for_generation", spy)

    def generate(self, prompts, **kwargs):
        return self.backend.generate(prompts, **kwargs)


@pytest.mark.parametrize("think, system", [(False, DEFAULT_SYSTEM_PROMPT), (True, THINKING_SYSTEM_PROMPT)])
def test_chat_on_the_tiny_model_and_the_think_flag_sets_the_system_prompt(tiny_backend, monkeypatch, think, system):
    recording = Recording(tiny_backend, monkeypatch)
    answer = chat(recording, "Which object is closer?", images=[black()], think=think, max_new_tokens=6)
    assert isinstance(answer, str)
    (messages,) = recording.conversations
    assert messages[0] == {"role": "system", "content": system}
    assert [item["type"] for item in messages[1]["content"]] == ["image", "text"]


# -- CLI ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_env(tiny_folder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VST_CACHE", str(tiny_folder.parent))
    yield
    infer.load_backend.cache_clear()  # the CLI caches its backend per process; later tests start clean


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_detect3d_on_the_tiny_model_writes_a_png_and_json(tiny_env, tmp_path, monkeypatch):
    black().save(tmp_path / "room.png")
    monkeypatch.chdir(tmp_path)
    result = run("infer", "detect3d", "--model", "tiny", "--image", tmp_path / "room.png", "--categories", "chair,table",
                 "--max-new-tokens", 8)
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert output["out"] == "room_boxes3d.png" and isinstance(output["boxes"], list)
    assert Image.open(tmp_path / "room_boxes3d.png").size == (160, 120)
    if not output["parsed"]:
        assert "did not parse" in result.stderr


def test_cli_detect3d_prints_canned_boxes(tmp_path, monkeypatch):
    prompts = []

    class Canned:
        def generate(self, batch, **kwargs):
            prompts.extend(batch)
            return [CANNED]

    monkeypatch.setattr(infer, "load_backend", lambda model: Canned())
    black().save(tmp_path / "room.png")
    result = run("infer", "detect3d", "--model", "some/checkpoint", "--image", tmp_path / "room.png",
                 "--categories", "chair", "--hfov", 75, "--out", tmp_path / "drawn.png")
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert [box["label"] for box in output["boxes"]] == ["chair", "table"] and output["parsed"]
    assert output["boxes"][0]["bbox_3d"] == [-0.29, -0.04, 2.23, 0.61, 0.94, 0.47, 0.0, 0.0, 0.0]
    assert output["hfov"] == pytest.approx(75.0) and "hfov=75.00" in prompts[0].text
    assert np.asarray(Image.open(tmp_path / "drawn.png")).any()  # the boxes are drawn on the black image
    assert "did not parse" not in result.stderr


def test_cli_chat_on_the_tiny_model_with_image_video_and_think(tiny_env, tmp_path):
    black().save(tmp_path / "room.png")
    rng = np.random.default_rng(0)
    (tmp_path / "walk.mp4").write_bytes(encode_mp4([rng.integers(0, 255, (56, 56, 3), dtype=np.uint8) for _ in range(4)], fps=2))
    result = run("infer", "chat", "--model", "tiny", "--image", tmp_path / "room.png", "--video", tmp_path / "walk.mp4",
                 "--think", "--max-new-tokens", 6, "Where is the chair?")
    assert result.exit_code == 0, result.output
    assert result.stdout.endswith("\n")


def test_cli_errors_name_the_missing_file(tmp_path):
    result = run("infer", "detect3d", "--model", "tiny", "--image", tmp_path / "none.png", "--categories", "chair")
    assert result.exit_code == 1 and "none.png: image not found" in result.output and "Traceback" not in result.output
