"""Random furnished rooms for :mod:`indoorseg.data.synthetic`: materials, furniture, layout.

A private helper. ``furnish(rng)`` draws a room type (bedroom, living room, office,
kitchen, dining room), the room's size and materials, a camera pose, lights, and the boxes
of the furniture, the things on the walls and the props on tables, each labelled with its
nyu40 id. Furniture is built in its own frame (origin on the floor under its centre, front
towards -y) and then turned to stand against a wall or free in the room, without overlaps.
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass, field

import numpy as np

from indoorseg.classes import BUILTIN_SPACES
from indoorseg.data import _raycast as rc
from indoorseg.data._raycast import Box, Material

NYU40 = BUILTIN_SPACES["nyu40"]
L = {name.replace(" ", "_"): NYU40.id_of(name) for name in NYU40.names}  # L["night_stand"] == 32
VOID = 0
ROOM_TYPES = ("bedroom", "living", "office", "kitchen", "dining")


# --- colours and materials -------------------------------------------------------------


def _hsv(rng: np.random.Generator, h, s, v) -> rc.Color:
    """A colour with hue, saturation and value drawn from (low, high) ranges."""
    return colorsys.hsv_to_rgb(*(rng.uniform(*r) for r in (h, s, v)))


def _wood(rng, kind="wood") -> Material:
    return Material(kind, _hsv(rng, (0.05, 0.1), (0.35, 0.7), (0.3, 0.8)), seed=rng.random())


def _furniture(rng, kind="plain") -> Material:
    """Wood, white laminate or dark grey: what most furniture is made of."""
    pick = rng.random()
    if pick < 0.55:
        return _wood(rng, "wood" if kind == "plain" else kind)
    color = _hsv(rng, (0, 1), (0, 0.1), (0.8, 0.95) if pick < 0.8 else (0.15, 0.35))
    return Material(kind, color, (0.6, 0.6, 0.6), seed=rng.random())


def _fabric(rng, value=(0.25, 0.8)) -> Material:
    return Material("fabric", _hsv(rng, (0, 1), (0.1, 0.6), value), seed=rng.random())


def _room_materials(rng, room_type: str) -> list[Material]:
    """Materials of the walls (one, maybe an accent wall), floor and ceiling."""
    wall = Material(
        "stripes" if rng.random() < 0.2 else "plain",
        _hsv(rng, (0, 1), (0.02, 0.25), (0.65, 0.95)),
        _hsv(rng, (0, 1), (0.1, 0.4), (0.5, 0.9)),
        scale=rng.uniform(0.08, 0.3),
        seed=rng.random(),
    )
    walls = [wall] * 4
    if rng.random() < 0.25:
        walls[rng.integers(4)] = Material("plain", _hsv(rng, (0, 1), (0.2, 0.5), (0.4, 0.8)))
    pick = rng.random() if room_type != "kitchen" else 0.6
    if pick < 0.45:
        floor = Material("planks", _wood(rng).color, scale=rng.uniform(0.1, 0.2), seed=rng.random())
    elif pick < 0.7:
        floor = Material(
            "tiles", _hsv(rng, (0, 0.15), (0, 0.3), (0.5, 0.9)),
            _hsv(rng, (0, 1), (0, 0.2), (0.1, 0.5)), scale=rng.uniform(0.25, 0.6), seed=rng.random()
        )
    else:
        floor = Material("carpet", _hsv(rng, (0, 1), (0.05, 0.4), (0.25, 0.65)), seed=rng.random())
    white = _hsv(rng, (0.05, 0.15), (0, 0.08), (0.8, 0.95))
    ceiling = Material("tiles" if room_type == "office" else "plain", white, white, scale=0.6)
    return [*walls, floor, ceiling]


# --- furniture: parts in the piece's own frame (origin on the floor, front towards -y) --

Part = tuple[tuple[float, float, float], tuple[float, float, float], int, Material]


@dataclass
class Piece:
    """A furniture item: its parts, footprint half sizes and surfaces to put props on."""

    parts: list[Part]
    half: tuple[float, float]
    tops: list[tuple[float, float, float, float, float]] = field(default_factory=list)


def _part(x0, x1, y0, y1, z0, z1, label: int, m: Material) -> Part:
    return ((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2), ((x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2), label, m


def _block(w, d, h, label, m, top=True) -> Piece:
    """A plain box standing on the floor (cabinets, dressers, shelves, props)."""
    tops = [(0.0, 0.0, w / 2 - 0.03, d / 2 - 0.03, h)] if top else []
    return Piece([_part(-w / 2, w / 2, -d / 2, d / 2, 0, h, label, m)], (w / 2, d / 2), tops)


def _legs(w, d, z, leg, label, m) -> list[Part]:
    xs, ys = (-w / 2 + leg, w / 2 - 3 * leg), (-d / 2 + leg, d / 2 - 3 * leg)
    return [_part(x, x + 2 * leg, y, y + 2 * leg, 0, z, label, m) for x in xs for y in ys]


def _table(rng, low=False) -> Piece:
    w, d = rng.uniform(0.8, 1.6), rng.uniform(0.6, 1.0)
    h, m = rng.uniform(0.4, 0.5) if low else rng.uniform(0.7, 0.78), _furniture(rng)
    parts = [_part(-w / 2, w / 2, -d / 2, d / 2, h - 0.04, h, L["table"], m)]
    parts += _legs(w - 0.06, d - 0.06, h - 0.04, rng.uniform(0.02, 0.035), L["table"], m)
    return Piece(parts, (w / 2, d / 2), [(0, 0, w / 2 - 0.08, d / 2 - 0.08, h)])


def _desk(rng) -> Piece:
    w, d, h, m = rng.uniform(1.0, 1.6), rng.uniform(0.55, 0.75), rng.uniform(0.72, 0.76), _furniture(rng)
    drawers = Material("drawers", m.color, (0.3, 0.3, 0.3), grid=(3, 1), seed=m.seed)
    parts = [
        _part(-w / 2, w / 2, -d / 2, d / 2, h - 0.03, h, L["desk"], m),
        _part(-w / 2, -w / 2 + 0.03, -d / 2, d / 2, 0, h - 0.03, L["desk"], m),
        _part(w / 2 - 0.42, w / 2, -d / 2, d / 2, 0, h - 0.03, L["desk"], drawers),
    ]
    return Piece(parts, (w / 2, d / 2), [(0, 0.05, w / 2 - 0.1, d / 2 - 0.1, h)])


def _chair(rng) -> Piece:
    s, h, m = rng.uniform(0.2, 0.25), rng.uniform(0.42, 0.48), _furniture(rng)
    seat = _fabric(rng) if rng.random() < 0.5 else m
    parts = [_part(-s, s, -s, s, h - 0.05, h, L["chair"], seat)]
    parts += _legs(2 * s, 2 * s, h - 0.05, 0.015, L["chair"], m)
    parts.append(_part(-s, s, s - 0.04, s, h, h + rng.uniform(0.35, 0.5), L["chair"], m))
    return Piece(parts, (s, s))


def _sofa(rng) -> Piece:
    w, d, seat, m = rng.uniform(1.5, 2.3), rng.uniform(0.8, 0.95), rng.uniform(0.4, 0.45), _fabric(rng)
    arm, back = rng.uniform(0.12, 0.2), rng.uniform(0.18, 0.25)
    ah, bh = rng.uniform(0.55, 0.65), rng.uniform(0.75, 0.9)
    parts = [
        _part(-w / 2 + arm, w / 2 - arm, -d / 2, d / 2 - back, 0, seat, L["sofa"], m),
        _part(-w / 2, w / 2, d / 2 - back, d / 2, 0, bh, L["sofa"], m),
        _part(-w / 2, -w / 2 + arm, -d / 2, d / 2, 0, ah, L["sofa"], m),
        _part(w / 2 - arm, w / 2, -d / 2, d / 2, 0, ah, L["sofa"], m),
    ]
    for x in rng.uniform(-w / 2 + arm + 0.25, w / 2 - arm - 0.25, rng.integers(0, 3)):
        parts.append(_part(x - 0.2, x + 0.2, d / 2 - back - 0.12, d / 2 - back, seat, seat + 0.38, L["pillow"], _fabric(rng)))
    return Piece(parts, (w / 2, d / 2))


def _bed(rng) -> Piece:
    w = rng.uniform(0.9, 1.0) if rng.random() < 0.35 else rng.uniform(1.4, 1.8)
    n, fh, mh = rng.uniform(1.95, 2.1), rng.uniform(0.25, 0.35), rng.uniform(0.18, 0.25)
    frame, sheet = _furniture(rng), Material("fabric", _hsv(rng, (0, 1), (0, 0.15), (0.8, 0.95)))
    top = fh + mh
    parts = [
        _part(-w / 2 - 0.03, w / 2 + 0.03, n / 2 - 0.06, n / 2, 0, top + rng.uniform(0.3, 0.7), L["bed"], frame),
        _part(-w / 2, w / 2, -n / 2, n / 2 - 0.06, 0, fh, L["bed"], frame),
        _part(-w / 2 + 0.02, w / 2 - 0.02, -n / 2 + 0.02, n / 2 - 0.06, fh, top, L["bed"], sheet),
        _part(-w / 2 - 0.01, w / 2 + 0.01, -n / 2 - 0.01, n / 2 - rng.uniform(0.5, 0.8), fh + 0.05, top + 0.04, L["bed"], _fabric(rng)),
    ]
    count = 1 if w < 1.2 else 2
    for i in range(count):
        x0 = -w / 2 + 0.06 + i * (w - 0.12) / count
        pillow = _fabric(rng, (0.6, 0.95)) if rng.random() < 0.5 else sheet
        parts.append(_part(x0 + 0.02, x0 + (w - 0.12) / count - 0.02, n / 2 - 0.55, n / 2 - 0.12, top, top + 0.13, L["pillow"], pillow))
    return Piece(parts, (w / 2 + 0.03, n / 2))


def _storage(rng, label: str) -> Piece:
    """Cabinets, dressers, night stands, bookshelves and fridges: boxes with a telling front."""
    w, d, h, rows, cols = {
        "cabinet": (rng.uniform(0.6, 1.2), rng.uniform(0.4, 0.6), rng.uniform(0.8, 2.0), rng.integers(1, 4), rng.integers(1, 3)),
        "dresser": (rng.uniform(0.9, 1.6), rng.uniform(0.45, 0.55), rng.uniform(0.75, 1.1), rng.integers(3, 5), 2),
        "night_stand": (rng.uniform(0.4, 0.55), rng.uniform(0.35, 0.45), rng.uniform(0.45, 0.65), rng.integers(1, 3), 1),
        "bookshelf": (rng.uniform(0.6, 1.2), rng.uniform(0.28, 0.4), rng.uniform(1.0, 2.1), 1, 1),
        "refridgerator": (rng.uniform(0.6, 0.8), 0.65, rng.uniform(1.6, 1.9), 2, 1),
    }[label]
    if label == "bookshelf":
        m = Material("books", _wood(rng).color, scale=rng.uniform(0.3, 0.4))
    elif label == "refridgerator":
        m = Material("drawers", _hsv(rng, (0, 1), (0, 0.05), (0.75, 0.95)), (0.5, 0.5, 0.5), grid=(2, 1))
    else:
        base = _furniture(rng)
        m = Material("drawers", base.color, _hsv(rng, (0, 1), (0, 0.2), (0.1, 0.7)), grid=(int(rows), int(cols)), seed=rng.random())
    return _block(w, d, h, L[label], m, top=h < 1.3)


def _counter(rng) -> Piece:
    """A kitchen run: base cabinets, a worktop, and wall cabinets above it."""
    w, d = rng.uniform(1.5, 3.0), 0.6
    doors = Material("drawers", _furniture(rng).color, (0.4, 0.4, 0.4), grid=(1, max(1, round(w / 0.5))), seed=rng.random())
    top = Material("plain", _hsv(rng, (0, 1), (0, 0.2), (0.2, 0.9)))
    z0 = rng.uniform(1.4, 1.5)
    parts = [
        _part(-w / 2, w / 2, -d / 2 + 0.03, d / 2, 0, 0.86, L["cabinet"], doors),
        _part(-w / 2, w / 2, -d / 2, d / 2, 0.86, 0.9, L["counter"], top),
        _part(-w / 2, w / 2, d / 2 - 0.35, d / 2, z0, z0 + 0.7, L["cabinet"], doors),
    ]
    return Piece(parts, (w / 2, d / 2), [(0, 0, w / 2 - 0.05, d / 2 - 0.1, 0.9)])


def _lamp(rng, floor: bool) -> Piece:
    h, r = (rng.uniform(1.3, 1.7), rng.uniform(0.15, 0.22)) if floor else (rng.uniform(0.3, 0.5), rng.uniform(0.08, 0.14))
    metal, shade = _furniture(rng), Material("plain", _hsv(rng, (0.08, 0.15), (0.1, 0.4), (0.85, 1.0)), emit=0.6)
    parts = [
        _part(-r * 0.6, r * 0.6, -r * 0.6, r * 0.6, 0, 0.03, L["lamp"], metal),
        _part(-0.012, 0.012, -0.012, 0.012, 0, h - 0.1, L["lamp"], metal),
        _part(-r, r, -r, r, h - 0.5 * r - 0.1, h + 0.5 * r, L["lamp"], shade),
    ]
    return Piece(parts, (r, r))


def _prop(rng, kind: str) -> Piece:
    """Small things on tables and floors: books, boxes, papers, bags, televisions, others."""
    if kind == "books":
        w, d, z, parts = rng.uniform(0.14, 0.24), rng.uniform(0.2, 0.3), 0.0, []
        for _ in range(rng.integers(1, 5)):
            t = rng.uniform(0.02, 0.05)
            parts.append(_part(-w / 2, w / 2, -d / 2, d / 2, z, z + t, L["books"], _fabric(rng, (0.2, 0.9))))
            z += t
        return Piece(parts, (w / 2, d / 2))
    if kind == "television":
        w, h = rng.uniform(0.6, 1.1), rng.uniform(0.4, 0.65)
        m = Material("framed", (0.05, 0.05, 0.06), (0.02, 0.02, 0.02))
        return Piece([_part(-0.1, 0.1, -0.06, 0.06, 0, 0.08, L["television"], m), _part(-w / 2, w / 2, -0.025, 0.025, 0.08, 0.08 + h, L["television"], m)], (w / 2, 0.06))
    if kind == "paper":
        return _block(0.21, 0.297, 0.003, L["paper"], Material("plain", (0.92, 0.92, 0.9)), top=False)
    size = {"box": (0.08, 0.3), "bag": (0.12, 0.25), "otherprop": (0.03, 0.12)}[kind]
    w, d, h = rng.uniform(*size, 3) * 2
    m = Material("plain", _hsv(rng, (0.07, 0.1), (0.4, 0.6), (0.5, 0.7))) if kind == "box" and rng.random() < 0.6 else _fabric(rng, (0.2, 0.9))
    # a share of the props stay unlabelled, as unnamed clutter does in NYU Depth v2
    label = VOID if kind == "otherprop" and rng.random() < 0.35 else L[kind]
    return _block(w, d, h, label, m, top=kind == "box")


def _wall_item(rng, kind: str, height: float) -> tuple[Piece, float]:
    """Pictures, windows, doors, whiteboards, mirrors, shelves: a piece and its bottom height."""
    if kind == "door":
        w, h = rng.uniform(0.8, 0.95), min(rng.uniform(2.0, 2.1), height - 0.15)
        m = Material("door", _furniture(rng).color, (0.7, 0.7, 0.65))
        return Piece([_part(-w / 2, w / 2, -0.02, 0.02, 0, h, L["door"], m)], (w / 2, 0.02)), 0.0
    if kind == "window":
        w, z = rng.uniform(0.8, 2.0), rng.uniform(0.7, 1.0)
        h = min(rng.uniform(1.0, 1.6), height - z - 0.2)
        glass = Material("window", _hsv(rng, (0.52, 0.62), (0.05, 0.35), (0.85, 1.0)), _hsv(rng, (0, 1), (0, 0.05), (0.8, 0.95)), grid=(int(rng.integers(1, 3)), int(rng.integers(1, 4))), emit=1.0, seed=rng.random())
        parts = [_part(-w / 2, w / 2, -0.025, 0.025, 0, h, L["window"], glass)]
        if rng.random() < 0.3:
            cut = h * rng.uniform(0.2, 0.7)
            parts.append(_part(-w / 2, w / 2, -0.05, -0.025, h - cut, h, L["blinds"], Material("slats", _hsv(rng, (0, 1), (0, 0.2), (0.6, 0.95)))))
        if rng.random() < 0.4:
            cw, cloth, bottom = rng.uniform(0.25, 0.4), _fabric(rng), -z if rng.random() < 0.6 else -0.15
            for x in (-w / 2 - cw + 0.1, w / 2 - 0.1):
                parts.append(_part(x, x + cw, -0.09, -0.01, bottom, h + 0.12, L["curtain"], cloth))
            w += 2 * cw - 0.2
        return Piece(parts, (w / 2, 0.045)), z
    if kind == "shelves":
        w, m = rng.uniform(0.6, 1.2), _furniture(rng)
        return Piece([_part(-w / 2, w / 2, -0.12, 0.12, 0, 0.025, L["shelves"], m)], (w / 2, 0.12), [(0, 0, w / 2 - 0.05, 0.07, 0.025)]), rng.uniform(1.1, 1.6)
    w, h, center, label, m = {
        "picture": lambda: (*rng.uniform(0.3, 1.0, 2), rng.uniform(1.3, 1.7), "picture", Material("painting", _hsv(rng, (0, 1), (0.2, 0.7), (0.5, 0.95)), _hsv(rng, (0, 1), (0.3, 0.8), (0.2, 0.7)), seed=rng.random())),
        "whiteboard": lambda: (rng.uniform(1.2, 2.4), rng.uniform(0.9, 1.2), 1.45, "whiteboard", Material("framed", (0.93, 0.93, 0.92), (0.7, 0.7, 0.72))),
        "mirror": lambda: (rng.uniform(0.4, 0.8), rng.uniform(0.6, 1.2), 1.45, "mirror", Material("framed", (0.7, 0.75, 0.8), (0.3, 0.25, 0.2), emit=0.35)),
    }[kind]()
    h = min(h, 2 * (height - center - 0.1))
    return Piece([_part(-w / 2, w / 2, -0.015, 0.015, 0, h, L[label], m)], (w / 2, 0.015)), center - h / 2
