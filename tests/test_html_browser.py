"""The HTML report in a real headless browser (Debian's Chromium through selenium and chromium-driver).

A run of two catalog themes on both engines writes the report (with pytest-xdist, so the events travel from
the workers); the page must load with no console error, hold every scenario of the run, show a row's flow
when clicked, filter, and make a screenshot. Skipped, with the reason, only where Chromium cannot be had.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_fcp.report import render_report, render_single

THEMES = ("basics", "rest_errors")
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "/usr/lib/chromium/chromedriver", "/usr/bin/chromedriver")


def _find(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name) or (name if pathlib.Path(name).is_file() else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium with its console log kept; skips when selenium, Chromium or its driver is missing."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (it is in the dev dependency group: uv sync)")
    binary, driver_path = _find(CHROMIUM), _find(DRIVERS)
    if binary is None or driver_path is None:
        pytest.skip("Chromium or chromedriver not found: apt-get install chromium chromium-driver (Debian packages)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def catalog_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, list[str]]:
    """Two themes of the catalog on both engines with ``-n 2``: the HTML report and the run's scenario ids."""
    out = tmp_path_factory.mktemp("report")
    html, traces = out / "report.html", out / "traces"
    command = [sys.executable, "-m", "pytest", "--fcp-scenarios", "--fcp-engine=reference", "--fcp-engine=ckvd",
               "-k", " or ".join(THEMES), f"--fcp-html={html}", f"--fcp-trace-dir={traces}", "-n", "2", "-p", "xdist",
               "-p", "no:cacheprovider", "-q"]  # fmt: skip
    done = subprocess.run(command, cwd=out, capture_output=True, text=True, timeout=600, check=False)
    assert html.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    lines = [json.loads(line) for line in next(traces.glob("*.jsonl")).read_text().splitlines()[1:]]
    return html, sorted({line["scenario"] for line in lines if "scenario" in line})


def _open(driver: Any, path: pathlib.Path) -> list[dict[str, Any]]:
    """Load ``path`` and return the console records of level SEVERE (errors)."""
    driver.get_log("browser")  # drop what an earlier page left
    driver.get(path.as_uri())
    assert driver.find_element("tag name", "body").get_attribute("data-ready") in ("1", None)
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _shown(driver: Any) -> list[Any]:
    return [row for row in driver.find_elements("css selector", "#matrix tr.row") if row.is_displayed()]


def test_the_console_check_sees_errors(browser: Any, tmp_path: pathlib.Path) -> None:
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('planted')</script></body></html>")
    assert any("planted" in entry["message"] for entry in _open(browser, page))


def test_report_loads_clean_and_holds_every_scenario(browser: Any, catalog_report: Any) -> None:
    html, scenarios = catalog_report
    assert len(scenarios) > 10 and {s.split("/")[0] for s in scenarios} == set(THEMES)
    assert _open(browser, html) == []
    assert browser.find_element("tag name", "body").get_attribute("data-ready") == "1"  # the script ran to its end
    ids = [row.find_element("css selector", "td.id").text for row in _shown(browser)]
    assert sorted(ids) == scenarios
    cells = browser.find_elements("css selector", "#matrix td[data-cat]")
    assert len(cells) == 2 * len(scenarios)  # scenario x engine
    assert browser.find_element("id", "seed").text.isdigit()


def test_clicking_a_row_shows_its_flow(browser: Any, catalog_report: Any, tmp_path: pathlib.Path) -> None:
    html, _ = catalog_report
    assert _open(browser, html) == []
    row = next(
        r
        for r in _shown(browser)
        if r.find_element("css selector", "td.id").text == "rest_errors/connect_error_once_then_ok"
    )
    flow = browser.find_element("id", row.get_attribute("data-flow"))
    assert not flow.is_displayed()
    row.click()
    assert flow.is_displayed() and row.get_attribute("aria-expanded") == "true"
    svgs = flow.find_elements("css selector", "svg.flow")
    assert len(svgs) == 2  # one per engine
    marks = flow.find_elements("css selector", "svg.flow circle.s2, svg.flow circle.sx, svg.flow circle.s4")
    assert {m.get_attribute("class") for m in marks} == {"s2", "sx", "s4"}  # 200, the ConnectError, ckvd's 404s
    assert flow.find_elements("css selector", "svg.flow rect.slp")  # the wait it asked for
    assert flow.find_elements("css selector", "svg.flow circle.ring")  # and the request sent again
    assert "replay:" in flow.text and "known failure" in flow.text  # ckvd's cell: its replay line
    shot = tmp_path / "flow.png"
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    row.click()
    assert not flow.is_displayed()
    assert _severe(browser) == []


def _severe(driver: Any) -> list[dict[str, Any]]:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_filters_by_theme_engine_and_outcome(browser: Any, catalog_report: Any) -> None:
    from selenium.webdriver.support.ui import Select

    html, scenarios = catalog_report
    assert _open(browser, html) == []
    Select(browser.find_element("id", "f-theme")).select_by_value("rest_errors")
    assert len(_shown(browser)) == sum(s.startswith("rest_errors/") for s in scenarios)
    Select(browser.find_element("id", "f-theme")).select_by_value("")
    Select(browser.find_element("id", "f-engine")).select_by_value("reference")
    assert not browser.find_element("css selector", '#matrix th[data-engine="ckvd"]').is_displayed()
    Select(browser.find_element("id", "f-kind")).select_by_value("bad")
    assert _shown(browser) == []  # the reference engine conforms everywhere
    Select(browser.find_element("id", "f-engine")).select_by_value("")
    assert len(_shown(browser)) > 0  # ckvd does not
    assert "rows shown" in browser.find_element("id", "shown").text and _severe(browser) == []


def test_diagnose_page_loads_clean(browser: Any, tmp_path: pathlib.Path) -> None:
    event = {"index": 0, "kind": "http", "virtual": "2024-01-10T12:00:00Z", "source": "rest", "status": 200, "url": "u"}
    page = tmp_path / "diag.html"
    page.write_text(render_single({"nodeid": "fcp diagnose", "engine": "reference", "events": [event]}, "diag"))
    assert _open(browser, page) == []
    assert len(browser.find_elements("css selector", "section.t svg.flow circle.s2")) == 1


_BOXES_JS = """
return Array.prototype.map.call(document.querySelectorAll('section.t svg.flow'), function (svg) {
  return Array.prototype.map.call(svg.querySelectorAll('text, rect.ok, rect.oe'), function (el) {
    var b = el.getBBox();
    return [el.tagName, el.getAttribute('class') || '', el.textContent, b.x, b.y, b.width, b.height];
  });
});
"""


def test_flow_labels_never_overlap_as_drawn(browser: Any, tmp_path: pathlib.Path) -> None:
    """The browser's own boxes of every label: none intersect, none is wider than the layout reckoned."""
    from pytest_fcp.report.layout import BOLD, FONT, text_width
    from tests.test_html_layout import clock_steps, month_from_vision, one_bar_fetches, overlaps, retry_storm

    tests = [
        {"nodeid": f"t.py::{name}", "engine": "reference", "outcome": "passed", "events": events}
        for name, events in (
            ("month", month_from_vision()),
            ("one_bar", one_bar_fetches()),
            ("storm", retry_storm()),
            ("clock", clock_steps()),
        )
    ]
    page = tmp_path / "many.html"
    page.write_text(render_report({"seed": 1, "engines": ["reference"], "tests": tests}))
    assert _open(browser, page) == []
    for row in browser.find_elements("css selector", "#others tr.row"):
        row.click()  # a hidden flow has no boxes
    flows = browser.execute_script(_BOXES_JS)
    assert len(flows) == 4
    for flow in flows:
        texts = [f for f in flow if f[0] == "text"]
        assert len(texts) > 40
        for _, cls, text, _, _, width, _ in texts:
            assert 0 < width <= text_width(text, FONT.get(cls, 10), cls in BOLD), (cls, text, width)
        boxes = [(f"{c}:{t}", x, y, x + w, y + h) for tag, c, t, x, y, w, h in flow if c != "ot"]
        assert overlaps(boxes) == []
    shot = tmp_path / "many.png"
    assert browser.save_screenshot(str(shot)) and _severe(browser) == []
