"""Where furniture goes in a room being furnished: the floor and wall space taken, and the
placements (against a wall, free in the room, hung on a wall, props on tops).

A private helper of :mod:`indoorseg.data.synthetic.rooms`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from indoorseg.data.synthetic import furniture as fu
from indoorseg.data.synthetic.furniture import Piece
from indoorseg.data.synthetic.raycast import Box

WorldTop = tuple[float, float, float, float, float, float]  # x, y, half x, half y, z, yaw


class Placed(NamedTuple):
    """Where a piece went: position, yaw, its tops in the world, and its wall if it has one."""

    x: float
    y: float
    yaw: float
    tops: list[WorldTop]
    wall: int = -1
    pos: float = 0.0  # along the wall


class Layout:
    """A room being furnished: its boxes so far, and the floor and wall space they take."""

    def __init__(self, rng: np.random.Generator, dims: np.ndarray, back: int):
        self.rng, self.dims = rng, dims
        w, d = dims[0], dims[1]
        # per wall: origin, direction along it, inward normal, length, and the yaw that turns
        # a piece's front (-y) into the room
        self.walls = [
            ((0.0, 0.0), (0, 1), (1, 0), d, math.pi / 2),
            ((w, 0.0), (0, 1), (-1, 0), d, -math.pi / 2),
            ((0.0, 0.0), (1, 0), (0, 1), w, math.pi),
            ((0.0, d), (1, 0), (0, -1), w, 0.0),
        ]
        self.weights = np.ones(4)
        self.weights[back], self.weights[back ^ 1] = 0.15, 2.0  # the camera's back is to `back`
        self.boxes: list[Box] = []
        self.footprints: list[tuple[float, float, float, float, float]] = []
        self.taken: list[tuple[float, float, float, float]] = []  # x0, x1, y0, y1 on the floor
        self.wall_taken: list[list[tuple[float, float]]] = [[] for _ in range(4)]
        self.view = (dims[0] / 2, dims[1] / 2, 0.0)  # camera x, y, yaw: set by furnish()

    def add(
        self, piece: Piece, x: float, y: float, yaw: float, z=0.0, shadow=True
    ) -> list[WorldTop]:
        """Turn ``piece`` by ``yaw``, put its origin at (x, y, z); returns its tops."""
        c, s = math.cos(yaw), math.sin(yaw)
        for (px, py, pz), half, label, m in piece.parts:
            self.boxes.append(
                Box((x + c * px - s * py, y + s * px + c * py, z + pz), half, yaw, label, m)
            )
        if shadow:
            self.footprints.append((x, y, *piece.half, yaw))
        return [
            (x + c * tx - s * ty, y + s * tx + c * ty, hx, hy, z + tz, yaw)
            for tx, ty, hx, hy, tz in piece.tops
        ]

    def in_view(self, x: float, y: float) -> bool:
        """Whether the floor point (x, y) is roughly within the camera's horizontal view."""
        cx, cy, yaw = self.view
        ahead = (y - cy) * math.cos(yaw) - (x - cx) * math.sin(yaw)
        across = (x - cx) * math.cos(yaw) + (y - cy) * math.sin(yaw)
        return ahead > 0.5 and abs(across) < 0.7 * ahead  # tan(35 degrees) = 0.7

    def claim(self, x: float, y: float, yaw: float, hx: float, hy: float, front=0.0) -> bool:
        """Take the floor under a footprint and ``front`` metres before it, if inside and free."""
        c, s = math.cos(yaw), math.sin(yaw)
        lx, ly = np.array([-hx, hx, -hx, hx]), np.array([-hy - front] * 2 + [hy] * 2)
        xs, ys = x + c * lx - s * ly, y + s * lx + c * ly
        x0, x1, y0, y1 = xs.min(), xs.max(), ys.min(), ys.max()
        if min(x0, y0) < -1e-6 or x1 > self.dims[0] + 1e-6 or y1 > self.dims[1] + 1e-6:
            return False
        if any(x0 < a1 and a0 < x1 and y0 < b1 and b0 < y1 for a0, a1, b0, b1 in self.taken):
            return False
        self.taken.append((x0, x1, y0, y1))
        return True

    def on_wall(self, wall: int, pos: float, out: float) -> tuple[float, float, float]:
        """The point ``pos`` along ``wall`` and ``out`` into the room, and the wall's yaw."""
        (ox, oy), (ax, ay), (nx, ny), _, yaw = self.walls[wall]
        return ox + pos * ax + out * nx, oy + pos * ay + out * ny, yaw

    def against_wall(self, piece: Piece, wall=None, pos=None, front=0.0) -> Placed | None:
        """Stand ``piece`` with its back to a wall (drawn by weight unless given), if it fits."""
        hx, hy = piece.half
        for attempt in range(1 if pos is not None else 12):
            k = (
                int(self.rng.choice(4, p=self.weights / self.weights.sum()))
                if wall is None
                else wall
            )
            length = self.walls[k][3]
            s = self.rng.uniform(hx, length - hx) if pos is None and length > 2 * hx else pos
            if s is None or not hx <= s <= length - hx:
                continue
            x, y, yaw = self.on_wall(k, s, hy + 0.02)
            if pos is None and attempt < 8 and not self.in_view(x, y):
                continue
            if self.claim(x, y, yaw, hx, hy, front):
                return Placed(x, y, yaw, self.add(piece, x, y, yaw), k, s)
        return None

    def free(self, piece: Piece, around: float = 0.0, aligned: bool = True) -> Placed | None:
        """Stand ``piece`` anywhere free with ``around`` metres clear; ``aligned`` to the walls."""
        hx, hy = piece.half
        rng = self.rng
        for attempt in range(12):
            turn = rng.normal(0, 0.08) if aligned else rng.uniform(-math.pi, math.pi)
            yaw = rng.integers(4) * math.pi / 2 + turn
            x, y = rng.uniform(0, self.dims[0]), rng.uniform(0, self.dims[1])
            if attempt < 8 and not self.in_view(x, y):
                continue
            if self.claim(x, y, yaw, hx + around, hy + around):
                return Placed(x, y, yaw, self.add(piece, x, y, yaw))
        return None

    def hang(self, piece: Piece, z: float, door: bool = False) -> list[WorldTop]:
        """Hang ``piece`` on a wall at height ``z``, beside (not over) other wall items."""
        hx, hy = piece.half
        for _ in range(10):
            k = int(self.rng.choice(4, p=self.weights / self.weights.sum()))
            length = self.walls[k][3]
            if length < 2 * hx + 0.1:
                continue
            s = self.rng.uniform(hx + 0.05, length - hx - 0.05)
            if any(s - hx < b and a < s + hx for a, b in self.wall_taken[k]):
                continue
            x, y, yaw = self.on_wall(k, s, hy)
            if door and not self.claim(x, y, yaw, hx, hy, front=0.8):  # keep doors clear
                continue
            self.wall_taken[k].append((s - hx, s + hx))
            return self.add(piece, x, y, yaw, z, shadow=False)
        return []

    def decorate(self, tops: list[WorldTop] | Placed | None, kinds: tuple[str, ...], p=0.7) -> None:
        """Put one to three props of ``kinds`` on each top, with probability ``p`` per top."""
        rng = self.rng
        for x, y, hx, hy, z, yaw in tops.tops if isinstance(tops, Placed) else tops or []:
            if rng.random() > p:
                continue
            for _ in range(rng.integers(1, 4)):
                piece = fu.build(str(rng.choice(kinds)), rng)
                px, py = piece.half
                if px > hx or py > hy:
                    continue
                dx, dy = rng.uniform(-hx + px, hx - px), rng.uniform(-hy + py, hy - py)
                c, s = math.cos(yaw), math.sin(yaw)
                turn = yaw + rng.normal(0, 0.2)
                self.add(piece, x + c * dx - s * dy, y + s * dx + c * dy, turn, z, shadow=False)

    def desk_with_chair(self) -> None:
        desk = fu.build("desk", self.rng)
        placed = self.against_wall(desk, front=0.6)
        if placed:
            self.decorate(placed, ("books", "paper", "lamp", "otherprop", "box"), p=0.9)
            pos = placed.pos + self.rng.uniform(-0.2, 0.2)
            x, y, yaw = self.on_wall(
                placed.wall, pos, 2 * desk.half[1] + self.rng.uniform(0.05, 0.3)
            )
            self.add(fu.build("chair", self.rng), x, y, yaw + math.pi + self.rng.normal(0, 0.3))

    def table_with_chairs(self, chairs: int, low: bool = False) -> None:
        table = fu.build("low_table" if low else "table", self.rng)
        placed = self.free(table, around=0.0 if low else 0.55)
        if placed is None:
            return
        self.decorate(placed, ("books", "box", "otherprop", "paper"))
        hx, hy = table.half
        # seats on the table's edges: (x, y, outward x, outward y, yaw facing the table)
        seats = [(0, -hy, 0, -1, math.pi), (0, hy, 0, 1, 0.0)]
        if hx > 0.55:  # long table: two chairs a side
            seats = [(sx * hx / 2, y, ox, oy, a) for sx in (-1, 1) for _, y, ox, oy, a in seats]
        seats += [(hx, 0, 1, 0, -math.pi / 2), (-hx, 0, -1, 0, math.pi / 2)]
        c, s = math.cos(placed.yaw), math.sin(placed.yaw)
        for i in self.rng.permutation(len(seats))[:chairs]:
            sx, sy, ox, oy, turn = seats[i]
            off = self.rng.uniform(0.05, 0.25)  # pushed in, or pulled out
            sx, sy = sx + ox * off, sy + oy * off
            turn += placed.yaw + self.rng.normal(0, 0.15)
            self.add(
                fu.build("chair", self.rng),
                placed.x + c * sx - s * sy,
                placed.y + s * sx + c * sy,
                turn,
            )

    def storage(self, label: str, props: tuple[str, ...] = ("box", "books", "otherprop")) -> None:
        self.decorate(self.against_wall(fu.build(label, self.rng)), props)

    def on_floor(self, kinds: tuple[str, ...], count: int) -> None:
        for _ in range(count):
            kind = str(self.rng.choice(kinds))
            piece = fu.build("floor_lamp" if kind == "lamp" else kind, self.rng)
            if self.rng.random() < 0.6:
                self.against_wall(piece)
            else:
                self.free(piece, aligned=False)
