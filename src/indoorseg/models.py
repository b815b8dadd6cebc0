"""Model registry over segmentation-models-pytorch and torchvision, and encoder weights.

Names say what is inside: ``deeplabv3plus_resnet50`` is DeepLabv3+ (ASPP, decoder with
low-level features) on an atrous ResNet-50 encoder at output stride 16;
``lraspp_mobilenet_v3_large`` is torchvision's LR-ASPP head on MobileNetV3-Large, the
real-time model. ``ModelSpec.input_scale`` below 1 runs any of them on a smaller copy of the
image and scales the logits back up, inside the network (so an export keeps it).
"""

from __future__ import annotations

import difflib
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import nn

from indoorseg.errors import ModelError

# Our encoder name -> smp's, the naming a local state dict must follow (the key names of the
# classification network the encoder comes from; README "Training" lists them), and the
# prefix smp puts before those names inside the encoder.
ENCODERS = {
    "resnet18": ("resnet18", "torchvision or timm", ""),
    "resnet50": ("resnet50", "torchvision or timm", ""),
    "resnet101": ("resnet101", "torchvision or timm", ""),
    "mobilenet_v2": ("mobilenet_v2", "torchvision", ""),
    "efficientnet_b0": ("tu-efficientnet_b0", "timm", "model."),
}
# Encoders of the real-time architecture (LR-ASPP, torchvision's head and backbone).
LIGHT_ENCODERS = {"mobilenet_v3_large": ("mobilenet_v3_large", "torchvision", "")}
ARCHITECTURES = {"deeplabv3plus": ENCODERS, "lraspp": LIGHT_ENCODERS}
# Keys of classification heads that an encoder state dict may carry and the encoder lacks.
HEAD_PREFIXES = ("fc.", "classifier.", "_fc.", "head.", "last_linear.")


def model_names() -> list[str]:
    """Every registered model name."""
    return [f"{a}_{e}" for a, encoders in ARCHITECTURES.items() for e in encoders]


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to rebuild a model: stored in every checkpoint.

    Attributes:
        name: registry name, e.g. ``deeplabv3plus_resnet50``.
        num_classes: number of output channels.
        output_stride: 16 (paper) or 8 (DeepLabv3+ only; LR-ASPP is 16).
        input_scale: the network sees the image scaled by this (0 < s <= 1), and its logits
            are scaled back to the input size.
    """

    name: str
    num_classes: int
    output_stride: Literal[8, 16] = 16
    input_scale: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> ModelSpec:
        return cls(**raw)


def parse_name(name: str) -> tuple[str, str]:
    """``deeplabv3plus_resnet50`` -> (``deeplabv3plus``, our encoder name ``resnet50``).

    Raises:
        ModelError: an unknown name, listing the valid ones.
    """
    names = model_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ModelError(f"unknown model {name!r}; valid: {', '.join(names)}.{hint}")
    arch, encoder = name.split("_", 1)
    return arch, encoder


def build_model(spec: ModelSpec, encoder_weights: str | Path | None = None) -> nn.Module:
    """Build a model; ``encoder_weights`` is ``None``/``"none"``, ``"imagenet"`` or a file.

    Raises:
        ModelError: unknown name, or weights that cannot be had or do not fit.
    """
    arch, encoder = parse_name(spec.name)
    if spec.output_stride not in (8, 16):
        raise ModelError(f"output_stride must be 8 or 16, got {spec.output_stride}")
    if not 0 < spec.input_scale <= 1:
        raise ModelError(f"input_scale must be in (0, 1], got {spec.input_scale}")
    weights = None if encoder_weights in (None, "none", "") else str(encoder_weights)
    smp_encoder, naming, prefix = ARCHITECTURES[arch][encoder]
    if weights == "imagenet" and arch == "lraspp":
        raise ModelError(
            f"ImageNet weights for {encoder} are not downloaded by indoorseg; encoder_weights "
            f"can be a local state dict in {naming} naming",
            {"model.encoder_weights": f"/path/to/{encoder}.pth"},
        )
    if arch == "lraspp":
        model = LRASPP(spec.num_classes)
    elif weights == "imagenet" and encoder != "mobilenet_v2":
        model = _build_imagenet(arch, encoder, _smp_kwargs(spec, smp_encoder))
    else:
        model = smp.DeepLabV3Plus(encoder_weights=None, **_smp_kwargs(spec, smp_encoder))
    if weights == "imagenet" and encoder == "mobilenet_v2":  # installed with the project
        from indoorseg.pretrained import mobilenet_v2_imagenet

        load_encoder_state(model.encoder, mobilenet_v2_imagenet(), "packaged ImageNet weights")
    elif weights not in (None, "imagenet"):
        load_encoder_weights(model.encoder, weights, naming, prefix)
    return Rescaled(model, spec.input_scale) if spec.input_scale != 1 else model


def _smp_kwargs(spec: ModelSpec, smp_encoder: str) -> dict:
    return dict(
        encoder_name=smp_encoder,
        encoder_output_stride=spec.output_stride,
        classes=spec.num_classes,
    )


class LRASPP(nn.Module):
    """LR-ASPP on a dilated MobileNetV3-Large (Howard et al., 2019), torchvision's parts.

    ``encoder.features`` carries torchvision's classification naming, so a local
    ``mobilenet_v3_large`` state dict loads into it. Batch norm keeps PyTorch's default
    momentum (0.1), not torchvision's 0.01 for MobileNetV3: trained from scratch for a few
    hundred steps, running statistics at 0.01 lag so far behind that the model in eval
    mode answered one class for the first 10 epochs on synthetic rooms.
    """

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        parts = lraspp_mobilenet_v3_large(
            weights=None, weights_backbone=None, num_classes=num_classes
        )
        self.encoder = nn.Module()
        self.encoder.features = parts.backbone
        self.segmentation_head = parts.classifier
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = 0.1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.segmentation_head(self.encoder.features(x))
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


class Rescaled(nn.Module):
    """Runs ``net`` on the input scaled by ``scale``; logits come back at the input size."""

    def __init__(self, net: nn.Module, scale: float) -> None:
        super().__init__()
        self.net, self.scale = net, scale

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        small = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        logits = self.net(small)
        return F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the weights hub (``HF_ENDPOINT``, default huggingface.co) answers a TCP connect.

    smp fetches ImageNet weights from the Hugging Face hub, whose client retries for about
    half a minute before giving up; this probe lets an offline machine fail at once.
    """
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _build_imagenet(arch: str, encoder: str, kwargs: dict) -> nn.Module:
    offline = (
        os.environ.get("HF_HUB_OFFLINE") == "1"
        or os.environ.get("INDOORSEG_OFFLINE") == "1"
        or not hub_reachable()
    )
    # The encoder_weights of build_model is model.encoder_weights in a recipe.
    local = f"a local state dict in {ENCODERS[encoder][1]} naming (.pth, .pt or .safetensors)"
    fix = {"model.encoder_weights": f"/path/to/{encoder}.pth"}
    if offline:
        raise ModelError(
            f"ImageNet weights for {encoder} need a download, and the weights hub cannot be "
            f"reached from here; encoder_weights can be {local}",
            fix,
        )
    try:
        return smp.DeepLabV3Plus(encoder_weights="imagenet", **kwargs)
    except Exception as err:  # network errors of urllib, requests or huggingface_hub
        raise ModelError(
            f"could not download ImageNet weights for {encoder} ({err}); encoder_weights can "
            f"be {local}",
            fix,
        ) from err


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read tensors from ``.safetensors`` or a torch file, never unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"encoder weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise ModelError(f"{path}: not a readable safetensors file ({err})") from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        if "weights_only" in str(err):  # torch's advice to unpickle code must not reach users
            raise ModelError(
                f"{path}: holds Python objects besides tensors, which indoorseg "
                "never unpickles (it could run code); save a plain state dict "
                "of tensors, or .safetensors"
            ) from None
        raise ModelError(f"{path}: not a readable torch state dict ({err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: expected a dict of tensors")
    return state


def load_encoder_weights(
    encoder: nn.Module, path: str | Path, naming: str = "torchvision", prefix: str = ""
) -> None:
    """Load a classification-network state dict into an encoder; every encoder tensor must load.

    Accepts the encoder's source naming (``ENCODERS``), optionally prefixed ``module.`` or
    ``encoder.``; the classifier head is dropped. ``prefix`` is what the encoder puts before
    the source names (``model.`` for timm-backed encoders). Missing or mis-shaped tensors
    raise ``ModelError``.
    """
    load_encoder_state(encoder, read_state_dict(path), path, naming, prefix)


def load_encoder_state(
    encoder: nn.Module, state: dict, source, naming: str = "torchvision", prefix: str = ""
) -> None:
    """``load_encoder_weights`` of a state dict already read from ``source``."""
    cleaned = {}
    for key, value in state.items():
        for wrapper in ("module.", "encoder."):  # DataParallel, or a whole-model dict
            key = key.removeprefix(wrapper)
        if not key.startswith(HEAD_PREFIXES):
            cleaned[key] = value
    own = {k.removeprefix(prefix): v for k, v in encoder.state_dict().items()}
    missing = [k for k in own if k not in cleaned]
    if missing:
        raise ModelError(
            f"{source}: {len(missing)} encoder tensors missing, e.g. {missing[:3]}; "
            f"the file has e.g. {list(cleaned)[:3]}; this encoder takes {naming} naming"
        )
    wrong = [k for k in own if cleaned[k].shape != own[k].shape]
    if wrong:
        k = wrong[0]
        raise ModelError(
            f"{source}: shape of {k} is {tuple(cleaned[k].shape)}, expected {tuple(own[k].shape)}"
        )
    encoder.load_state_dict({prefix + k: cleaned[k] for k in own}, strict=True)
