"""The dashboard as a user drives it, in a real headless Chromium against a real server:
enter the key, create a collection, upload points, watch a build job reach 100%, search
with a filter and read the explain panel, draw the map and open a point, take a snapshot,
read the metrics. Every page is photographed wide and narrow (``artifacts/``), and any
SEVERE browser console entry fails the test at the step that caused it."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.browser.conftest import KEY, NARROW, READ_ONLY_KEY, WIDE
from tests.helpers.process import QuiverProcess

pytestmark = pytest.mark.integration

NAME = "shop"
POINTS = 600
DIM = 8
COLOURS = ("red", "green", "blue")
RED_FILTER = '{"must": [{"key": "colour", "match": {"value": "red"}}]}'
PAGES = ("collections", f"collections/{NAME}", f"points/{NAME}", "jobs", f"search/{NAME}",
         f"explore/{NAME}", f"snapshots/{NAME}", "metrics")  # fmt: skip


class Dashboard:
    """One browser on the dashboard, with the waits and checks every step needs."""

    def __init__(self, driver: WebDriver, url: str, artifacts: Path) -> None:
        self.driver = driver
        self.url = url
        self.artifacts = artifacts

    def open(self, page: str) -> None:
        self.driver.get(f"{self.url}/dashboard/#/{page}")

    def wait(self, condition: Callable[[WebDriver], Any], timeout: float = 30) -> Any:
        """Pages re-render after each call, so an element read a moment ago may be gone."""
        ignored = (StaleElementReferenceException, NoSuchElementException)
        waiting = WebDriverWait(self.driver, timeout, 0.1, ignored_exceptions=ignored)
        return waiting.until(condition)

    def find(self, css: str) -> WebElement:
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, css))

    def all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return str(self.find(css).text)

    def wait_text(self, css: str, wanted: str, timeout: float = 30) -> None:
        self.wait(lambda d: wanted in d.find_element(By.CSS_SELECTOR, css).text, timeout)

    def shot(self, name: str) -> None:
        """The whole page at the window's width (Chromium's DevTools protocol), not just
        what fits in the window."""
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        width = self.driver.execute_script("return window.innerWidth")  # no scrollbar then
        clip = {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip}
        )
        (self.artifacts / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """The REST API directly, to check what a click changed on the server."""
        response = httpx.request(method, self.url + path, json=body, headers={"api-key": KEY})
        assert response.status_code == 200, response.text
        return response.json()["result"]

    def confirm(self, word: str) -> None:
        """Type the word a confirmation dialog asks for and confirm."""
        dialog = self.find("dialog.confirm")
        dialog.find_element(By.TAG_NAME, "input").send_keys(word)
        dialog.find_element(By.CSS_SELECTOR, "button.danger").click()
        self.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog.confirm"))

    def no_console_errors(self, step: str) -> None:
        entries = self.driver.get_log("browser")
        severe = [e["message"] for e in entries if e["level"] == "SEVERE"]
        assert severe == [], f"browser console errors after {step}"


@pytest.fixture(scope="module")
def dash(server: QuiverProcess, browser: WebDriver, artifacts: Path) -> Dashboard:
    return Dashboard(browser, server.url, artifacts)


@pytest.fixture(scope="module")
def points_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(7)
    points = [
        {
            "id": i,
            "vector": [rng.gauss(COLOURS.index(COLOURS[i % 3]) * 3, 1) for _ in range(DIM)],
            "payload": {"colour": COLOURS[i % 3], "n": i},
        }
        for i in range(1, POINTS + 1)
    ]
    path = tmp_path_factory.mktemp("upload") / "points.json"
    path.write_text(json.dumps(points))
    return path


def test_the_shell_loads_without_a_key_and_refuses_a_wrong_one(dash: Dashboard) -> None:
    dash.open("collections")
    dialog = dash.find("#key-dialog")
    dash.wait(lambda d: dialog.get_attribute("open") is not None)
    assert dash.all("#collection-list") == []  # no data before the key
    dash.shot("00-key-dialog")
    dash.find("#key-input").send_keys("not-the-key", Keys.ENTER)
    dash.wait(lambda d: d.find_element(By.ID, "key-error").text)
    assert dialog.get_attribute("open") is not None
    refused = [e["message"] for e in dash.driver.get_log("browser") if e["level"] == "SEVERE"]
    assert all("/collections" in m and "401" in m for m in refused), refused  # the browser's own
    dash.find("#key-input").clear()
    dash.find("#key-input").send_keys(KEY)
    dash.find("#key-submit").click()
    dash.wait_text("main h1", "Collections")
    assert dialog.get_attribute("open") is None
    dash.no_console_errors("entering the key")


def test_create_a_collection(dash: Dashboard) -> None:
    form = dash.find("#create-collection")
    form.find_element(By.NAME, "name").send_keys(NAME)
    size = form.find_element(By.NAME, "size")
    size.clear()
    size.send_keys(str(DIM))
    Select(form.find_element(By.NAME, "distance")).select_by_visible_text("Euclid")
    form.find_element(By.NAME, "threshold").send_keys("100")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    dash.wait_text("main h1", NAME)
    assert "Euclid" in dash.text("dl.facts")
    dash.open("collections")
    dash.wait_text("#collection-list", NAME)
    dash.no_console_errors("creating a collection")


def test_upload_points_and_browse_them(dash: Dashboard, points_file: Path) -> None:
    dash.open(f"points/{NAME}")
    dash.find("#points-file").send_keys(str(points_file))
    dash.find("#upload-points button[type=submit]").click()
    dash.wait_text("#upload-status", f"Uploaded {POINTS} of {POINTS}")
    dash.wait_text("#point-count", f"{POINTS} matching")
    editor = dash.find("#filter-editor")
    editor.send_keys('{"must": [')
    dash.wait_text("#filter-error", "Invalid JSON")
    editor.clear()
    editor.send_keys(RED_FILTER)
    dash.wait(lambda d: d.find_element(By.ID, "filter-error").text == "")
    dash.find("#point-page").find_element(By.XPATH, "//button[text()='Apply filter']").click()
    dash.wait_text("#point-count", f"{POINTS // 3} matching")
    rows = dash.all("#point-page tbody tr")
    assert rows and all('"red"' in row.text for row in rows)
    rows[0].send_keys(Keys.ENTER)  # rows are focusable and open with the keyboard
    dash.wait_text("#point-detail h3", "Point 3")
    editor = dash.find("#payload-editor")
    editor.clear()
    editor.send_keys('{"colour": "red", "n": 3, "note": "edited"}')
    dash.find("#point-detail").find_element(By.XPATH, "//button[text()='Save payload']").click()
    dash.wait(lambda d: dash.api("GET", f"/collections/{NAME}/points/3")["payload"].get("note"))
    dash.shot("step-points-filtered")
    dash.no_console_errors("uploading and browsing points")


def test_a_build_job_reaches_100_percent(dash: Dashboard) -> None:
    dash.open("jobs")
    dash.wait_text("#job-history", "100%", timeout=90)
    done = [r for r in dash.all("#job-history tbody tr") if NAME in r.text and "done" in r.text]
    assert done and "100%" in done[0].text
    dash.shot("step-jobs-done")
    dash.no_console_errors("watching jobs")


def test_a_running_build_shows_its_progress_and_can_be_cancelled(dash: Dashboard) -> None:
    """50,000 points of 64 dimensions: an HNSW build of ~15 s on two cores, in five chunks
    (segment_build.BUILD_CHUNK), so an ETA shows from the first fifth on. A cancel is seen
    only before a chunk starts, so the click has chunks two to four to land in: with three
    chunks it had only the second, and a fast build sometimes finished first."""
    rows, dim = 50_000, 64
    config = {"vectors": {"size": dim, "distance": "Cosine"}}
    dash.api(
        "PUT", "/collections/big", config | {"optimizers_config": {"indexing_threshold": rows}}
    )
    rng = random.Random(1)
    for start in range(0, rows, 5_000):
        ids = list(range(start, start + 5_000))
        vectors = [[rng.random() for _ in range(dim)] for _ in ids]
        dash.api(
            "PUT", "/collections/big/points?wait=true", {"batch": {"ids": ids, "vectors": vectors}}
        )
    dash.open("jobs")
    running = dash.wait(lambda d: [r for r in dash.all("#active-jobs tbody tr") if "big" in r.text])
    assert running[0].find_elements(By.TAG_NAME, "progress")
    eta = "#active-jobs tbody tr td:nth-child(6)"
    dash.wait(lambda d: d.find_element(By.CSS_SELECTOR, eta).text.endswith(" s"))  # an ETA
    dash.shot("step-job-running")
    dash.find("#active-jobs").find_element(By.XPATH, ".//button[text()='Cancel']").click()
    dash.wait(lambda d: any("cancelled" in r.text for r in dash.all("#job-history tbody tr")))
    assert dash.api("GET", "/collections/big")["status"] == "grey"
    dash.api("DELETE", "/collections/big")
    dash.no_console_errors("cancelling a job")


def test_search_with_a_filter_shows_results_and_the_explain_panel(dash: Dashboard) -> None:
    dash.open(f"search/{NAME}")
    dash.find("#query-input").send_keys("3")
    dash.find("#query-filter").send_keys(RED_FILTER)
    dash.find("#search-form button[type=submit]").click()
    dash.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results tbody tr"))
    rows = dash.all("#search-results tbody tr")
    assert len(rows) == 10
    assert all('"colour":"red"' in row.text for row in rows)
    summary = dash.text("#explain-summary")
    assert "segments" in summary
    strategies = [c.text for c in dash.all("#explain-panel tbody td:nth-child(2)")]
    assert strategies and all(s for s in strategies)
    dash.shot("step-search-explain")
    dash.no_console_errors("searching")


def test_the_map_draws_the_sample_and_opens_a_point(dash: Dashboard) -> None:
    dash.open(f"explore/{NAME}")
    dash.find("#map-colour").send_keys("colour")
    dash.find("#map-form button[type=submit]").click()
    dash.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map circle")) == POINTS)
    assert "(the whole collection)" in dash.text("#map-caption")
    legend = dash.text("#map-legend")
    assert all(colour in legend for colour in COLOURS)
    dash.all("#map circle")[0].click()
    dash.wait_text("#map-point-title", "Point")
    dash.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#map circle.neighbour"))
    assert len(dash.all("#map-point tbody tr")) == 10
    dash.shot("step-map-point")
    dash.no_console_errors("drawing the map")


def test_take_a_snapshot_and_restore_it(dash: Dashboard) -> None:
    dash.open(f"snapshots/{NAME}")
    dash.find("#snapshot-list")
    dash.find("#create-snapshot").click()
    dash.wait_text("#snapshot-list", ".snapshot")
    names = [s["name"] for s in dash.api("GET", f"/collections/{NAME}/snapshots")]
    assert len(names) == 1 and names[0] in dash.text("#snapshot-list")
    dash.shot("step-snapshot-taken")
    dash.find("#snapshot-list").find_element(By.XPATH, "//button[text()='Restore']").click()
    dash.confirm(NAME)
    dash.wait_text("#toast", "restored")
    assert dash.api("POST", f"/collections/{NAME}/points/count", {"exact": True})["count"] == POINTS
    dash.no_console_errors("taking and restoring a snapshot")


def test_download_a_snapshot_and_upload_it_back(dash: Dashboard) -> None:
    listed = dash.api("GET", f"/collections/{NAME}/snapshots")[0]
    dash.open(f"snapshots/{NAME}")
    dash.wait_text("#snapshot-list", listed["name"])
    dash.find("#snapshot-list").find_element(By.XPATH, "//button[text()='Download']").click()
    saved = Path(dash.driver.downloads) / listed["name"]  # type: ignore[attr-defined]
    dash.wait(lambda d: saved.exists() and saved.stat().st_size == listed["size"])
    dash.find("#snapshot-file").send_keys(str(saved))
    dash.find("#upload-snapshot button[type=submit]").click()
    dash.confirm(NAME)
    dash.wait_text("#toast", "restored from the upload")
    assert dash.api("POST", f"/collections/{NAME}/points/count", {"exact": True})["count"] == POINTS
    dash.no_console_errors("taking a snapshot")


def test_metrics_charts_fill_in(dash: Dashboard) -> None:
    dash.open("metrics")
    dash.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-rate svg path"), timeout=20)
    dash.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-plans svg text"))
    assert "exact" in dash.text("#chart-plans") or "hnsw" in dash.text("#chart-plans")
    dash.shot("step-metrics")
    dash.no_console_errors("reading metrics")


def _search(dash: Dashboard) -> None:
    dash.find("#query-input").send_keys("3")
    dash.find("#search-form button[type=submit]").click()
    dash.find("#explain-summary")


def _draw(dash: Dashboard) -> None:
    dash.find("#map-colour").send_keys("colour")
    dash.find("#map-form button[type=submit]").click()
    dash.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#map circle")) == POINTS)


FILL: dict[str, Callable[[Dashboard], None]] = {f"search/{NAME}": _search, f"explore/{NAME}": _draw}
"""What a page needs done before its photograph shows data, not an empty form."""


@pytest.mark.parametrize("size", [WIDE, NARROW], ids=["wide", "narrow"])
def test_every_page_renders_and_is_photographed(dash: Dashboard, size: tuple[int, int]) -> None:
    dash.driver.set_window_size(*size)
    try:
        for i, page in enumerate(PAGES):
            dash.open(page)
            dash.find("main h1")
            FILL.get(page, lambda dash: None)(dash)
            overflow = dash.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{page} scrolls sideways at {size[0]} px"
            dash.shot(f"{i + 1:02d}-{page.replace('/', '-')}-{size[0]}")
        dash.no_console_errors(f"photographing at {size}")
    finally:
        dash.driver.set_window_size(*WIDE)


def test_change_the_index_then_delete_the_collection(dash: Dashboard) -> None:
    dash.api("PUT", "/collections/scratch", {"vectors": {"size": 4, "distance": "Dot"}})
    dash.open("collections/scratch")
    form = dash.find("#patch-collection")
    m = form.find_element(By.NAME, "m")
    m.clear()
    m.send_keys("8")
    Select(form.find_element(By.NAME, "quantization")).select_by_value("scalar int8")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    dash.wait(lambda d: dash.api("GET", "/collections/scratch")["config"]["hnsw_config"]["m"] == 8)
    config = dash.api("GET", "/collections/scratch")["config"]
    assert config["quantization_config"]["scalar"]["type"] == "int8"
    dash.find("#delete-collection").click()
    dash.confirm("scratch")
    dash.wait(lambda d: d.current_url.endswith("#/collections"))
    assert "scratch" not in [c["name"] for c in dash.api("GET", "/collections")["collections"]]
    dash.no_console_errors("changing and deleting a collection")


def test_delete_a_point(dash: Dashboard) -> None:
    dash.open(f"points/{NAME}")
    dash.wait_text("#point-count", f"{POINTS} matching")
    dash.all("#point-page tbody tr")[1].click()
    dash.wait_text("#point-detail h3", "Point 2")
    dash.find("#point-detail").find_element(By.XPATH, "//button[text()='Delete point']").click()
    dash.confirm("2")
    dash.wait_text("#point-count", f"{POINTS - 1} matching")
    dash.no_console_errors("deleting a point")


def test_a_read_only_key_reads_but_changes_nothing(dash: Dashboard) -> None:
    dash.open("collections")
    dash.find("#forget-key").click()
    dash.find("#key-input").send_keys(READ_ONLY_KEY, Keys.ENTER)
    dash.wait_text("#collection-list", NAME)
    form = dash.find("#create-collection")
    form.find_element(By.NAME, "name").send_keys("refused")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    dash.wait_text("#toast", "Forbidden")
    assert "refused" not in [c["name"] for c in dash.api("GET", "/collections")["collections"]]
    refused = [e["message"] for e in dash.driver.get_log("browser") if e["level"] == "SEVERE"]
    assert len(refused) == 1 and "/collections/refused" in refused[0] and "403" in refused[0]
