"""The example app (examples/flaskr): upload round trip on every backend, and in a browser."""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import sys
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import ROOT
from tests.servers.gunicorn import gunicorn

EXAMPLE = ROOT / "examples" / "flaskr"


def png(width: int = 8, height: int = 8) -> bytes:
    """A small valid red PNG, so a browser really decodes what we upload."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def create_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.syspath_prepend(str(EXAMPLE))
    for name in [m for m in sys.modules if m == "flaskr" or m.startswith("flaskr.")]:
        monkeypatch.delitem(sys.modules, name)
    from flaskr import create_app

    return create_app


@pytest.mark.parametrize("kind", ["file", "memory", "s3-mock", "s3-server"])
def test_upload_round_trip(
    create_app: Any, storage_factory: Any, kind: str, tmp_path: Path
) -> None:
    """Upload an image through the page, see it listed by media_url, fetch it back."""
    query = "acl=public-read" if kind.startswith("s3") else ""
    storage = storage_factory(kind, query)
    app = create_app({"TESTING": True, "STORAGE_DSN": storage.config.to_dsn(), "SECRET_KEY": "t"})
    app.instance_path = str(tmp_path / "instance")
    client = app.test_client()
    image = png()
    r = client.post("/", data={"image": (io.BytesIO(image), "red dot.png")}, follow_redirects=True)
    assert r.status_code == 200
    html = r.get_data(as_text=True)
    assert "Stored uploads/red_dot.png." in html
    src = re.search(r'<img src="([^"]+)"', html)
    assert src is not None
    url = src.group(1)
    assert url == storage.url("uploads/red_dot.png")
    assert storage.read_bytes("uploads/red_dot.png") == image
    if url.startswith("/"):
        with client.get(url) as served:
            assert served.data == image
            assert served.headers["Content-Type"] == "image/png"
    elif kind == "s3-server":
        with urllib.request.urlopen(url, timeout=10) as response:  # loopback moto server
            assert response.read() == image
    with client.get("/media/uploads/red_dot.png") as media:
        if kind.startswith("s3"):
            assert media.status_code == 302
            assert media.headers["Location"] == url
        else:
            assert media.status_code == 200


def test_only_images(create_app: Any, tmp_path: Path) -> None:
    """The example refuses non-image uploads."""
    app = create_app({"TESTING": True, "STORAGE_DSN": f"file://{tmp_path}/m/?url=%2Fmedia%2F"})
    r = app.test_client().post("/", data={"image": (io.BytesIO(b"<html>"), "x.html")})
    assert r.status_code == 400


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def example_server(tmp_path: Path) -> Iterator[str]:
    env = {
        "DEFAULT_STORAGE_DSN": f"file://{tmp_path}/media/?url=%2Fmedia%2F",
        "SECRET_KEY": "browser-test",
    }
    with gunicorn("flaskr:create_app()", env, cwd=EXAMPLE) as base:
        yield base


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium driven by selenium."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def uploaded_image(driver: Any) -> Any:
    """The first image of the media list, once the browser has loaded it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    img = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.CSS_SELECTOR, "ul.media img"))
    WebDriverWait(driver, 20).until(lambda d: d.execute_script("return arguments[0].complete", img))
    return img


def test_browser_upload(example_server: str, browser: Any, tmp_path: Path) -> None:
    """Headless Chromium uploads an image and sees it rendered from /media/."""
    from selenium.webdriver.common.by import By

    image = tmp_path / "red.png"
    image.write_bytes(png(16, 16))
    browser.get(example_server + "/")
    assert browser.find_element(By.ID, "empty")
    browser.find_element(By.ID, "image").send_keys(str(image))
    browser.find_element(By.ID, "upload").click()
    img = uploaded_image(browser)
    assert img.get_attribute("src") == example_server + "/media/uploads/red.png"
    assert browser.execute_script("return arguments[0].naturalWidth", img) == 16
    browser.save_screenshot(str(tmp_path / "page.png"))
    assert os.path.exists(tmp_path / "media" / "uploads" / "red.png")


def test_browser_direct_upload(example_server: str, browser: Any, tmp_path: Path) -> None:
    """The page's direct-upload form, written for S3's POST policy, posts the image to the
    local media server (fetch + FormData, as against a bucket); the image then renders."""
    from selenium.webdriver.common.by import By

    image = tmp_path / "blue dot.png"
    image.write_bytes(png(24, 24))
    browser.get(example_server + "/")
    browser.find_element(By.ID, "direct-file").send_keys(str(image))
    browser.find_element(By.ID, "direct-upload").click()
    img = uploaded_image(browser)
    assert img.get_attribute("src") == example_server + "/media/uploads/blue%20dot.png"
    assert browser.execute_script("return arguments[0].naturalWidth", img) == 24
    assert (tmp_path / "media" / "uploads" / "blue dot.png").read_bytes() == image.read_bytes()
    text = tmp_path / "notes.txt"  # accept= is only a hint: the policy refuses the type
    text.write_bytes(b"not an image")
    browser.find_element(By.ID, "direct-file").send_keys(str(text))
    browser.find_element(By.ID, "direct-upload").click()
    status = browser.find_element(By.ID, "direct-status")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(lambda d: status.text)
    assert status.text == "Refused (403)."
    assert not (tmp_path / "media" / "uploads" / "notes.txt").exists()
