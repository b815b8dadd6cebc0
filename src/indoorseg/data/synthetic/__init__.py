"""Procedural indoor rooms: the toolkit's built-in dataset, labelled in the nyu40 space.

Each image is a random room (floor, ceiling, four walls) furnished with boxes: beds, tables
on legs, chairs, sofas, cabinets, shelves of books; doors, windows and pictures on the
walls; lamps, books and boxes on tables. A camera with the Kinect's intrinsics looks into
it. Rendering is vectorised ray casting in numpy; a 240x320 image takes a few tens of
milliseconds on one CPU core.

Image ``i`` of seed ``S`` depends only on ``(S, i)``: the first 10 images of a run of 1000
are a run of 10.

Modules, from the top: ``folder`` (``synthesize``: n rooms as a prepared folder),
``render`` (``render_room``: one room as arrays), ``rooms`` (room types, camera, lights),
``layout`` (where pieces go), ``furniture`` (the registry of pieces built of labelled
boxes), ``raycast`` (hits and shading),
``textures`` (procedural patterns).
"""

from indoorseg.data.synthetic.folder import synthesize
from indoorseg.data.synthetic.render import RoomSample, render_room

__all__ = ["RoomSample", "render_room", "synthesize"]
