"""Drive `indoorseg app` in headless Chromium: time the page on real photos against
`indoorseg predict` with the same model and backend, and take the README's screenshot.

    python scripts/app_page.py runs/demo/runs/layout3-default-seed0 ../shared/nyuv2/rgb \\
        --screenshot docs/app.png

The page's time is its round trip for one photo (upload, the model, the answer, drawn);
predict's is the `milliseconds` of its JSON (the model alone), both medians over the photos.
Needs Debian's chromium and chromium-driver, and selenium (the test extras).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from indoorseg.app.server import App, serve


def chromium(profile: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def page_times(url: str, photos: list[Path], screenshot: Path | None) -> list[float]:
    """The page's round trip (ms) for each photo, uploaded one at a time."""
    times = []
    with tempfile.TemporaryDirectory() as profile:
        driver = chromium(Path(profile))
        try:
            driver.get(url)
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element(By.ID, "model").get_attribute("value")
            )
            done = "div.result[data-drawn='yes']"
            for count, photo in enumerate(photos, 1):
                driver.find_element(By.ID, "files").send_keys(str(photo))
                WebDriverWait(driver, 300).until(
                    lambda d, n=count: len(d.find_elements(By.CSS_SELECTOR, done)) == n
                )
                text = driver.find_element(By.CSS_SELECTOR, done).text
                times.append(float(re.search(r"(\d+) ms for the page", text)[1]))
            if screenshot:
                driver.execute_script("window.scrollTo(0, 0)")
                driver.save_screenshot(str(screenshot))
        finally:
            driver.quit()
    return times


def predict_times(model: str, photos: list[Path], backend: str) -> list[float]:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "indoorseg",
                "predict",
                model,
                *map(str, photos),
                "--out",
                out,
                "--backend",
                backend,
            ],
            check=True,
            capture_output=True,
        )
        return [
            json.loads((Path(out) / f"{p.stem}.json").read_text())["milliseconds"] for p in photos
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("photos", type=Path, help="A folder of photos.")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--screenshot", type=Path)
    args = parser.parse_args()
    folder = args.photos.resolve()  # the browser takes absolute paths only
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg"))
    app = App(args.model, args.backend)
    server = serve(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    backend = app.segmenter(args.model, False).backend_name
    try:
        page = page_times(f"http://127.0.0.1:{server.server_port}/", photos, args.screenshot)
    finally:
        server.shutdown()
        app.close()
    alone = predict_times(args.model, photos, backend)
    print(
        f"backend {backend}, {len(photos)} photos: page median {statistics.median(page):.0f} "
        f"ms, predict median {statistics.median(alone):.0f} ms, ratio "
        f"{statistics.median(page) / statistics.median(alone):.2f}"
    )


if __name__ == "__main__":
    main()
