"""indoorseg: semantic segmentation of indoor scenes, the room apart from the objects in it."""

__version__ = "0.1.0"
