"""Synthetic rooms: determinism, arrays, labels that fit the geometry, the dataset folder."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from indoorseg.classes import BUILTIN_SPACES
from indoorseg.cli.common import parse_size
from indoorseg.data.prepared import depth_to_mm, read_info, read_label_png
from indoorseg.data.synthetic import RoomSample, render_room, synthesize
from indoorseg.data.synthetic.raycast import Box
from indoorseg.data.synthetic.rooms import furnish, wall_coloured
from indoorseg.data.synthetic.textures import Material
from indoorseg.errors import DatasetError
from indoorseg.images import read_image

NYU40 = BUILTIN_SPACES["nyu40"]
WALL, FLOOR, CEILING = (NYU40.id_of(n) for n in ("wall", "floor", "ceiling"))
SIZE = (60, 80)


@pytest.fixture(scope="module")
def rooms() -> list[RoomSample]:
    return [render_room(7, i, SIZE) for i in range(12)]


def assert_same(a: RoomSample, b: RoomSample) -> None:
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.depth, b.depth)


def test_same_seed_and_index_give_the_same_room(rooms):
    assert_same(render_room(7, 3, SIZE), rooms[3])


def test_other_seed_or_index_give_another_room(rooms):
    for other in (render_room(8, 3, SIZE), rooms[4]):
        assert not np.array_equal(other.rgb, rooms[3].rgb)
        assert not np.array_equal(other.depth, rooms[3].depth)


def test_seed_and_index_are_not_added_together():
    # (0, 1) and (1, 0) share a sum: two streams that must still hold other rooms
    a, b = render_room(0, 1, (48, 64)), render_room(1, 0, (48, 64))
    assert not np.array_equal(a.rgb, b.rgb)
    assert not np.array_equal(a.depth, b.depth)


def test_arrays_have_the_documented_shapes_and_types(rooms):
    room = render_room(0, 0, (48, 64))
    assert room.rgb.shape == (48, 64, 3) and room.rgb.dtype == np.uint8
    assert room.label.shape == (48, 64) and room.label.dtype == np.uint16
    assert room.depth.shape == (48, 64) and room.depth.dtype == np.float32
    assert all(r.rgb.std() > 5 for r in rooms)  # not blank, not saturated


def test_labels_are_nyu40_ids_with_room_and_objects(rooms):
    labels = np.stack([r.label for r in rooms])
    assert labels.max() <= len(NYU40.names)
    present = set(np.unique(labels).tolist())
    assert {WALL, FLOOR, CEILING} <= present
    objects = present - {0, WALL, FLOOR, CEILING}
    assert len(objects) >= 5, [NYU40.names[i - 1] for i in objects]
    void = (labels == 0).mean()
    assert 0.002 < void < 0.15  # a little unlabelled, as in NYU, so void handling is used


def test_depth_is_positive_and_room_sized(rooms):
    for room in rooms:
        assert np.isfinite(room.depth).all()
        assert room.depth.min() > 0.3 and room.depth.max() < 12.0


def test_floor_is_low_and_ceiling_high_in_the_image(rooms):
    height = SIZE[0]
    floor_rows = np.concatenate([np.nonzero(r.label == FLOOR)[0] for r in rooms])
    ceiling_rows = np.concatenate([np.nonzero(r.label == CEILING)[0] for r in rooms])
    assert floor_rows.mean() > 0.6 * height
    assert ceiling_rows.mean() < 0.3 * height


def test_floor_recedes_towards_the_horizon(rooms):
    # seen from above, the floor is nearer at the bottom of the image than higher up
    correlations = []
    for room in rooms:
        rows, _ = np.nonzero(room.label == FLOOR)
        if len(rows) > 50 and rows.std() > 0:
            correlations.append(np.corrcoef(rows, room.depth[room.label == FLOOR])[0, 1])
    assert len(correlations) >= 6 and np.median(correlations) < -0.5


def test_synthesize_writes_a_prepared_dataset(tmp_path):
    calls = []
    out = synthesize(
        tmp_path / "synth", n=6, size=(32, 40), seed=3, progress=lambda *a: calls.append(a)
    )
    assert out == tmp_path / "synth"
    info = read_info(out)
    assert (info.name, info.label_space, info.image_size) == ("synthetic", "nyu40", [32, 40])
    assert info.class_names == list(NYU40.names)
    assert info.extra["seed"] == 3
    ids = [f"{i:05d}" for i in range(6)]
    splits = info.splits[info.default_split_set]
    assert sorted(splits["train"] + splits["val"] + splits["test"]) == ids
    assert (len(splits["val"]), len(splits["test"])) == (1, 1) and splits["test"] == ["00005"]
    assert info.counts[info.default_split_set] == {"train": 4, "val": 1, "test": 1}
    assert calls == [(i, 6) for i in range(1, 7)]
    room = render_room(3, 2, (32, 40))
    np.testing.assert_array_equal(read_image(out / "rgb" / "00002.png"), room.rgb)
    np.testing.assert_array_equal(read_label_png(out / "label" / "00002.png"), room.label)
    np.testing.assert_array_equal(
        read_label_png(out / "depth" / "00002.png"), depth_to_mm(room.depth)
    )


def test_images_do_not_depend_on_n(tmp_path):
    small = synthesize(tmp_path / "a", n=2, size=(32, 40), seed=5)
    large = synthesize(tmp_path / "b", n=4, size=(32, 40), seed=5)
    for sub in ("rgb", "label", "depth"):
        assert (small / sub / "00001.png").read_bytes() == (large / sub / "00001.png").read_bytes()


def test_second_call_is_a_no_op_unless_forced(tmp_path):
    out = tmp_path / "synth"
    synthesize(out, n=2, size=(32, 32))
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert synthesize(out, n=2, size=(32, 32)) is None
    with pytest.raises(DatasetError, match="another number of rooms"):  # never reused
        synthesize(out, n=3, size=(32, 32))
    assert read_info(out).counts["default"]["train"] == 2
    assert (out / "dataset.json").stat().st_mtime_ns == stamp
    assert synthesize(out, n=3, size=(32, 32), val_fraction=0, test_fraction=0, force=True) == out
    assert read_info(out).counts["default"] == {"train": 3, "val": 0, "test": 0}


@pytest.mark.parametrize(("n", "expected"), [(1, (1, 0, 0)), (2, (2, 0, 0)), (5, (3, 1, 1))])
def test_small_runs_keep_a_training_image(tmp_path, n, expected):
    info = read_info(synthesize(tmp_path / "s", n=n, size=(32, 32)))
    assert tuple(info.counts["default"].values()) == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, "n must be at least 1"),
        ({"seed": -1}, "seed must be non-negative"),
        ({"size": (16, 64)}, "too small"),
        ({"val_fraction": -0.1}, "val_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "below 1"),
    ],
)
def test_synthesize_rejects_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthesize(tmp_path / "bad", **{"n": 2, **kwargs})
    assert not (tmp_path / "bad").exists()


def test_parse_size():
    assert parse_size("240x320") == (240, 320)
    assert parse_size(" 48X64 ") == (48, 64)
    for text in ("240", "240x", "x320", "240x320x3", "a x b", "-1x5", "0x64", "240*320"):
        with pytest.raises(ValueError, match="size"):
            parse_size(text)


def test_worker_processes_write_the_same_rooms(tmp_path):
    one = synthesize(tmp_path / "one", 6, (48, 64), seed=3, workers=1)
    two = synthesize(tmp_path / "two", 6, (48, 64), seed=3, workers=2)
    assert read_info(one).splits == read_info(two).splits
    for sample_id in read_info(one).splits["default"]["train"]:
        for sub, read in (("rgb", read_image), ("label", read_label_png)):
            a, b = read(one / sub / f"{sample_id}.png"), read(two / sub / f"{sample_id}.png")
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(
            read_label_png(one / "depth" / f"{sample_id}.png"),
            read_label_png(two / "depth" / f"{sample_id}.png"),
        )


def _boxes(n: int) -> list[Box]:
    lamp = Material(color=(1.0, 0.9, 0.6), emit=1.0)
    plain = Material(color=(0.1, 0.5, 0.2))
    return [Box((0, 0, 0), (1, 1, 1), 0.0, 5, lamp if i % 5 == 0 else plain) for i in range(n)]


def test_wall_coloured_paints_a_share_of_the_lit_boxes_near_the_wall_colour():
    wall = (0.8, 0.6, 0.4)
    boxes = _boxes(400)
    out = wall_coloured(np.random.default_rng(0), boxes, wall)
    assert len(out) == len(boxes)
    painted = [b for b, o in zip(boxes, out, strict=True) if o.material.color != b.material.color]
    assert all(b.material.emit == 0 for b in painted)  # lamps and windows keep their glow
    assert 0.18 < len(painted) / 320 < 0.32  # about a quarter of the 320 lit boxes
    for box, new in zip(boxes, out, strict=True):
        assert (new.center, new.half, new.yaw, new.label) == (box.center, box.half, 0.0, 5)
        assert replace(new.material, color=box.material.color) == box.material
        if new.material.color != box.material.color:
            ratio = np.asarray(new.material.color) / np.asarray(wall)
            assert ((ratio >= 0.9 - 1e-9) & (ratio <= 1.05 + 1e-9)).all(), ratio
    none = wall_coloured(np.random.default_rng(0), boxes, wall, share=0.0)
    assert [b.material for b in none] == [b.material for b in boxes]


def test_wall_coloured_draws_the_same_for_every_box_so_the_rest_keeps_its_draws():
    # four draws per box whether painted or not: what follows in the stream is the same
    rngs = [np.random.default_rng(3) for _ in range(2)]
    wall_coloured(rngs[0], _boxes(10), (0.5, 0.5, 0.5), share=0.0)
    wall_coloured(rngs[1], _boxes(10), (0.5, 0.5, 0.5), share=1.0)
    assert rngs[0].random() == rngs[1].random()


def test_furnished_rooms_hold_parts_in_the_colour_of_their_walls():
    shares = []
    for seed in range(6):
        scene = furnish(np.random.default_rng(seed))
        wall = np.asarray(scene.room[0].color)
        lit = [b for b in scene.boxes if b.material.emit == 0]
        near = [b for b in lit if np.abs(np.asarray(b.material.color) - wall).max() < 0.1]
        shares.append(len(near) / len(lit))
    assert 0.15 < np.mean(shares) < 0.5, shares
