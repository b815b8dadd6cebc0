"""Plain folders of images and label PNGs -> a prepared folder (``data import``).

Images (any format ``indoorseg.images.read_image`` reads: PNG, JPEG, BMP, TIFF, WebP; any
mode, EXIF-rotated upright: turned into RGB) and label PNGs (single channel, ids of a
built-in label space, 0 = unlabelled) are matched by file name without the extension;
depth PNGs (uint16 millimetres) may come too. Every pair is checked before anything is
kept: a missing label, a size mismatch or an id the label space does not have is an error
naming the file, and nothing is left at the output.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from indoorseg.classes import BUILTIN_SPACES, LabelSpace
from indoorseg.data.prepared import (
    PreparedInfo,
    read_info,
    read_label_png,
    staged_output,
    write_info,
    write_sample,
)
from indoorseg.errors import DatasetError
from indoorseg.images import IMAGE_SUFFIXES, read_image


def import_folders(
    rgb_dir: str | Path | list[str | Path],
    labels_dir: str | Path,
    out: str | Path,
    space: str = "nyu40",
    depth_dir: str | Path | None = None,
    split: str = "test",
    name: str | None = None,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Path | None:
    """Write every image of ``rgb_dir`` (one folder or several) with its label as a prepared
    folder of one split.

    Args:
        labels_dir: ``NAME.png`` for every image ``NAME.*``; others are left out.
        space: label space of the label ids (``nyu40``, ``nyu13``).
        depth_dir: optional ``NAME.png`` depth in millimetres for every image.
        split: the name of the one split (in the split set ``default``).
        name: the dataset's name (default: the output folder's name).

    Returns:
        ``out``, or None when it already holds a dataset and ``force`` is false.
    """
    label_space = _builtin_space(space)
    folders = [Path(f) for f in (rgb_dir if isinstance(rgb_dir, list | tuple) else [rgb_dir])]
    pairs = matched_files(folders, Path(labels_dir), depth_dir and Path(depth_dir))
    source = {"rgb": [str(f) for f in folders], "labels": str(labels_dir)}
    if not force:
        check_imported(out, source, {split: list(pairs)})
    with staged_output(out, force) as tmp:
        if tmp is None:
            return None
        sizes = set()
        for done, (sample_id, files) in enumerate(pairs.items(), 1):
            sizes.add(_import_sample(tmp, sample_id, files, label_space))
            if progress is not None:
                progress(done, len(pairs))
        size = list(sizes.pop()) if len(sizes) == 1 else []  # []: sizes differ
        write_info(
            tmp, imported_info(name or Path(out).name, label_space, split, pairs, size, source)
        )
    return Path(out)


def imported_info(name, space: LabelSpace, split: str, pairs: dict, size, source) -> PreparedInfo:
    """The ``dataset.json`` of imported images: one split, and where they came from."""
    return PreparedInfo(
        name=name,
        label_space=space.name,
        class_names=list(space.names),
        splits={"default": {split: list(pairs)}},
        default_split_set="default",
        image_size=size,
        extra={"imported_from": source},
    )


def check_imported(out: str | Path, source: dict, splits: dict) -> None:
    """Refuse a prepared folder at ``out`` made from other folders or of other images than
    these (it would be kept as it is, silently)."""
    if not (Path(out) / "dataset.json").is_file():
        return
    info = read_info(out)
    made = info.extra.get("imported_from")
    if made != source or info.splits.get("default") != splits:
        raise DatasetError(
            f"{out}: holds images imported from other folders or other images "
            f"({made}); it is not reused",
            {"force": True, "out": None},
        )


def _builtin_space(name: str) -> LabelSpace:
    if name not in BUILTIN_SPACES:
        raise DatasetError(
            f"label space {name!r} cannot be imported; built in: {', '.join(BUILTIN_SPACES)} "
            "(nyu894 labels come with their class names: prepare them from the .mat)"
        )
    return BUILTIN_SPACES[name]


def matched_files(
    rgb_dirs: list[Path], labels_dir: Path, depth_dir: Path | None = None
) -> dict[str, dict[str, Path]]:
    """``{name: {"rgb": path, "label": path[, "depth": path]}}``, sorted by name, over the
    images of every folder of ``rgb_dirs``.

    Raises:
        DatasetError: a folder is missing or holds no image, an image has no label (or no
            depth when ``depth_dir`` is given), or two images share a name.
    """
    for folder in (*rgb_dirs, labels_dir, depth_dir):
        if folder is not None and not folder.is_dir():
            raise DatasetError(f"{folder}: not a folder")
    images = []
    for folder in rgb_dirs:
        found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DatasetError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
        images += found
    stems = [p.stem for p in images]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        where = ", ".join(str(f) for f in rgb_dirs)
        raise DatasetError(f"{where}: several images named {repeated[:5]}")
    images = sorted(images, key=lambda p: p.stem)
    pairs = {p.stem: {"rgb": p, "label": labels_dir / f"{p.stem}.png"} for p in images}
    if depth_dir is not None:
        for stem, files in pairs.items():
            files["depth"] = depth_dir / f"{stem}.png"
    for kind in ("label", "depth"):
        missing = [f[kind].name for f in pairs.values() if kind in f and not f[kind].is_file()]
        if missing:
            where = labels_dir if kind == "label" else depth_dir
            raise DatasetError(
                f"{where}: no {kind} for {len(missing)} of {len(pairs)} images, e.g. {missing[:5]}"
            )
    return pairs


def _import_sample(
    root: Path, sample_id: str, files: dict[str, Path], space: LabelSpace
) -> tuple[int, int]:
    """Check one image with its label (and depth) and write it; returns its (H, W)."""
    rgb = read_image(files["rgb"], DatasetError)
    label = _read(read_label_png, files["label"])
    depth = _read(read_label_png, files["depth"]) if "depth" in files else None
    for kind, array in (("label", label), ("depth", depth)):
        if array is not None and array.shape != rgb.shape[:2]:
            raise DatasetError(
                f"{files[kind]}: {kind} is {array.shape[1]}x{array.shape[0]}, its image "
                f"{files['rgb'].name} is {rgb.shape[1]}x{rgb.shape[0]} (width x height)"
            )
    if label.max(initial=0) >= space.num_ids:
        raise DatasetError(
            f"{files['label']}: label id {label.max()} is not in {space.name} "
            f"(ids 0..{space.num_ids - 1}, 0 = unlabelled)"
        )
    write_sample(root, sample_id, rgb, label, depth)
    return rgb.shape[:2]


def _read(reader: Callable, path: Path):
    try:
        return reader(path)
    except OSError as err:  # Pillow: not an image, truncated...
        raise DatasetError(f"{path}: not a readable image ({err})") from None
