"""Procedural textures of the synthetic rooms: patterns computed from the hit points.

A private helper of :mod:`indoorseg.data.synthetic.raycast`. A texture takes the hit points of one
surface in the object's own frame, ``(3, n)``, their faces ``(n,)`` (``2 * axis + (side >
0)``; ``FRONT`` is the -y face), the object's half sizes ``(3,)`` and its material, and
returns albedo ``(3, n)`` in 0..1. Patterns are functions of position, so they stick to the
surfaces in every view; randomness comes from a hash of lattice cells, not a generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FRONT = 2  # face id of an object's front (-y)
Color = tuple[float, float, float]


@dataclass(frozen=True)
class Material:
    """How a surface looks: a texture kind and its parameters (colours are RGB in 0..1).

    Attributes:
        kind: a key of ``TEXTURES``.
        color, color2: main and secondary colour (grout, frame, handle...).
        scale: pattern size in metres (plank width, tile size, shelf height...).
        grid: rows, columns of drawers or window panes.
        emit: 0 = lit by the lights, 1 = shows its own colour (window glass, lamp shades).
        seed: varies a pattern between objects, in [0, 1).
    """

    kind: str = "plain"
    color: Color = (0.8, 0.8, 0.8)
    color2: Color = (0.2, 0.2, 0.2)
    scale: float = 0.2
    grid: tuple[int, int] = (1, 1)
    emit: float = 0.0
    seed: float = 0.0


def _rgb(color: Color) -> np.ndarray:
    return np.asarray(color, dtype=np.float32)[:, None]


def _hash(x: np.ndarray, y: np.ndarray | float) -> np.ndarray:
    """Cheap value in [0, 1) per integer lattice cell (the classic sin-fract hash)."""
    h = np.sin(x * np.float32(12.9898) + y * np.float32(78.233)) * np.float32(43758.547)
    return h - np.floor(h)


def _noise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Smooth value noise in [0, 1): hashed lattice, smoothstep-interpolated."""
    ix, iy = np.floor(x), np.floor(y)
    fx, fy = x - ix, y - iy
    sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    a, b = _hash(ix, iy), _hash(ix + 1, iy)
    c, d = _hash(ix, iy + 1), _hash(ix + 1, iy + 1)
    return a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy


def _face_uv(p: np.ndarray, face: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two coordinates across a face: horizontal and vertical on walls, x and y on floors."""
    axis = face >> 1
    return np.where(axis == 0, p[1], p[0]), np.where(axis == 2, p[1], p[2])


def _front(p: np.ndarray, half: np.ndarray, border: float) -> tuple[np.ndarray, ...]:
    """Front-face coordinates in [-1, 1] and a mask of a frame ``border`` metres wide."""
    q0, q2 = p[0] / half[0], p[2] / half[2]
    frame = (np.abs(q0) > 1 - border / half[0]) | (np.abs(q2) > 1 - border / half[2])
    return q0, q2, frame


def _plain(p, face, half, m):
    u, v = _face_uv(p, face)
    return _rgb(m.color) * (0.95 + 0.07 * _noise(u * 2 + 31 * m.seed, v * 2))


def _wood(p, face, half, m):
    u, v = _face_uv(p, face)
    wobble = _noise(u * 2 + 17 * m.seed, v * 20)
    return _rgb(m.color) * (0.86 + 0.08 * np.sin(v * 70 + 9 * wobble) + 0.08 * wobble)


def _fabric(p, face, half, m):
    u, v = _face_uv(p, face)
    fine = _hash(np.floor(u * 150), np.floor(v * 150))
    return _rgb(m.color) * (0.8 + 0.12 * fine + 0.15 * _noise(u * 4, v * 4 + 13 * m.seed))


def _planks(p, face, half, m):
    u, v = _face_uv(p, face)
    if m.seed > 0.5:
        u, v = v, u
    width, length = m.scale, 8 * m.scale
    row = np.floor(v / width)
    shift = _hash(row, 7.0) * length
    col = np.floor((u + shift) / length)
    tone = 0.75 + 0.3 * _hash(row, col) + 0.05 * np.sin(u * 25 + 4 * np.sin(v * 11 + row))
    seam = (v / width - row < 0.05) | ((u + shift) / length - col < 0.01)
    return _rgb(m.color) * np.where(seam, 0.5, tone)


def _tiles(p, face, half, m):
    u, v = _face_uv(p, face)
    iu, iv = np.floor(u / m.scale), np.floor(v / m.scale)
    grout = (u / m.scale - iu < 0.04) | (v / m.scale - iv < 0.04)
    checker = ((iu + iv) % 2 == 1) & (m.seed > 0.6)
    tile = np.where(checker, _rgb(m.color2), _rgb(m.color)) * (0.93 + 0.1 * _hash(iu, iv))
    return np.where(grout, _rgb(m.color) * 0.72, tile)


def _carpet(p, face, half, m):
    u, v = _face_uv(p, face)
    fine = _hash(np.floor(u * 120), np.floor(v * 120))
    return _rgb(m.color) * (0.75 + 0.2 * fine + 0.15 * _noise(u * 1.5, v * 1.5 + 5 * m.seed))


def _stripes(p, face, half, m):
    u, v = _face_uv(p, face)
    band = (u / m.scale) % 1 < 0.5
    return np.where(band, _rgb(m.color), 0.8 * _rgb(m.color) + 0.2 * _rgb(m.color2))


def _painting(p, face, half, m):
    q0, q2, frame = _front(p, half, 0.035)
    k = np.float32(40 * m.seed)
    horizon = 0.35 * np.sin(2.3 * q0 + k) - 0.1
    sky = _rgb(m.color) * (0.8 + 0.25 * q2)
    ground = _rgb(m.color2) * (0.75 + 0.3 * np.sin(5 * q0 + 3 * q2 + k) ** 2)
    picture = np.where(q2 > horizon, sky, ground)
    return np.where(frame | (face != FRONT), np.float32(0.12 + 0.5 * m.seed), picture)


def _window(p, face, half, m):
    q0, q2, frame = _front(p, half, 0.05)
    rows, cols = m.grid
    bar0 = np.abs(((q0 + 1) / 2 * cols + 0.5) % 1 - 0.5) < 0.02 * cols / half[0]
    bar2 = np.abs(((q2 + 1) / 2 * rows + 0.5) % 1 - 0.5) < 0.02 * rows / half[2]
    frame |= ((bar0 & (cols > 1)) | (bar2 & (rows > 1))) & (np.abs(q0) < 0.99)
    glass = _rgb(m.color) * (0.8 + 0.2 * q2 + 0.1 * _noise(q0 * 3 + 9 * m.seed, q2 * 2))
    return np.where(frame | (face != FRONT), _rgb(m.color2), glass)


def _books(p, face, half, m):
    x, z = p[0] + half[0], p[2] + half[2]
    row = np.floor(z / m.scale)
    book = np.floor(x / 0.03 + 5 * _hash(row, 2.0))
    color = 0.12 + 0.6 * np.stack([_hash(book, row + s) for s in (0.0, 3.3, 7.7)])
    gap = z / m.scale - row > 0.55 + 0.35 * _hash(book, row + 1.1)
    shelf = (z / m.scale - row < 0.08) | (np.abs(p[0]) > half[0] - 0.025)
    wood = _rgb(m.color)
    return np.where(shelf | (face != FRONT), wood, np.where(gap, 0.3 * wood, color))


def _drawers(p, face, half, m):
    q0, q2, _ = _front(p, half, 0.0)
    rows, cols = m.grid
    a, b = (q0 + 1) / 2 * cols, (1 - q2) / 2 * rows  # b counts rows from the top
    fa, fb = a % 1, b % 1
    gap_a, gap_b = 0.006 * cols / half[0], 0.006 * rows / half[2]
    gap = (fa < gap_a) | (fa > 1 - gap_a) | (fb < gap_b) | (fb > 1 - gap_b)
    handle = (np.abs(fa - 0.5) < 0.06 * cols / half[0]) & (
        np.abs(fb - 0.25) < 0.008 * rows / half[2]
    )
    body = _wood(p, face, half, m) if m.seed > 0.5 else _rgb(m.color)
    front = np.where(gap, body * 0.45, np.where(handle, _rgb(m.color2), body))
    return np.where(face == FRONT, front, body)


def _door(p, face, half, m):
    q0, q2, _ = _front(p, half, 0.0)
    panel = (np.abs(q0) < 0.72) & ((np.abs(q2 - 0.42) < 0.45) | (np.abs(q2 + 0.52) < 0.35))
    edge = panel & ((np.abs(q0) > 0.66) | (np.abs(q2 - 0.42) > 0.41) & (np.abs(q2 + 0.52) > 0.31))
    handle = (np.abs(q0 - 0.82) < 0.08) & (np.abs(p[2] + half[2] - 1.0) < 0.02)
    body = _rgb(m.color) * np.where(edge, 0.78, 1.0)
    front = np.where(handle, _rgb(m.color2), body)
    return np.where(face == FRONT, front, _rgb(m.color))


def _framed(p, face, half, m):  # whiteboards, mirrors, screens: a panel in a thin frame
    q0, q2, frame = _front(p, half, 0.025)
    panel = _rgb(m.color) * (0.92 + 0.1 * (q2 - 0.3 * q0))
    return np.where(frame | (face != FRONT), _rgb(m.color2), panel)


def _slats(p, face, half, m):  # blinds
    return _rgb(m.color) * np.where((p[2] / 0.035) % 1 < 0.2, 0.7, 1.0)


def _folds(p, face, half, m):  # curtains
    return _rgb(m.color) * (0.7 + 0.3 * np.sin(p[0] * 22 + 9 * m.seed) ** 2)


TEXTURES = {
    "plain": _plain,
    "wood": _wood,
    "fabric": _fabric,
    "planks": _planks,
    "tiles": _tiles,
    "carpet": _carpet,
    "stripes": _stripes,
    "painting": _painting,
    "window": _window,
    "books": _books,
    "drawers": _drawers,
    "door": _door,
    "framed": _framed,
    "slats": _slats,
    "folds": _folds,
}
