"""``export``: a checkpoint to an ONNX file that ``predict`` and any ONNX runtime can use.

fp32: the file is checked against PyTorch on random and real-looking images before it is
kept (largest logit difference and class agreement; at least ``MIN_AGREEMENT``). int8:
static quantization (QDQ, per-channel int8 weights, uint8 activations) with ranges
calibrated on the images of ``calib``; the mean IoU of fp32 and int8 on a labelled folder
is compared, and a model that loses more than ``max_drop`` points is refused.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from indoorseg.backends import ModelFile, Options, open_backend, open_model_file
from indoorseg.deploy.parity import Parity, folder_images, mean_iou, parity, random_images
from indoorseg.errors import ExportError, InputError, UsageError
from indoorseg.inference import Segmenter, card_from
from indoorseg.onnx_file import read_onnx_meta, save_proto, set_meta, write_onnx

MIN_AGREEMENT = 0.999  # fp32 ONNX against PyTorch: share of pixels of the same class
CALIB_IMAGES = 32


@dataclass
class ExportResult:
    """What ``export`` wrote and measured (``int8`` and the IoUs only when asked)."""

    path: Path
    parity: dict[str, dict] = field(default_factory=dict)  # "random", "real" -> Parity
    int8_parity: dict | None = None
    miou: dict[str, float] = field(default_factory=dict)  # "fp32", "int8" on eval data
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "parity": self.parity,
            "int8_parity": self.int8_parity,
            "mean_iou": self.miou,
            "notes": self.notes,
        }


def export(
    model_path: str | Path,
    out: str | Path,
    *,
    dynamic: bool = False,
    size: tuple[int, int] = (480, 640),
    check: str | Path | None = None,
    int8: bool = False,
    calib: str | Path | None = None,
    eval_data: str | Path | None = None,
    eval_split: str = "test",
    max_drop: float = 1.0,
    allow_drop: bool = False,
    say: Callable[[str], None] = lambda line: None,
) -> ExportResult:
    """Export a run folder or checkpoint to ``out`` (``.onnx``), checked; see the module.

    Args:
        check: images (a prepared or plain folder) for the parity check besides random ones;
            default ``calib``, else ``eval_data``, else random images only.
        eval_data: a prepared folder whose ``eval_split`` scores fp32 against int8.

    Raises:
        ExportError: parity below ``MIN_AGREEMENT``, or int8 losing more than ``max_drop``.
    """
    out, size = _checked_args(out, size, int8, calib)
    model = open_model_file(model_path)
    if model.is_onnx:
        raise InputError(f"{model.path}: already an ONNX file; export takes a checkpoint")
    backend, _ = open_backend(model, "torch", Options("cpu"))
    real_dir = check or calib or eval_data
    real = folder_images(real_dir, 4) if real_dir else []
    result = ExportResult(out)
    with tempfile.TemporaryDirectory(prefix="indoorseg-export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        onnx_seg = export_fp32(model, backend, fp32, (size, dynamic), real, result, say)
        final = fp32
        if int8:
            final = Path(tmp) / "int8.onnx"
            quantize(fp32, final, onnx_seg, folder_images(calib, CALIB_IMAGES), say)
            checked, data = real or random_images(2, size), (eval_data, eval_split)
            int8_seg, tolerance = onnx_segmenter(final), (max_drop, allow_drop)
            check_int8(result, onnx_seg, int8_seg, checked, data, tolerance, say)
        save_proto(_load(final), out)
    say(f"wrote {out}")
    return result


def export_fp32(model, backend, path: Path, shape, real, result: ExportResult, say) -> Segmenter:
    """Write the fp32 ONNX file of a checkpoint's network (``shape`` = (size, dynamic)) and
    check it against PyTorch on random and ``real`` images; its segmenter."""
    size, dynamic = shape
    say(f"exporting {model.meta['model']['name']} to ONNX ({'any size' if dynamic else size})")
    write_onnx(backend.model, path, model.meta, size, dynamic)
    onnx_seg = onnx_segmenter(path)
    # network against network: PyTorch gets the same (resized) input as a fixed-size file
    torch_seg = Segmenter(backend, replace(onnx_seg.card, path=model.path))
    result.parity["random"] = _checked(parity(torch_seg, onnx_seg, random_images(2, size)), say)
    if real:
        result.parity["real"] = _checked(parity(torch_seg, onnx_seg, real), say, "real")
    return onnx_seg


def _checked_args(out, size, int8: bool, calib) -> tuple[Path, tuple[int, int]]:
    out = Path(out)
    if out.suffix != ".onnx":
        raise UsageError(f"out must end in .onnx, got {out}", {"out": "model.onnx"})
    if int8 and calib is None:
        raise UsageError("int8 needs calibration images", {"calib": ...})
    return out, check_size(size)


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """An export size: two multiples of 32."""
    h, w = (int(v) for v in size)
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise UsageError(f"size must be two positive multiples of 32 (HxW), got {h}x{w}")
    return h, w


def onnx_segmenter(path: Path) -> Segmenter:
    """A segmenter on ONNX Runtime for an exported file."""
    model = ModelFile(path, read_onnx_meta(path))
    backend, _ = open_backend(model, "onnxruntime")
    return Segmenter(backend, card_from(model.meta, path))


def _checked(result: Parity, say, what: str = "random") -> dict:
    say(
        f"parity on {result.images} {what} images: max logit difference "
        f"{result.max_logit_diff:.2e}, {100 * result.agreement:.3f} % same class"
    )
    if result.agreement < MIN_AGREEMENT:
        raise ExportError(
            f"the ONNX model agrees with PyTorch on only {100 * result.agreement:.3f} % of "
            f"pixels of {what} images (at least {100 * MIN_AGREEMENT:.1f} % needed); not written"
        )
    return result.to_dict()


def quantize(fp32: Path, out: Path, seg: Segmenter, images: list[np.ndarray], say) -> None:
    """Static int8 quantization (QDQ, per channel) calibrated on ``images`` as ``seg``
    feeds them to the network."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    inputs = iter([seg.network_input(image)[0].numpy() for image in images])

    class Reader(CalibrationDataReader):
        def get_next(self):
            x = next(inputs, None)
            return None if x is None else {"image": x}

    say(f"calibrating int8 ranges on {len(images)} images")
    prepared = out.with_name("prepared.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    proto = _load(out)
    set_meta(proto, {**read_onnx_meta(fp32), "precision": "int8"})
    save_proto(proto, out)


def check_int8(result, fp32_seg, int8_seg, images, data, tolerance, say) -> None:
    """Class agreement of int8 with fp32 on ``images``; mean IoU of both on ``data`` =
    (prepared folder or None, split), refused when int8 loses more than ``tolerance`` =
    (max_drop, allow_drop) allows."""
    result.int8_parity = parity(fp32_seg, int8_seg, images).to_dict()
    say(f"int8 against fp32: {100 * result.int8_parity['agreement']:.2f} % same class")
    (root, split), (max_drop, allow_drop) = data, tolerance
    if root is None:
        result.notes.append("int8 accuracy not measured: no labelled eval_data given")
        return
    for name, seg in (("fp32", fp32_seg), ("int8", int8_seg)):
        result.miou[name] = mean_iou(seg, root, split)
    drop = result.miou["fp32"] - result.miou["int8"]
    say(
        f"mean IoU on {root} ({split}): fp32 {result.miou['fp32']:.2f} %, int8 "
        f"{result.miou['int8']:.2f} % ({-drop:+.2f} points)"
    )
    if drop > max_drop and not allow_drop:
        raise ExportError(
            f"int8 loses {drop:.2f} points of mean IoU on {root} (more than max_drop "
            f"{max_drop}); not written",
            {"max_drop": ..., "allow_drop": True, "calib": None},
        )


def _load(path: Path):
    import onnx

    return onnx.load_model(str(path))
