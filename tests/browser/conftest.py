"""Browser tests of the dashboard (issue 22): a real headless Chromium (Debian's
``chromium`` + ``chromium-driver``, driven by selenium; nothing downloads a browser)
against a real server process started with an API key.

They run only from ``make test-browser`` (``QUIVER_BROWSER_TESTS=1``), never in the main
``make test`` collection. Each page's screenshot is kept in ``tests/browser/artifacts/``
(git-ignored) at 1280x800 and at a narrow 420x860; a test fails on any SEVERE entry of
the browser console (a script error or a failed request).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.process import QuiverProcess, server_env

if not os.environ.get("QUIVER_BROWSER_TESTS"):
    collect_ignore_glob = ["test_*.py"]

KEY = "dashboard-test-key-0123456789-0123456789"
READ_ONLY_KEY = "dashboard-read-only-key-0123456789-0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WIDE = (1280, 800)
NARROW = (420, 860)
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)  # fmt: skip


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuiverProcess]:
    root = tmp_path_factory.mktemp("dashboard")
    env = server_env() | {"QUIVER_API_KEY": KEY, "QUIVER_READ_ONLY_API_KEY": READ_ONLY_KEY}
    process = QuiverProcess(root / "data", root / "logs", env=env)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="quiver-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDE[0]},{WIDE[1]}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_window_size(*WIDE)
    downloads = Path(profile) / "downloads"
    downloads.mkdir()
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads  # type: ignore[attr-defined]  # where a test finds its files
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
