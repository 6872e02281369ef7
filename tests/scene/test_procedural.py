"""Procedural rooms: determinism, realistic contents, no interpenetration, camera constraints (spec data.md §3.4)."""

import itertools
from collections import Counter

import numpy as np

from vst.scene import catalog
from vst.scene import geometry as g
from vst.scene.cameras import objects_in_view
from vst.scene.procedural import generate_layout


def box(obj):
    return (obj.box.center, obj.box.size, obj.box.rotation)


def test_same_seed_same_scene_different_seed_different(small_config):
    first = generate_layout(np.random.default_rng([5, 1]), "s", small_config)
    second = generate_layout(np.random.default_rng([5, 1]), "s", small_config)
    other = generate_layout(np.random.default_rng([5, 2]), "s", small_config)
    assert first.to_json() == second.to_json()
    assert first.to_json() != other.to_json()


def test_catalog_has_realistic_sizes():
    assert len(catalog.CATEGORIES) >= 25
    chair = catalog.category("chair")
    assert chair.size_min[2] <= 0.9 <= chair.size_max[2]
    door = catalog.category("door")
    assert door.size_min[0] <= 0.9 <= door.size_max[0] and door.size_min[2] <= 2.0 <= door.size_max[2]


def test_rooms_have_both_shapes_and_exact_area(procedural_layouts):
    shapes = Counter(len(scene.room.floor_polygon) for scene in procedural_layouts)
    assert shapes[4] > 0 and shapes[6] > 0  # rectangles and L-shapes
    for scene in procedural_layouts:
        assert 10.0 <= scene.room.area_m2 <= 60.0
        assert np.isclose(scene.room.area_m2, g.polygon_area(scene.room.floor_polygon))
        assert 2.4 <= scene.room.ceiling_z <= 3.2
        structure = Counter(o.category for o in scene.objects if o.is_structure)
        assert structure == {"floor": 1, "ceiling": 1, "wall": len(scene.room.floor_polygon)}


def test_variety_counts_and_distinct_colours(procedural_layouts):
    seen = Counter()
    rooms_with_copies = 0
    for scene in procedural_layouts:
        counts = Counter(o.category for o in scene.objects if not o.is_structure)
        seen.update(counts.keys())
        rooms_with_copies += any(c >= 2 for c in counts.values())
        assert any(c == 1 for c in counts.values())  # unique referents exist
        for category, count in counts.items():
            colors = [o.attributes["color_name"] for o in scene.objects if o.category == category]
            assert len(set(colors)) == len(colors) or count > len(catalog.category(category).colors)
    assert len(seen) >= 22
    assert rooms_with_copies >= 10


def test_objects_do_not_interpenetrate_and_stay_in_the_room(procedural_layouts):
    for scene in procedural_layouts:
        objects = [o for o in scene.objects if not o.is_structure]
        polygon = np.asarray(scene.room.floor_polygon)
        for obj in objects:
            corners = g.box_corners(box(obj))
            assert g.points_in_polygon(corners[:, :2], polygon).all() or obj.category in ("door", "window", "picture"), obj.category
            assert corners[:, 2].min() >= -1e-9 and corners[:, 2].max() <= scene.room.ceiling_z
        for a, b in itertools.combinations(objects, 2):
            assert g.box_intersection_volume(box(a), box(b)) < 1e-6, (scene.scene_id, a.category, b.category)


def test_small_objects_stand_on_their_support(procedural_layouts):
    supported = 0
    for scene in procedural_layouts:
        for obj in scene.objects:
            if "on" not in obj.attributes:
                continue
            support = scene.object(obj.attributes["on"])
            assert catalog.category(support.category).support
            bottom = obj.box.center[2] - obj.box.size[2] / 2
            top = support.box.center[2] + support.box.size[2] / 2
            assert np.isclose(bottom, top)
            assert g.points_in_box([[obj.box.center[0], obj.box.center[1], top - 0.01]], box(support)).all()
            supported += 1
    assert supported >= 20


def test_camera_constraints(procedural_layouts, small_config):
    cameras = small_config.cameras
    for scene in procedural_layouts:
        polygon = np.asarray(scene.room.floor_polygon)
        sequences = scene.sequences()
        stills = [f for f in scene.frames if f.sequence.startswith("still")]
        assert len(stills) == cameras.n_stills
        for frame in stills:
            pose = frame.pose
            pitch = np.degrees(np.arcsin(pose[2, 2]))
            roll = np.degrees(np.arcsin(abs(pose[2, 0]) / np.cos(np.radians(pitch))))
            assert cameras.still_height[0] <= pose[2, 3] <= cameras.still_height[1]
            assert cameras.still_pitch[0] - 1e-6 <= pitch <= cameras.still_pitch[1] + 1e-6
            assert roll <= cameras.still_roll + 1e-6
            hfov = g.fov_from_focal(frame.intrinsics.fx, frame.intrinsics.width)
            assert cameras.hfov[0] - 1e-6 <= hfov <= cameras.hfov[1] + 1e-6
        for name, frames in sequences.items():
            if name.startswith("pair"):
                a, b = frames
                baseline = np.linalg.norm(a.pose[:2, 3] - b.pose[:2, 3])
                assert cameras.pair_baseline[0] - 1e-6 <= baseline <= cameras.pair_baseline[1] + 1e-6
                shared = objects_in_view(scene, a.intrinsics, a.pose) & objects_in_view(scene, b.intrinsics, b.pose)
                assert shared
        video = sequences.get("video", [])
        assert cameras.video_frames[0] <= len(video) <= cameras.video_frames[1]
        positions = np.array([f.pose[:3, 3] for f in video])
        steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
        assert steps.max() <= cameras.walk_speed[1] / cameras.video_fps + 1e-6  # smooth walk, no jumps
        assert g.points_in_polygon(positions[:, :2], polygon).all()
        assert np.allclose(np.diff([f.timestamp for f in video]), 1 / cameras.video_fps)
        in_view = [len(objects_in_view(scene, f.intrinsics, f.pose)) for f in video]
        assert np.mean([n >= 1 for n in in_view]) >= 0.8  # the walk keeps furniture in view


def test_rendered_scene_visibility(rendered_scene):
    scene, folder = rendered_scene
    for frame in scene.frames:
        assert (folder / frame.image_path).is_file()
        objects = [i for i in frame.visibility if not scene.object(i).is_structure]
        assert objects, frame.frame_id
        for instance_id, seen in frame.visibility.items():
            x0, y0, x1, y1 = seen.bbox_2d
            assert 0 <= x0 <= x1 < frame.intrinsics.width and 0 <= y0 <= y1 < frame.intrinsics.height
            assert seen.pixels <= (x1 - x0 + 1) * (y1 - y0 + 1)
            assert 0 < seen.visible_frac <= 1 and seen.depth_median > 0
