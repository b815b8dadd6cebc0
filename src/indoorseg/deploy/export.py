"""``export``: a checkpoint to an ONNX file that ``predict`` and any ONNX runtime can use.

fp32: the file is checked against PyTorch on random and real-looking images before it is
kept (largest logit difference and class agreement; at least ``MIN_AGREEMENT``). int8:
static quantization (QDQ, per-channel int8 weights, uint8 activations) with ranges
calibrated on the images of ``calib``; the mean IoU of fp32 and int8 on a labelled folder
is compared, and a model that loses more than ``max_drop`` points is refused.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from indoorseg.deploy.accuracy import Parity, folder_images, mean_iou, parity, random_images
from indoorseg.deploy.backends import ModelInfo, OnnxRuntimeBackend, torch_backend
from indoorseg.deploy.onnx_export import META_KEY, read_onnx_meta, save_proto, write_onnx
from indoorseg.deploy.segmenter import Segmenter, card_from
from indoorseg.errors import ExportError, UsageError

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
        return {"path": str(self.path), "parity": self.parity, "int8_parity": self.int8_parity,
                "mean_iou": self.miou, "notes": self.notes}  # fmt: skip


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
    backend, info = torch_backend(Path(model_path), "torch", "cpu")
    torch_seg = Segmenter(backend, card_from(info))
    real_dir = check or calib or eval_data
    real = folder_images(real_dir, 4) if real_dir else []
    result = ExportResult(out)
    with tempfile.TemporaryDirectory(prefix="indoorseg-export-") as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        say(f"exporting {info.meta['model']['name']} to ONNX ({'any size' if dynamic else size})")
        write_onnx(backend.model, fp32, info.meta, size, dynamic)
        onnx_seg = onnx_segmenter(fp32)
        # network against network: PyTorch gets the same (resized) input as a fixed-size file
        torch_seg = Segmenter(backend, replace(torch_seg.card, input_size=onnx_seg.card.input_size))
        result.parity["random"] = _checked(parity(torch_seg, onnx_seg, random_images(2, size)), say)
        if real:
            result.parity["real"] = _checked(parity(torch_seg, onnx_seg, real), say, "real")
        final = fp32
        if int8:
            final = Path(tmp) / "int8.onnx"
            quantize(fp32, final, onnx_seg, folder_images(calib, CALIB_IMAGES), say)
            check_int8(result, onnx_seg, onnx_segmenter(final), real or random_images(2, size),
                       (eval_data, eval_split), (max_drop, allow_drop), say)  # fmt: skip
        save_proto(_load(final), out)
    say(f"wrote {out}")
    return result


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
    return Segmenter(OnnxRuntimeBackend(path), card_from(ModelInfo(path, read_onnx_meta(path))))


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

    inputs = iter([seg.network_input(image)[0] for image in images])

    class Reader(CalibrationDataReader):
        def get_next(self):
            x = next(inputs, None)
            return None if x is None else {"image": x}

    say(f"calibrating int8 ranges on {len(images)} images")
    prepared = out.with_name("prepared.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip
    proto = _load(out)
    meta = {**read_onnx_meta(fp32), "precision": "int8"}
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta)
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
    say(f"mean IoU on {root} ({split}): fp32 {result.miou['fp32']:.2f} %, int8 "
        f"{result.miou['int8']:.2f} % ({-drop:+.2f} points)")  # fmt: skip
    if drop > max_drop and not allow_drop:
        raise ExportError(
            f"int8 loses {drop:.2f} points of mean IoU on {root} (more than max_drop "
            f"{max_drop}); not written",
            {"max_drop": ..., "allow_drop": True, "calib": None},
        )


def _load(path: Path):
    import onnx

    return onnx.load_model(str(path))
