"""The app's server: one page, and a small JSON API over ``Segmenter``.

Python's own threaded HTTP server, no web framework: the page is one HTML file, uploads are
the request body, answers are JSON. A photo's class ids come back as raw bytes (base64) and
the page colours them and blends the overlay itself, so that changing the opacity costs no
second run; the label PNG and the colour mask are offered for download as ``predict``
writes them. Everything the app writes (uploads on their way to the reader, videos) goes
to one temporary folder of its own, removed when it stops.

API: ``GET /`` the page; ``GET /api/models`` the default model and others found under the
working folder; ``POST /api/segment?model=PATH&regions=0|1&name=FILE`` (body: the file)
the result, or ``{"error": ...}`` with status 400; ``GET /api/results/ID/NAME`` a file of
a result (``labels.png``, ``mask.png``, ``overlay.mp4``).
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

from indoorseg.classes import colorize
from indoorseg.deploy.predict import class_shares, predict_video
from indoorseg.deploy.sources import VIDEO_SUFFIXES, Source, read_video
from indoorseg.errors import IndoorsegError, InputError
from indoorseg.images import IMAGE_SUFFIXES, read_image
from indoorseg.inference import Segmenter

DEMO_MODEL = Path("runs/demo/runs/layout3-default-seed0")
MAX_UPLOAD = 256 * 1024 * 1024  # bytes: a short video
KEPT_RESULTS = 64  # results whose downloads stay available


class App:
    """The models, results and temporary folder behind the page.

    Args:
        model: the model a page starts with (None: ``make demo``'s when there is one).
        backend: as ``Segmenter.load`` takes it (``auto``: the fastest checked here).
    """

    def __init__(self, model: str | Path | None = None, backend: str = "auto") -> None:
        self.default = str(model) if model else (str(DEMO_MODEL) if DEMO_MODEL.is_dir() else "")
        self.backend = backend
        self.tmp = Path(tempfile.mkdtemp(prefix="indoorseg-app-"))
        self.lock = threading.Lock()
        self.segmenters: dict[str, Segmenter] = {}  # one load per model
        self.results: OrderedDict[str, dict] = OrderedDict()
        if self.default:
            self.segmenter(self.default, None)  # a bad model fails at the start, not later

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def segmenter(self, model: str, regions: bool | None) -> Segmenter:
        """The model on the app's backend; ``regions`` None: as its recipe says. Each model
        is loaded once; the other choice of the vote shares its backend."""
        if model not in self.segmenters:
            self.segmenters[model] = Segmenter.load(model, backend=self.backend)
        seg = self.segmenters[model]
        if regions is None or regions == seg.regions:
            return seg
        return Segmenter(seg.backend, seg.card, seg.max_side, regions, seg.scales)

    def models(self) -> dict:
        """The default model, and the run folders and ``.onnx`` files under the working
        folder (two levels of ``runs/``, and the working folder's own ``.onnx`` files)."""
        found = {str(p.parent) for p in Path("runs").glob("*/runs/*/best.safetensors")}
        found |= {str(p.parent) for p in Path("runs").glob("*/best.safetensors")}
        found |= {str(p) for p in Path(".").glob("*.onnx")}
        regions = self.segmenter(self.default, None).regions if self.default else False
        models = sorted(found | {self.default} - {""})
        return {"default": self.default, "models": models, "regions": regions}

    def segment(self, model: str, name: str, data: bytes, regions: bool | None) -> dict:
        """The result of one uploaded file; a file that is neither an image nor a video
        raises ``InputError`` naming it."""
        suffix = Path(name).suffix.lower()
        if suffix not in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
            raise InputError(f"{name}: not an image or a video (its name ends in {suffix!r})")
        folder = self.tmp / uuid.uuid4().hex
        folder.mkdir()
        upload = folder / f"upload{suffix}"
        upload.write_bytes(data)
        model = model or self.default
        if not model:
            raise InputError("no model chosen: name a run folder, checkpoint or .onnx file")
        with self.lock:
            seg = self.segmenter(model, regions)
            if suffix in VIDEO_SUFFIXES:
                return self.keep(folder, video_result(seg, upload, name, folder))
            try:
                image = read_image(upload)
            except InputError as err:
                raise InputError(err.message.replace(str(upload), name)) from None
            finally:
                upload.unlink()
            return self.keep(folder, image_result(seg, image, name))

    def keep(self, folder: Path, result: dict) -> dict:
        """Remember a result (its labels, for the downloads) under a new id."""
        labels = result.pop("_labels")
        scheme = result.pop("_scheme")
        result["id"] = folder.name
        self.results[folder.name] = {"labels": labels, "scheme": scheme, "folder": folder}
        while len(self.results) > KEPT_RESULTS:
            shutil.rmtree(self.results.popitem(last=False)[1]["folder"], ignore_errors=True)
        files = ("labels.png", "mask.png") + (("overlay.mp4",) if result["kind"] == "video" else ())
        result["downloads"] = {f: f"/api/results/{folder.name}/{f}" for f in files}
        return result

    def download(self, result_id: str, name: str) -> tuple[bytes, str] | None:
        """The bytes and type of one file of a result, or None."""
        kept = self.results.get(result_id)
        if kept is None:
            return None
        if name == "overlay.mp4":
            path = next(kept["folder"].glob("*.overlay.mp4"), None)
            return (path.read_bytes(), "video/mp4") if path else None
        if name == "labels.png":
            return png(Image.fromarray(kept["labels"])), "image/png"
        if name == "mask.png":
            return png(Image.fromarray(colorize(kept["labels"], kept["scheme"]))), "image/png"
        return None


def image_result(seg: Segmenter, image: np.ndarray, name: str) -> dict:
    start = time.perf_counter()
    labels = seg.predict(image)
    ms = 1000 * (time.perf_counter() - start)
    return {"kind": "image", **described(seg, name, image, labels), "milliseconds": round(ms, 1)}


def video_result(seg: Segmenter, path: Path, name: str, folder: Path) -> dict:
    """A video's overlay (``predict``'s), and its first frame shown like a photo."""
    source = Source(path, "video", Path(name).stem)
    try:
        files = predict_video(seg, source, folder)
    except InputError as err:
        raise InputError(err.message.replace(str(path), name)) from None
    summary = json.loads(files[-1].read_text())
    first = next(read_video(path))
    result = described(seg, name, first, seg.predict(first))
    result["classes"] = [
        dict(c, share=summary["class_fractions"][c["name"]]) for c in result["classes"]
    ]
    return {
        "kind": "video",
        **result,
        "frames": summary["frames"],
        "frames_per_second": summary["frames_per_second"],
        "milliseconds": round(1000 / max(summary["frames_per_second"], 1e-9), 1),
    }


def described(seg: Segmenter, name: str, image: np.ndarray, labels: np.ndarray) -> dict:
    """What the page shows of one image and its labels."""
    shares = class_shares(labels, seg.class_names)
    classes = [
        {"name": n, "color": list(c), "share": shares[n]}
        for n, c in zip(seg.class_names, seg.colors, strict=True)
    ]
    rgb = io.BytesIO()
    Image.fromarray(image).save(rgb, format="JPEG", quality=90)
    return {
        "name": name,
        "width": int(image.shape[1]),
        "height": int(image.shape[0]),
        "image": base64.b64encode(rgb.getvalue()).decode(),
        "labels": base64.b64encode(np.ascontiguousarray(labels, np.uint8).tobytes()).decode(),
        "classes": classes,
        "model": seg.card.model.get("name"),
        "model_file": str(seg.card.path),
        "backend": seg.backend_name,
        "precision": seg.precision,
        "regions": seg.regions,
        "_labels": labels,
        "_scheme": seg.card.scheme,
    }


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


class Handler(BaseHTTPRequestHandler):
    """The page and the API; ``self.server.app`` is the ``App``."""

    server_version = "indoorseg"

    def log_message(self, format, *args) -> None:  # the console shows errors only
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/":
            page = resources.files("indoorseg.app").joinpath("page.html").read_bytes()
            return self.reply(page, "text/html; charset=utf-8")
        if url.path == "/api/models":
            return self.json(self.server.app.models())
        found = re.fullmatch(r"/api/results/([0-9a-f]{32})/([a-z0-9.]+)", url.path)
        file = found and self.server.app.download(found[1], found[2])
        if not file:
            return self.json({"error": f"{url.path}: not found"}, HTTPStatus.NOT_FOUND)
        return self.reply(*file, attachment=found[2])

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/api/segment":
            return self.json({"error": f"{url.path}: not found"}, HTTPStatus.NOT_FOUND)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_UPLOAD:
            return self.json(
                {"error": f"{query.get('name')}: over {MAX_UPLOAD >> 20} MB"},
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        data = self.rfile.read(size)
        try:
            result = self.server.app.segment(
                query.get("model", ""),
                query.get("name", "upload"),
                data,
                {"1": True, "0": False}.get(query.get("regions", "")),
            )
        except IndoorsegError as err:
            return self.json({"error": err.message}, HTTPStatus.BAD_REQUEST)
        except Exception as err:  # a bug: said on the page, and the server goes on
            message = f"internal error: {type(err).__name__}: {err}"
            return self.json({"error": message}, HTTPStatus.INTERNAL_SERVER_ERROR)
        self.json(result)

    def json(self, payload: dict, status: HTTPStatus = HTTPStatus.OK) -> None:
        self.reply(json.dumps(payload).encode(), "application/json", status)

    def reply(self, body: bytes, kind: str, status=HTTPStatus.OK, attachment=None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if attachment:
            self.send_header("Content-Disposition", f'attachment; filename="{attachment}"')
        self.end_headers()
        self.wfile.write(body)


def serve(app: App, host: str = "127.0.0.1", port: int = 7860) -> ThreadingHTTPServer:
    """A server for ``app`` on ``host:port`` (port 0: any free one), not yet serving."""
    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as err:
        raise InputError(f"{host}:{port}: cannot listen there ({err.strerror})") from None
    server.daemon_threads = True
    server.app = app
    return server
