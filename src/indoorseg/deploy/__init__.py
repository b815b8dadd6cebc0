"""A trained model used anywhere: files and videos to masks (``predict``), ONNX export with
parity and int8 (``export``), and speed on this machine (``benchmark``). ``Segmenter`` (the
one inference path, ``indoorseg.inference``) is here for convenience."""

from indoorseg.inference import Segmenter

__all__ = ["Segmenter"]
