"""Random furnished rooms for :mod:`indoorseg.data.synthetic`: room types, camera and lights.

A private helper. ``furnish(rng)`` draws a room type (bedroom, living room, office,
kitchen, dining room), the room's size and materials, a camera pose, lights, and places
the pieces of :mod:`indoorseg.data.synthetic.furniture` with
:mod:`indoorseg.data.synthetic.layout`: things on the walls first, furniture with its back to
a wall or free in the room (never overlapping, never at the camera), then props on the
tables and shelves, and last the pieces of ``ADDITIONS`` from a stream of their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from indoorseg.data.synthetic import furniture as fu
from indoorseg.data.synthetic import raycast as rc
from indoorseg.data.synthetic.layout import Layout
from indoorseg.data.synthetic.raycast import Box
from indoorseg.data.synthetic.textures import Color, Material

ROOM_TYPES = ("bedroom", "living", "office", "kitchen", "dining")


@dataclass(frozen=True)
class Addition:
    """A furniture type (``furniture.FURNITURE``) placed in rooms after everything else,
    drawn from a stream of its own: with ``chance`` in rooms of ``room_types``, against a
    wall or free in the room."""

    kind: str
    room_types: tuple[str, ...] = ROOM_TYPES
    chance: float = 1.0
    against_wall: bool = True


# Append only: each entry draws after the earlier ones, so adding one leaves every room as it
# was but for the new pieces (raise GENERATOR in ``folder``: the rooms do change).
ADDITIONS: list[Addition] = []


@dataclass
class Scene:
    """Everything the renderer needs for one image (world: x, y on the floor, z up)."""

    room_type: str
    dims: np.ndarray  # (3,) width (x), depth (y), height (z) in metres
    origin: np.ndarray  # (3,) camera position
    rotation: np.ndarray  # (3, 3) camera -> world
    room: list[Material]  # the six room faces
    boxes: list[Box]
    lights: list[tuple[np.ndarray, float]]  # position, power
    ambient: float
    footprints: list[tuple[float, float, float, float, float]]  # x, y, half x, half y, yaw


def _bedroom(lay: Layout, rng: np.random.Generator) -> None:
    bed = fu.build("bed", rng)
    placed = lay.against_wall(bed)
    for side in (-1, 1) if placed else ():
        if rng.random() < 0.7:
            stand = fu.build("night_stand", rng)
            pos = placed.pos + side * (bed.half[0] + stand.half[0] + 0.05)
            lay.decorate(
                lay.against_wall(stand, placed.wall, pos), ("lamp", "books", "otherprop"), 0.9
            )
    for label, p in (("dresser", 0.6), ("cabinet", 0.4), ("bookshelf", 0.3)):
        if rng.random() < p:
            lay.storage(label, ("television", "box", "books", "otherprop", "lamp"))
    if rng.random() < 0.35:
        lay.desk_with_chair()
    lay.on_floor(("box", "bag", "otherprop", "lamp"), rng.integers(0, 4))


def _living(lay: Layout, rng: np.random.Generator) -> None:
    lay.against_wall(fu.build("sofa", rng))
    if rng.random() < 0.8:
        lay.table_with_chairs(0, low=True)
    if rng.random() < 0.7:
        lay.storage("cabinet", ("television",))
    for _ in range(rng.integers(0, 3)):
        lay.storage("bookshelf")
    for _ in range(rng.integers(0, 3)):
        lay.free(fu.build("chair", rng), aligned=False)
    lay.on_floor(("lamp", "lamp", "otherprop", "box"), rng.integers(1, 4))


def _office(lay: Layout, rng: np.random.Generator) -> None:
    for _ in range(rng.integers(1, 4)):
        lay.desk_with_chair()
    for _ in range(rng.integers(1, 4)):
        lay.storage(str(rng.choice(["bookshelf", "cabinet"])))
    lay.on_floor(("box", "box", "otherprop", "bag"), rng.integers(0, 5))


def _kitchen(lay: Layout, rng: np.random.Generator) -> None:
    lay.decorate(lay.against_wall(fu.build("counter", rng)), ("otherprop", "box", "books"), p=1.0)
    if rng.random() < 0.8:
        lay.against_wall(fu.build("refridgerator", rng))
    if rng.random() < 0.6:
        lay.table_with_chairs(rng.integers(2, 5))
    lay.on_floor(("box", "otherprop", "bag"), rng.integers(0, 3))


def _dining(lay: Layout, rng: np.random.Generator) -> None:
    lay.table_with_chairs(rng.integers(3, 7))
    for label in ("dresser", "cabinet"):
        if rng.random() < 0.5:
            lay.storage(label, ("box", "books", "otherprop", "lamp"))
    lay.on_floor(("lamp", "otherprop", "box"), rng.integers(0, 3))


FURNISHERS = {
    "bedroom": _bedroom,
    "living": _living,
    "office": _office,
    "kitchen": _kitchen,
    "dining": _dining,
}


def _furnish(lay: Layout, room_type: str) -> None:
    """The furniture of each room type, most important first (it gets the free space), then
    whatever else rooms hold."""
    rng = lay.rng
    FURNISHERS[room_type](lay, rng)
    for _ in range(rng.integers(1, 4)):
        lay.storage(str(rng.choice(["cabinet", "bookshelf", "dresser", "night_stand"])))
    if rng.random() < 0.4:
        lay.free(fu.build("chair", rng), aligned=False)
    lay.on_floor(("box", "otherprop", "bag"), rng.integers(1, 4))


def furnish(rng: np.random.Generator, extras: np.random.Generator | None = None) -> Scene:
    """A random room with its camera, lights and furniture, drawn from ``rng``; the pieces
    of ``ADDITIONS`` are drawn from ``extras`` (none without it)."""
    room_type = ROOM_TYPES[rng.choice(len(ROOM_TYPES), p=[0.28, 0.24, 0.2, 0.12, 0.16])]
    dims = np.array([rng.uniform(3, 7), rng.uniform(3, 8), rng.uniform(2.4, 3.2)])
    back = int(rng.integers(4))
    lay = Layout(rng, dims, back)

    # camera: a step in front of the back wall, looking at a point in the far part of the room
    length, extent = lay.walls[back][3], dims[0] if back < 2 else dims[1]
    x, y, _ = lay.on_wall(back, rng.uniform(0.2, 0.8) * length, rng.uniform(0.3, 1.2))
    tx, ty, _ = lay.on_wall(back, rng.uniform(0.1, 0.9) * length, rng.uniform(0.55, 1.0) * extent)
    yaw = math.atan2(x - tx, ty - y) + rng.normal(0, 0.08)
    origin = np.array([x, y, rng.uniform(1.0, 1.8)])
    rotation = rc.look_rotation(yaw, -rng.uniform(0.0, 0.25), rng.normal(0, 0.03))
    lay.taken.append((x - 0.7, x + 0.7, y - 0.7, y + 0.7))  # nothing right at the camera
    lay.view = (x, y, yaw)

    if rng.random() < 0.3:  # a rug: thin, under the furniture, takes no floor
        w, d = rng.uniform(1.0, 2.5), rng.uniform(0.8, 2.0)
        carpet = Material("carpet", fu.fabric(rng).color, seed=rng.random())
        x, y = rng.uniform(w / 2, dims[0] - w / 2), rng.uniform(d / 2, dims[1] - d / 2)
        rug = fu.block(w, d, 0.01, fu.L["floor_mat"], carpet, top=False)
        lay.add(rug, x, y, rng.integers(2) * math.pi / 2, shadow=False)
    kinds = ["door"] * (rng.random() < 0.75) + ["window"] * rng.integers(0, 3)
    kinds += ["picture"] * rng.integers(0, 4) + ["mirror"] * (rng.random() < 0.2)
    kinds += ["whiteboard"] * (rng.random() < (0.6 if room_type == "office" else 0.05))
    kinds += ["shelves"] * (rng.random() < 0.25)
    for kind in kinds:
        piece, z = fu.WALL_ITEMS[kind](rng, dims[2])
        lay.decorate(lay.hang(piece, z, door=kind == "door"), ("books", "otherprop", "box"), 0.9)
    _furnish(lay, room_type)

    lights = ceiling_lamps(rng, dims)
    room = fu.room_materials(rng, room_type)
    ambient = rng.uniform(0.25, 0.4)  # drawn before the painting: the rooms stay as measured
    boxes = wall_coloured(rng, lay.boxes, room[0].color)
    if extras is not None:
        boxes += added_last(lay, room_type, extras)
    return Scene(
        room_type=room_type,
        dims=dims,
        origin=origin,
        rotation=rotation,
        room=room,
        boxes=boxes,
        lights=lights,
        ambient=ambient,
        footprints=lay.footprints,
    )


def ceiling_lamps(rng: np.random.Generator, dims: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """One or two lamps under the ceiling: position and power."""
    lights = []
    for _ in range(rng.integers(1, 3)):
        x, y = rng.uniform(0.25, 0.75, 2) * dims[:2]
        lights.append((np.array([x, y, dims[2] - 0.4]), rng.uniform(0.6, 1.1)))
    return lights


def added_last(lay: Layout, room_type: str, extras: np.random.Generator) -> list[Box]:
    """The boxes of ``ADDITIONS`` placed in the room, every draw taken from ``extras``."""
    first, lay.rng = len(lay.boxes), extras
    for addition in ADDITIONS:
        if room_type in addition.room_types and extras.random() < addition.chance:
            piece = fu.build(addition.kind, extras)
            lay.against_wall(piece) if addition.against_wall else lay.free(piece)
    return lay.boxes[first:]


def wall_coloured(
    rng: np.random.Generator, boxes: list[Box], wall: Color, share: float = 0.25
) -> list[Box]:
    """``boxes`` with about ``share`` of the lit ones given a colour close to ``wall``.

    Lit boxes are all but lamps and window glass (``emit == 0``): furniture, doors,
    pictures, rugs, props. Only a material's main colour changes; its second colour and
    pattern stay. ``furnish`` passes the first wall's colour (an accent wall's, in the rooms
    that have one there). Real rooms are full of objects the colour of their walls (white
    cabinets, radiators, window frames, doors); without them a model learns that a change
    of colour is a change of class. Measured over twenty paired training seeds on real NYU
    photos: about +1 mean IoU point; half the boxes is worse (docs/synthetic-to-real.md).
    Each box takes four draws, painted or not, so what is drawn after does not depend on
    which were.
    """
    wall_rgb, draws = np.asarray(wall), rng.random((len(boxes), 4))
    out: list[Box] = []
    for box, draw in zip(boxes, draws, strict=True):
        if box.material.emit == 0 and draw[0] < share:
            color = np.clip(wall_rgb * (0.9 + 0.15 * draw[1:]), 0, 1)
            box = replace(box, material=replace(box.material, color=tuple(map(float, color))))
        out.append(box)
    return out
