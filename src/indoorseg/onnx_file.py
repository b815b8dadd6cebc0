"""ONNX model files: a network written with its metadata, and the metadata read back.

The metadata (``indoorseg`` in the model's ``metadata_props``, JSON) holds the model spec,
the class scheme with names and colours, the normalisation, the fixed input size (or none)
and the precision, so that a ``.onnx`` file is all ``predict`` needs.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

import torch
from torch import nn

from indoorseg.errors import ExportError, InputError
from indoorseg.files import JsonFormat, atomic_path
from indoorseg.images import normalization_problem

OPSET = 18  # torch's exporter writes 18 natively; >= 17, which the runtimes all take
META_KEY = "indoorseg"
MODEL_META = JsonFormat("indoorseg-model", 1, InputError)  # what a model file says of itself
MAX_SIDE = 4096


def write_onnx(
    model: nn.Module,
    path: str | Path,
    meta: dict,
    size: tuple[int, int] = (480, 640),
    dynamic: bool = True,
) -> Path:
    """Export ``model`` (eval mode, on the CPU) to one ``.onnx`` file with ``meta`` inside.

    Args:
        size: the example input's (H, W); the fixed input size unless ``dynamic``.
        dynamic: batch, height and width free (multiples of 32 are best).
    """
    model = model.float().cpu().eval()
    example = torch.zeros(1, 3, *size)
    shapes = None
    if dynamic:
        dims = {
            0: torch.export.Dim("batch", max=1024),
            2: torch.export.Dim("height", min=32, max=MAX_SIDE),
            3: torch.export.Dim("width", min=32, max=MAX_SIDE),
        }
        shapes = (dims,)
    meta = {**meta, "input_size": None if dynamic else list(size)}
    quiet = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(quiet):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                opset_version=OPSET,
                verbose=False,
                input_names=["image"],
                output_names=["logits"],
                dynamic_shapes=shapes,
            )
    except Exception as err:  # torch.export raises many types
        raise ExportError(f"the model could not be exported to ONNX ({err})") from None
    proto = program.model_proto
    set_meta(proto, MODEL_META.stamp(meta))
    proto.producer_name = "indoorseg"
    return save_proto(proto, path)


def set_meta(proto, meta: dict) -> None:
    """Replace an ONNX model proto's indoorseg metadata with ``meta``."""
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)


def save_proto(proto, path: str | Path) -> Path:
    """Write an ONNX model proto as one file, atomically."""
    import onnx

    with atomic_path(path) as tmp:
        onnx.save_model(proto, str(tmp), save_as_external_data=False)
    return Path(path)


def read_onnx_meta(path: str | Path) -> dict:
    """The indoorseg metadata of an ``.onnx`` file.

    Raises:
        InputError: not an ONNX file, or one without indoorseg's metadata.
    """
    import onnx

    path = Path(path)
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as err:  # protobuf DecodeError and onnx's own errors
        raise InputError(f"{path}: not a readable ONNX file ({err})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if META_KEY not in props:
        raise InputError(
            f"{path}: an ONNX file without indoorseg metadata (class names, normalisation); "
            "export it with indoorseg export"
        )
    text = props[META_KEY]
    if text.startswith('{"format": 1,'):  # exported before the metadata was named
        text = text.replace('"format": 1,', f'"format": "{MODEL_META.name}", "version": 1,', 1)
    meta = MODEL_META.loads(text, f"{path} metadata")
    missing = [key for key in ("model", "scheme", "normalization") if key not in meta]
    if missing:
        raise InputError(f"{path}: malformed indoorseg metadata (no {missing[0]!r})")
    problem = normalization_problem(meta["normalization"])
    if problem:
        raise InputError(f"{path}: {problem}")
    return meta
