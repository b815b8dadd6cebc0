"""Furniture of the synthetic rooms: materials, and pieces built from labelled boxes.

A private helper of :mod:`indoorseg.data.synthetic.rooms`. A piece is built in its own
frame: origin on the floor under its centre, x across it, its front towards -y (its back
goes against a wall), z up. Every part is a box with an nyu40 id and a material; ``tops``
are surfaces where props may stand.

Every type of piece is registered by name in ``FURNITURE`` (``WALL_ITEMS`` for what hangs
on a wall) and built with ``build``; to add one, register its builder with ``@furniture``
and place it in the rooms through ``rooms.ADDITIONS`` (its draws then come from a stream
of their own, after all the others, so every room keeps what it had).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial

import numpy as np

from indoorseg.classes import BUILTIN_SPACES
from indoorseg.data.synthetic.textures import Color, Material
from indoorseg.errors import UsageError

NYU40 = BUILTIN_SPACES["nyu40"]
L = {name.replace(" ", "_"): NYU40.id_of(name) for name in NYU40.names}  # L["night_stand"] == 32
VOID = 0
Rng = np.random.Generator

# --- colours and materials -------------------------------------------------------------


def hsv(rng: Rng, h: tuple, s: tuple, v: tuple) -> Color:
    """A colour whose hue, saturation and value are drawn from (low, high) ranges."""
    return colorsys.hsv_to_rgb(*(rng.uniform(*r) for r in (h, s, v)))


def wood(rng: Rng) -> Material:
    return Material("wood", hsv(rng, (0.05, 0.1), (0.35, 0.7), (0.3, 0.8)), seed=rng.random())


def solid(rng: Rng) -> Material:
    """Wood, white laminate or dark grey: what most furniture is made of."""
    pick = rng.random()
    if pick < 0.55:
        return wood(rng)
    color = hsv(rng, (0, 1), (0, 0.1), (0.8, 0.95) if pick < 0.8 else (0.15, 0.35))
    return Material("plain", color, (0.6, 0.6, 0.6), seed=rng.random())


def fabric(rng: Rng, value: tuple = (0.25, 0.8)) -> Material:
    return Material("fabric", hsv(rng, (0, 1), (0.1, 0.6), value), seed=rng.random())


def room_materials(rng: Rng, room_type: str) -> list[Material]:
    """Materials of the four walls (maybe one an accent wall), the floor and the ceiling."""
    kind = "stripes" if rng.random() < 0.2 else "plain"
    light, accent = (
        hsv(rng, (0, 1), (0.02, 0.25), (0.65, 0.95)),
        hsv(rng, (0, 1), (0.1, 0.4), (0.5, 0.9)),
    )
    walls = [Material(kind, light, accent, scale=rng.uniform(0.08, 0.3), seed=rng.random())] * 4
    if rng.random() < 0.25:
        walls[rng.integers(4)] = Material("plain", hsv(rng, (0, 1), (0.2, 0.5), (0.4, 0.8)))
    pick = 0.6 if room_type == "kitchen" else rng.random()
    if pick < 0.45:
        floor = replace(wood(rng), kind="planks", scale=rng.uniform(0.1, 0.2))
    elif pick < 0.7:
        tile, grout = (
            hsv(rng, (0, 0.15), (0, 0.3), (0.5, 0.9)),
            hsv(rng, (0, 1), (0, 0.2), (0.1, 0.5)),
        )
        floor = Material("tiles", tile, grout, scale=rng.uniform(0.25, 0.6), seed=rng.random())
    else:
        floor = Material("carpet", hsv(rng, (0, 1), (0.05, 0.4), (0.25, 0.65)), seed=rng.random())
    white = hsv(rng, (0.05, 0.15), (0, 0.08), (0.8, 0.95))
    ceiling = Material("tiles" if room_type == "office" else "plain", white, white, scale=0.6)
    return [*walls, floor, ceiling]


# --- pieces ----------------------------------------------------------------------------

Part = tuple[tuple[float, float, float], tuple[float, float, float], int, Material]
Top = tuple[float, float, float, float, float]  # centre x, y, half x, half y, height


@dataclass
class Piece:
    """A furniture item: its parts, its footprint's half sizes, surfaces to put props on."""

    parts: list[Part]
    half: tuple[float, float]
    tops: list[Top] = field(default_factory=list)


def _slab(w, d, z0, z1, label: int, m: Material, x=0.0, y=0.0) -> Part:
    """A part ``w`` wide, ``d`` deep, from height ``z0`` to ``z1``, centred on (x, y)."""
    return (x, y, (z0 + z1) / 2), (w / 2, d / 2, (z1 - z0) / 2), label, m


def block(w, d, h, label: int, m: Material, top: bool = True) -> Piece:
    """One box standing on the floor; its top takes props if ``top``."""
    tops = [(0.0, 0.0, w / 2 - 0.03, d / 2 - 0.03, h)] if top else []
    return Piece([_slab(w, d, 0, h, label, m)], (w / 2, d / 2), tops)


def _legs(w, d, h, leg, label: int, m: Material) -> list[Part]:
    """Four square legs ``2 * leg`` thick, ``h`` high, in the corners of a w x d rectangle."""
    spots = [(sx * (w / 2 - leg), sy * (d / 2 - leg)) for sx in (-1, 1) for sy in (-1, 1)]
    return [_slab(2 * leg, 2 * leg, 0, h, label, m, x, y) for x, y in spots]


def table(rng: Rng, low: bool = False) -> Piece:
    w, d, m = rng.uniform(0.8, 1.6), rng.uniform(0.6, 1.0), solid(rng)
    h = rng.uniform(0.4, 0.5) if low else rng.uniform(0.7, 0.78)
    parts = [_slab(w, d, h - 0.04, h, L["table"], m)]
    parts += _legs(w - 0.06, d - 0.06, h - 0.04, rng.uniform(0.02, 0.035), L["table"], m)
    return Piece(parts, (w / 2, d / 2), [(0, 0, w / 2 - 0.08, d / 2 - 0.08, h)])


def desk(rng: Rng) -> Piece:
    w, d, h = rng.uniform(1.0, 1.6), rng.uniform(0.55, 0.75), rng.uniform(0.72, 0.76)
    m, label = solid(rng), L["desk"]
    drawers = replace(m, kind="drawers", color2=(0.3, 0.3, 0.3), grid=(3, 1))
    parts = [
        _slab(w, d, h - 0.03, h, label, m),
        _slab(0.03, d, 0, h - 0.03, label, m, x=0.015 - w / 2),
        _slab(0.42, d, 0, h - 0.03, label, drawers, x=w / 2 - 0.21),
    ]
    return Piece(parts, (w / 2, d / 2), [(-0.2, 0.05, w / 2 - 0.3, d / 2 - 0.1, h)])


def chair(rng: Rng) -> Piece:
    s, h, m = rng.uniform(0.2, 0.25), rng.uniform(0.42, 0.48), solid(rng)
    seat, back = fabric(rng) if rng.random() < 0.5 else m, h + rng.uniform(0.35, 0.5)
    parts = [_slab(2 * s, 2 * s, h - 0.05, h, L["chair"], seat)]
    parts.append(_slab(2 * s, 0.04, h, back, L["chair"], m, y=s - 0.02))
    return Piece(parts + _legs(2 * s, 2 * s, h - 0.05, 0.015, L["chair"], m), (s, s))


def sofa(rng: Rng) -> Piece:
    w, d, seat = rng.uniform(1.5, 2.3), rng.uniform(0.8, 0.95), rng.uniform(0.4, 0.45)
    arm, back, m, label = rng.uniform(0.12, 0.2), rng.uniform(0.18, 0.25), fabric(rng), L["sofa"]
    arm_h = rng.uniform(0.55, 0.65)
    parts = [
        _slab(w - 2 * arm, d - back, 0, seat, label, m, y=-back / 2),
        _slab(w, back, 0, rng.uniform(0.75, 0.9), label, m, y=(d - back) / 2),
        _slab(arm, d, 0, arm_h, label, m, x=(arm - w) / 2),
        _slab(arm, d, 0, arm_h, label, m, x=(w - arm) / 2),
    ]
    for x in rng.uniform(-w / 2 + arm + 0.25, w / 2 - arm - 0.25, rng.integers(0, 3)):
        pillow = fabric(rng, (0.4, 0.95))
        parts.append(
            _slab(0.4, 0.12, seat, seat + 0.38, L["pillow"], pillow, x, d / 2 - back - 0.06)
        )
    return Piece(parts, (w / 2, d / 2))


def bed(rng: Rng) -> Piece:
    w = rng.uniform(0.9, 1.0) if rng.random() < 0.35 else rng.uniform(1.4, 1.8)
    n, frame_h, top = rng.uniform(1.95, 2.1), rng.uniform(0.25, 0.35), rng.uniform(0.45, 0.58)
    frame, cover, label = solid(rng), fabric(rng), L["bed"]
    sheet = Material("fabric", hsv(rng, (0, 1), (0, 0.15), (0.8, 0.95)))
    folded = rng.uniform(0.5, 0.8)  # the cover leaves the pillows free
    parts = [
        _slab(w + 0.06, 0.06, 0, top + rng.uniform(0.3, 0.7), label, frame, y=n / 2 - 0.03),
        _slab(w, n - 0.06, 0, frame_h, label, frame, y=-0.03),
        _slab(w - 0.04, n - 0.1, frame_h, top, label, sheet, y=-0.03),
        _slab(
            w + 0.02,
            n + 0.01 - folded,
            frame_h + 0.05,
            top + 0.04,
            label,
            cover,
            y=-(folded + 0.01) / 2,
        ),
    ]
    count = 1 if w < 1.2 else 2
    span = (w - 0.12) / count
    for i in range(count):
        m = fabric(rng, (0.6, 0.95)) if rng.random() < 0.5 else sheet
        x = -w / 2 + 0.06 + (i + 0.5) * span
        parts.append(_slab(span - 0.04, 0.43, top, top + 0.13, L["pillow"], m, x, n / 2 - 0.335))
    return Piece(parts, (w / 2 + 0.03, n / 2))


STORAGE = {  # width, depth, height (m); rows, columns of drawers or doors: (low, high) ranges
    "cabinet": ((0.6, 1.2), (0.4, 0.6), (0.8, 2.0), (1, 4), (1, 3)),
    "dresser": ((0.9, 1.6), (0.45, 0.55), (0.75, 1.1), (3, 5), (2, 3)),
    "night_stand": ((0.4, 0.55), (0.35, 0.45), (0.45, 0.65), (1, 3), (1, 2)),
    "bookshelf": ((0.6, 1.2), (0.28, 0.4), (1.0, 2.1), (1, 2), (1, 2)),
    "refridgerator": ((0.6, 0.8), (0.6, 0.7), (1.6, 1.9), (2, 3), (1, 2)),
}


def storage(rng: Rng, label: str) -> Piece:
    """Cabinets, dressers, night stands, bookshelves, fridges: boxes with a telling front."""
    w, d, h = (rng.uniform(*r) for r in STORAGE[label][:3])
    grid = tuple(int(rng.integers(*r)) for r in STORAGE[label][3:])
    if label == "bookshelf":
        m = Material("books", wood(rng).color, scale=rng.uniform(0.3, 0.4))
    elif label == "refridgerator":
        m = Material("drawers", hsv(rng, (0, 1), (0, 0.05), (0.75, 0.95)), (0.5,) * 3, grid=grid)
    else:
        handle = hsv(rng, (0, 1), (0, 0.2), (0.1, 0.7))
        m = replace(solid(rng), kind="drawers", color2=handle, grid=grid)
    return block(w, d, h, L[label], m, top=h < 1.3)


def counter(rng: Rng) -> Piece:
    """A kitchen run: base cabinets, a worktop, and wall cabinets above."""
    w, d, z = rng.uniform(1.5, 3.0), 0.6, rng.uniform(1.4, 1.5)
    doors = replace(solid(rng), kind="drawers", color2=(0.4,) * 3, grid=(1, max(1, round(w / 0.5))))
    worktop = Material("plain", hsv(rng, (0, 1), (0, 0.2), (0.2, 0.9)))
    parts = [
        _slab(w, d - 0.03, 0, 0.86, L["cabinet"], doors, y=0.015),
        _slab(w, d, 0.86, 0.9, L["counter"], worktop),
        _slab(w, 0.35, z, z + 0.7, L["cabinet"], doors, y=d / 2 - 0.175),
    ]
    return Piece(parts, (w / 2, d / 2), [(0, 0, w / 2 - 0.05, d / 2 - 0.1, 0.9)])


def lamp(rng: Rng, floor: bool) -> Piece:
    """A floor or table lamp: base, pole and a glowing shade."""
    h = rng.uniform(1.3, 1.7) if floor else rng.uniform(0.3, 0.5)
    r = rng.uniform(0.15, 0.22) if floor else rng.uniform(0.08, 0.14)
    metal = solid(rng)
    shade = Material("plain", hsv(rng, (0.08, 0.15), (0.1, 0.4), (0.85, 1.0)), emit=0.6)
    parts = [
        _slab(1.2 * r, 1.2 * r, 0, 0.03, L["lamp"], metal),
        _slab(0.024, 0.024, 0, h - 0.1, L["lamp"], metal),
        _slab(2 * r, 2 * r, h - 0.5 * r - 0.1, h + 0.5 * r, L["lamp"], shade),
    ]
    return Piece(parts, (r, r))


PROP_SIZES = {"box": (0.08, 0.3), "bag": (0.12, 0.25), "otherprop": (0.03, 0.12)}  # half, m


def prop(rng: Rng, kind: str) -> Piece:
    """Small things: books, televisions, paper, boxes, bags, lamps and other props."""
    if kind == "lamp":
        return lamp(rng, floor=False)
    if kind == "books":  # a stack
        w, d, z, parts = rng.uniform(0.14, 0.24), rng.uniform(0.15, 0.25), 0.0, []
        for t in rng.uniform(0.02, 0.05, rng.integers(1, 5)):
            parts.append(_slab(w, d, z, z + t, L["books"], fabric(rng, (0.2, 0.9))))
            z += t
        return Piece(parts, (w / 2, d / 2))
    if kind == "television":
        w, h, label = rng.uniform(0.6, 1.1), rng.uniform(0.4, 0.65), L["television"]
        m = Material("framed", (0.05, 0.05, 0.06), (0.02, 0.02, 0.02))
        parts = [_slab(0.2, 0.12, 0, 0.08, label, m), _slab(w, 0.05, 0.08, 0.08 + h, label, m)]
        return Piece(parts, (w / 2, 0.06))
    if kind == "paper":
        return block(0.21, 0.297, 0.003, L["paper"], Material("plain", (0.92, 0.92, 0.9)), False)
    w, d, h = rng.uniform(*PROP_SIZES[kind], 3) * 2
    cardboard = kind == "box" and rng.random() < 0.6
    m = (
        Material("plain", hsv(rng, (0.07, 0.1), (0.4, 0.6), (0.5, 0.7)))
        if cardboard
        else fabric(rng)
    )
    # a share of the props stay unlabelled, as unnamed clutter does in NYU Depth v2
    label = VOID if kind == "otherprop" and rng.random() < 0.35 else L[kind]
    return block(w, d, h, label, m, top=kind == "box")


def window(rng: Rng, room_height: float) -> tuple[Piece, float]:
    """A window, maybe with blinds and curtains; returns the piece and its sill height."""
    w, z = rng.uniform(0.8, 2.0), rng.uniform(0.7, 1.0)
    h = min(rng.uniform(1.0, 1.6), room_height - z - 0.2)
    sky, frame = (
        hsv(rng, (0.52, 0.62), (0.05, 0.35), (0.85, 1.0)),
        hsv(rng, (0, 1), (0, 0.05), (0.8, 0.95)),
    )
    panes = (int(rng.integers(1, 3)), int(rng.integers(1, 4)))
    glass = Material("window", sky, frame, grid=panes, emit=1.0, seed=rng.random())
    parts = [_slab(w, 0.05, 0, h, L["window"], glass)]
    if rng.random() < 0.3:
        slats = Material("slats", hsv(rng, (0, 1), (0, 0.2), (0.6, 0.95)))
        parts.append(_slab(w, 0.025, h * rng.uniform(0.3, 0.8), h, L["blinds"], slats, y=-0.0375))
    if rng.random() < 0.4:
        cw, cloth, bottom = rng.uniform(0.25, 0.4), fabric(rng), -z if rng.random() < 0.6 else -0.15
        for side in (-1, 1):
            x = side * (w / 2 + cw / 2 - 0.1)
            parts.append(_slab(cw, 0.08, bottom, h + 0.12, L["curtain"], cloth, x, -0.05))
        w += 2 * cw - 0.2
    return Piece(parts, (w / 2, 0.025)), z


def wall_item(rng: Rng, kind: str, room_height: float) -> tuple[Piece, float]:
    """Doors, windows, wall shelves, pictures, whiteboards, mirrors; and their bottom height."""
    if kind == "window":
        return window(rng, room_height)
    if kind == "door":
        w, h = rng.uniform(0.8, 0.95), min(rng.uniform(2.0, 2.1), room_height - 0.15)
        m = Material("door", solid(rng).color, (0.7, 0.7, 0.65))
        return Piece([_slab(w, 0.04, 0, h, L["door"], m)], (w / 2, 0.02)), 0.0
    if kind == "shelves":
        w = rng.uniform(0.6, 1.2)
        board = _slab(w, 0.3, 0, 0.025, L["shelves"], solid(rng))
        top = (0.0, 0.0, w / 2 - 0.05, 0.13, 0.025)
        return Piece([board], (w / 2, 0.15), [top]), rng.uniform(1.1, 1.6)
    if kind == "picture":
        w, h, center = rng.uniform(0.3, 1.0), rng.uniform(0.3, 0.8), rng.uniform(1.3, 1.7)
        colors = hsv(rng, (0, 1), (0.2, 0.7), (0.5, 0.95)), hsv(rng, (0, 1), (0.3, 0.8), (0.2, 0.7))
        m = Material("painting", *colors, seed=rng.random())
    elif kind == "whiteboard":
        w, h, center = rng.uniform(1.2, 2.4), rng.uniform(0.9, 1.2), 1.45
        m = Material("framed", (0.93, 0.93, 0.92), (0.7, 0.7, 0.72))
    else:  # mirror
        w, h, center = rng.uniform(0.4, 0.8), rng.uniform(0.6, 1.2), 1.45
        m = Material("framed", (0.7, 0.75, 0.8), (0.3, 0.25, 0.2), emit=0.35)
    h = min(h, 2 * (room_height - center - 0.1))
    return Piece([_slab(w, 0.03, 0, h, L[kind], m)], (w / 2, 0.015)), center - h / 2


# --- the registry -----------------------------------------------------------------------

FURNITURE: dict[str, Callable[[Rng], Piece]] = {}
WALL_ITEMS: dict[str, Callable[[Rng, float], tuple[Piece, float]]] = {}


def furniture(name: str, builder: Callable[[Rng], Piece] | None = None):
    """Register ``builder`` (rng -> Piece) as the furniture type ``name``; as a decorator
    without ``builder``."""
    if builder is None:
        return lambda func: furniture(name, func)
    if name in FURNITURE:
        raise ValueError(f"furniture type {name!r} is registered already")
    FURNITURE[name] = builder
    return builder


def build(name: str, rng: Rng) -> Piece:
    """A new piece of the registered type ``name``, drawn from ``rng``."""
    if name not in FURNITURE:
        raise UsageError(f"unknown furniture type {name!r}; known: {', '.join(FURNITURE)}")
    return FURNITURE[name](rng)


for _name, _builder in {
    "table": table,
    "low_table": partial(table, low=True),
    "desk": desk,
    "chair": chair,
    "sofa": sofa,
    "bed": bed,
    "counter": counter,
    "floor_lamp": partial(lamp, floor=True),
    **{label: partial(storage, label=label) for label in STORAGE},
    **{kind: partial(prop, kind=kind) for kind in ("lamp", "books", "television", "paper")},
    **{kind: partial(prop, kind=kind) for kind in PROP_SIZES},
}.items():
    furniture(_name, _builder)
for _kind in ("window", "door", "shelves", "picture", "whiteboard", "mirror"):
    WALL_ITEMS[_kind] = partial(lambda rng, height, kind: wall_item(rng, kind, height), kind=_kind)
