"""Headless Chromium (the Debian ``chromium`` package) for the report's tests and benchmark:
load a page, let its scripts run, read the DOM back, take a screenshot."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import time
import urllib.parse

__all__ = ["chromium", "Page", "load"]

_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-extensions", "--virtual-time-budget=10000"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("chromium is not installed (bash .ci/install installs the Debian package)")
    return path


class Page:
    def __init__(self, dom: str, seconds: float) -> None:
        self.dom = dom
        self.seconds = seconds  # wall time of the browser process

    def attribute(self, name: str) -> str | None:
        match = re.search(rf'<html[^>]*\s{re.escape(name)}="([^"]*)"', self.dom)
        return None if match is None else match.group(1)


def _url(path: pathlib.Path, fragment: dict[str, str] | None) -> str:
    url = path.resolve().as_uri()
    return url + ("#" + urllib.parse.urlencode(fragment) if fragment else "")


def load(path: pathlib.Path, fragment: dict[str, str] | None = None, *, screenshot: pathlib.Path | None = None,
         size: tuple[int, int] = (1400, 2400), timeout: float = 120) -> Page:
    """The DOM after the page's scripts ran (and a screenshot of it, when asked)."""
    argv = [chromium(), *_FLAGS, f"--window-size={size[0]},{size[1]}"]
    start = time.perf_counter()
    if screenshot is not None:
        subprocess.run([*argv, f"--screenshot={screenshot}", _url(path, fragment)], capture_output=True,
                       timeout=timeout, check=True)
    result = subprocess.run([*argv, "--dump-dom", _url(path, fragment)], capture_output=True, text=True,
                            timeout=timeout, check=True)
    return Page(result.stdout, time.perf_counter() - start)
