"""``indoorseg app``: the page and its API, and the page driven in a real browser (headless
Chromium) against a server started here on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from indoorseg.app.server import App, serve
from indoorseg.cli import app as cli

from conftest import shared_nyu, varied_checkpoint

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A checkpoint, and the app serving it on torch from a thread, on a free port."""
    root = tmp_path_factory.mktemp("app")
    # its classes vary over a photo: on 0001 the three take 25, 70 and 4 % of the pixels
    ckpt = varied_checkpoint(root / "model" / "best.safetensors", 100.0, zero_bias=True)
    application = App(ckpt, backend="torch")
    http = serve(application, "127.0.0.1", 0)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{http.server_port}", ckpt, application
    http.shutdown()
    http.server_close()
    application.close()


def post(url: str, name: str, data: bytes, regions: bool = False) -> tuple[int, dict]:
    query = f"/api/segment?name={name}&regions={int(regions)}"
    request = urllib.request.Request(url + query, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return reply.read()


def predicted(ckpt: Path, photo: Path, out: Path, *extra: str) -> np.ndarray:
    """The labels ``indoorseg predict`` writes for a photo, on torch."""
    args = ["predict", str(ckpt), str(photo), "--out", str(out), "--backend", "torch", *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return np.asarray(Image.open(out / f"{photo.stem}.labels.png"))


def test_the_api_answers_a_photo_as_predict_does_and_refuses_what_is_not_one(server, tmp_path):
    url, ckpt, _ = server
    photo = sorted(shared_nyu("rgb").glob("*.png"))[0]
    status, result = post(url, photo.name, photo.read_bytes())
    assert status == 200 and result["backend"] == "torch" and result["kind"] == "image"
    labels = np.frombuffer(base64.b64decode(result["labels"]), np.uint8)
    expected = predicted(ckpt, photo, tmp_path / "masks")
    np.testing.assert_array_equal(labels.reshape(expected.shape), expected)
    assert min(c["share"] for c in result["classes"][:2]) > 0.05  # classes vary
    assert abs(sum(c["share"] for c in result["classes"]) - 1) < 1e-6
    downloaded = Image.open(io.BytesIO(fetch(url + result["downloads"]["labels.png"])))
    np.testing.assert_array_equal(np.asarray(downloaded), expected)
    mask = np.asarray(Image.open(tmp_path / "masks" / f"{photo.stem}.mask.png"))
    served = Image.open(io.BytesIO(fetch(url + result["downloads"]["mask.png"])))
    np.testing.assert_array_equal(np.asarray(served), mask)
    for name, data, message in [
        ("notes.txt", b"hello", "notes.txt: not an image or a video"),
        ("fake.jpg", b"not a jpeg", "fake.jpg: not a readable image"),
    ]:
        status, reply = post(url, name, data)
        assert status == 400 and reply["error"].startswith(message), reply
    voted_status, voted = post(url, photo.name, photo.read_bytes(), regions=True)
    assert voted_status == 200 and voted["regions"] is True


def test_the_app_writes_only_in_its_own_temporary_folder(server):
    url, ckpt, application = server
    photo = sorted(shared_nyu("rgb").glob("*.png"))[0]
    model_files = sorted(ckpt.parent.rglob("*"))
    status, result = post(url, photo.name, photo.read_bytes())
    assert status == 200 and (application.tmp / result["id"]).is_dir()
    assert sorted(ckpt.parent.rglob("*")) == model_files
    other = App(ckpt, backend="torch")
    folder = other.tmp
    other.close()
    assert not folder.exists()


def browser(download_dir: Path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (.ci/run installs them)"
        )
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1600",
        f"--user-data-dir={download_dir / 'profile'}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def test_a_real_browser_uploads_a_photo_and_downloads_predict_s_mask(server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, ckpt, _ = server
    photo = sorted(shared_nyu("rgb").glob("*.png"))[1]
    driver = browser(tmp_path)
    try:
        driver.get(url + "/")
        WebDriverWait(driver, 30).until(
            lambda d: d.find_element(By.ID, "model").get_attribute("value")
        )
        driver.find_element(By.ID, "files").send_keys(str(photo))
        done = "div.result[data-drawn='yes']"
        WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.CSS_SELECTOR, done))
        card = driver.find_element(By.CSS_SELECTOR, done)
        assert card.get_attribute("data-name") == photo.name
        assert "background" in card.text and "ms in the model" in card.text
        link = card.find_element(By.CSS_SELECTOR, "a.download-labels").get_attribute("href")
        offered = np.asarray(Image.open(io.BytesIO(fetch(link))))
        np.testing.assert_array_equal(offered, predicted(ckpt, photo, tmp_path / "masks"))
        # a file that is not an image: said on the page, and the server goes on serving
        notes = tmp_path / "notes.txt"
        notes.write_text("not a photo")
        driver.find_element(By.ID, "files").send_keys(str(notes))
        WebDriverWait(driver, 60).until(
            lambda d: "notes.txt" in d.find_element(By.ID, "error").text
        )
        assert "not an image or a video" in driver.find_element(By.ID, "error").text
        second = sorted(shared_nyu("rgb").glob("*.png"))[2]
        driver.find_element(By.ID, "files").send_keys(str(second))
        WebDriverWait(driver, 120).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, done)) == 2)
        driver.save_screenshot(str(tmp_path / "page.png"))
        assert (tmp_path / "page.png").stat().st_size > 10_000
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "profile", ignore_errors=True)
