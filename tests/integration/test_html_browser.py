"""The HTML report in a real headless browser: it renders, and its plots are present and drawn."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from effcap.clients.html_report import report_html
from effcap.clients.policy import load_report

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="session")
def chromium(tmp_path_factory) -> list[str]:
    """Debian's chromium, installed by the test set-up when missing (CI runs as root)."""
    path = shutil.which("chromium")
    if path is None:
        if os.geteuid() != 0:
            pytest.fail("the browser test needs Debian's chromium: apt-get install chromium (as root)")
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, capture_output=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        path = shutil.which("chromium")
    profile = tmp_path_factory.mktemp("chromium-profile")
    return [path, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]


def test_html_report_renders_with_its_plots(chromium, saved_report, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(report_html(load_report(saved_report)))
    dom = subprocess.run([*chromium, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Capacity card" in dom
    figures = re.findall(r'<figure data-plot="([^"]+)">(.*?)</figure>', dom, flags=re.S)
    assert {name for name, _ in figures} == {"accuracy-vs-corruption", "learning-curves"}
    for name, body in figures:
        paths = re.findall(r'<path class="series" d="([^"]+)"', body)
        assert paths and all(len(d.split("L")) >= 2 for d in paths), f"plot {name} has an empty series"
        assert "<figcaption>" in body
    screenshot = tmp_path / "report.png"
    subprocess.run([*chromium, f"--screenshot={screenshot}", "--window-size=1000,1600", page.as_uri()], capture_output=True, timeout=120, check=True)
    data = screenshot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 30_000  # a blank page compresses to a few KB
    Path(os.environ.get("EFFCAP_SCREENSHOT_DIR", tmp_path)).joinpath("report.png").write_bytes(data)
