"""Shared, session-scoped fixtures: small procedural scenes rendered once per test session."""

import os

import numpy as np
import pytest

from vst.scene.cameras import CameraConfig
from vst.scene.capture import render_scene
from vst.scene.procedural import ProceduralConfig, generate_layout

SMALL = ProceduralConfig(cameras=CameraConfig(width=160, height=128, n_stills=2, n_pairs=1, video_frames=(30, 36)))


@pytest.fixture(scope="session")
def small_config() -> ProceduralConfig:
    return SMALL


@pytest.fixture(scope="session")
def procedural_layouts():
    """Twelve unrendered layouts (seed 0), enough to see every room shape and most categories."""
    return [generate_layout(np.random.default_rng([0, i]), f"layout-{i}", SMALL) for i in range(12)]


@pytest.fixture(scope="session")
def rendered_scene(tmp_path_factory):
    """(scene, folder) of one small procedural scene rendered to disk."""
    folder = tmp_path_factory.mktemp("scene")
    scene = generate_layout(np.random.default_rng([0, 3]), "rendered-3", SMALL)
    return render_scene(scene, folder), folder


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """A saved tiny model folder (cache root / "tiny"), built once per session with no network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from vst.models.tiny import save_tiny

    torch.set_num_threads(1)
    return save_tiny(tmp_path_factory.mktemp("vst-cache") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_folder):
    """(model, processor) loaded from `tiny_folder`, fp32, CPU."""
    from vst.models.loading import load_model

    return load_model("tiny", cache=tiny_folder.parent)
