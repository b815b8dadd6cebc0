"""A trained model used anywhere: ``Segmenter`` (PyTorch, ONNX Runtime or OpenVINO), files
and videos to masks (``predict``), ONNX export with parity and int8 (``export``), and speed
on this machine (``benchmark``)."""

from indoorseg.deploy.segmenter import Segmenter

__all__ = ["Segmenter"]
