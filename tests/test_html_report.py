"""The HTML report: the flow SVG and the page from plain data (no browser), ``--fcp-html``, ``fcp diagnose --html``."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from pytest_fcp.report import cap_events, category, flow_svg, render_report, render_single, status_class
from pytest_fcp.report.flow import url_label

pytest_plugins = ["pytester"]

T0 = "2024-01-10T12:00:00.000Z"
VISION = "https://data.binance.vision/data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01-03.zip"
REST = "https://api.binance.com/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=1704758400000&endTime=1704866400000"


def _events() -> list[dict]:
    """A fetch: a cache read, Vision 200 and a blocked day retried, a 429 with a sleep, a cache write, the rows."""
    raw = [
        ("request", T0, {"cache_days": {"2024-01-02": "hit", "2024-01-03": "miss"}, "symbol": "BTCUSDT"}),
        ("cache", T0, {"op": "read", "path": "spot/BTCUSDT/1h/2024-01-02.arrow", "size": 10, "valid": True}),
        ("http", T0, {"source": "vision", "door": "https", "url": VISION.replace("03", "02"), "status": 200}),
        ("fault", T0, {"id": "vision.http403", "source": "vision", "day": "2024-01-03", "attempt": 1}),
        ("http", T0, {"source": "vision", "door": "https", "url": VISION, "status": 403}),
        ("http", T0, {"source": "vision", "door": "https", "url": VISION, "status": 403}),
        ("http", T0, {"source": "rest", "door": "https", "url": REST, "status": 429, "retry_after": 1.5}),
        ("log", T0, {"level": "WARNING", "message": "rate limited <b>", "module": "engine"}),
        ("sleep", T0, {"seconds": 1.5}),
        ("http", "2024-01-10T12:00:01.500Z", {"source": "rest", "door": "https", "url": REST, "status": 200}),
        ("http", "2024-01-10T12:00:01.500Z", {"source": "rest", "door": "https", "url": REST, "error": "ConnectError"}),
        (
            "cache",
            "2024-01-10T12:00:01.500Z",
            {"op": "write", "path": "spot/BTCUSDT/1h/2024-01-03.arrow", "valid": False},
        ),
        ("outcome", "2024-01-10T12:00:01.500Z", {"rows": 48, "rows_by_source": {"cache": 24, "rest": 24}}),
    ]
    return [{"index": i, "kind": k, "virtual": v, "real_ms": float(i), **d} for i, (k, v, d) in enumerate(raw)]


def _test(nodeid: str, engine: str, **extra: object) -> dict:
    record = {
        "outcome": "data",
        "failures": ["order: 2024-01-03 asked Vision twice"],
        "totals": {"vision": 3, "rest": 3, "rest_weight": 6, "retries": 2, "sleeps": 1},
        "days": {
            "2024-01-02": {"cache_before": "valid", "vision": "https 200 x1", "rest": "", "rows": "cache 24",
                           "cache_after": "valid"},
            "2024-01-03": {"cache_before": "missing", "vision": "https 403 x2", "rest": "429 x1, 200 x1",
                           "rows": "rest 24", "cache_after": "corrupt"},
        },
    }  # fmt: skip
    return {"nodeid": nodeid, "engine": engine, "outcome": "passed", "path": "cache hit 1d -> ...", "faults": [],
            "events": _events(), "record": record, **extra}  # fmt: skip


def test_status_classes_and_url_labels() -> None:
    assert [status_class({"status": s}) for s in (200, 206, 403, 404, 429, 418, 500, 503)] == [
        "s2", "s2", "s4", "s4", "rl", "rl", "s5", "s5"
    ]  # fmt: skip
    assert status_class({"error": "ConnectError"}) == "sx"
    assert url_label(VISION) == "BTCUSDT-1h-2024-01-03.zip"
    assert url_label(REST) == "v3/klines 2024-01-09 00:00 .. 2024-01-10 06:00"


def test_flow_svg_draws_lanes_marks_retries_faults_sleeps_and_the_outcome() -> None:
    svg = flow_svg(_events())
    root = ET.fromstring(svg)  # well-formed, so an <svg> inline in HTML is too
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    lanes = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text") if t.get("class") == "ln"]
    assert lanes == ["cache", "vision", "rest", "result"]
    classes = [el.get("class") for el in root.iter()]
    assert classes.count("s2") == 2 and classes.count("s4") == 2 and classes.count("rl") == 1
    assert classes.count("sx") == 1 and classes.count("ring") == 3  # 2nd 403, then REST twice more: retries
    assert classes.count("flt") == 1 and classes.count("slp") == 1 and classes.count("fetch") == 1
    assert classes.count("cr") == 1 and "cw bad" in classes and classes.count("ok") == 1
    assert "log" not in svg and "+1.5 s" in svg and "12:00:00" in svg
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert any("vision.http403 2024-01-03 1" in t for t in titles)
    assert any("retry-after 1.5s" in t and "(retry" not in t for t in titles)
    # x follows the order of events within an instant, and a jump of the virtual clock opens a gap
    xs = [float(c.get("cx")) for c in root.iter("{http://www.w3.org/2000/svg}circle") if c.get("class") != "ring"]
    assert xs == sorted(xs) and len(set(xs)) == len(xs)


def test_flow_svg_of_an_error_and_of_nothing() -> None:
    events = [{"index": 0, "kind": "outcome", "virtual": T0, "error": "RateLimitError", "message": "429 <x>"}]
    assert "RateLimitError" in flow_svg(events) and "429 &lt;x&gt;" in flow_svg(events)
    ET.fromstring(flow_svg([], note="nothing"))


def test_cap_events_keeps_the_first_drawn_events_and_logs() -> None:
    events = [{"index": i, "kind": "http" if i % 2 else "log", "virtual": T0, "real_ms": 1.0, "message": "m" * 999}
              for i in range(1000)]  # fmt: skip
    kept = cap_events(events, limit=300, logs=10)
    assert sum(e["kind"] == "http" for e in kept) == 300 and sum(e["kind"] == "log" for e in kept) == 10
    assert all("real_ms" not in e for e in kept) and {len(e["message"]) for e in kept if e["kind"] == "log"} == {220}
    page = render_report({"seed": 1, "engines": ["x"], "tests": [
        {"nodeid": "t.py::t", "engine": "x", "outcome": "passed", "events": kept,
         "events_total": {"drawn": 500, "logs": 500}}]})  # fmt: skip
    assert "first 300 of 500 events shown" in page and "engine log, 10 record(s) (first 10 of 500)" in page


def test_categories() -> None:
    assert category({"scenario": "a/b", "kind": "known failure", "outcome": "xfailed"}) == "known"
    assert category({"scenario": "a/b", "kind": "worse", "outcome": "failed"}) == "chg"
    assert category({"scenario": "a/b", "kind": "new failing", "outcome": "failed"}) == "new"
    assert category({"scenario": "a/b", "outcome": "skipped"}) == "err"
    assert category({"scenario": "a/b", "outcome": "failed"}) == "err"  # no verdict: the harness failed
    assert category({"outcome": "failed"}) == "new" and category({"outcome": "passed"}) == "ok"


def test_render_report_matrix_filters_detail_and_escaping() -> None:
    tests = [
        _test("s/basics.toml::a[ref]", "ref", scenario="basics/a", theme="basics", kind="conforming"),
        _test("s/basics.toml::a[alt]", "alt", scenario="basics/a", theme="basics", kind="worse",
              outcome="failed", first="rows: <script>alert(1)</script>", diff=["days.2024-01-03.rest: '' -> '429 x1'"],
              replay="pytest --fcp-seed=5 's/basics.toml::a[alt]'"),
        _test("s/limits.toml::b[ref]", "ref", scenario="limits/b", theme="limits", kind="known failure",
              outcome="xfailed"),
        {"nodeid": "s/limits.toml::b[alt]", "engine": "alt", "scenario": "limits/b", "theme": "limits",
         "outcome": "skipped"},
        _test("tests/test_x.py::test_y[ref]", "ref"),
    ]  # fmt: skip
    page = render_report({"seed": 5, "engines": ["ref", "alt"], "created": "now", "tests": tests})
    assert page.startswith("<!DOCTYPE html>") and "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not re.search(r"(src|href)=\"https?:", page)  # nothing from the network
    assert 'id="seed">5<' in page and "pytest --fcp-seed=5 &#x27;s/basics.toml::a[alt]&#x27;" in page
    assert re.findall(r'<tr class="row" id="(m\d+)"', page) == ["m0", "m1"]  # the matrix: one row a scenario
    cells = re.findall(r'data-engine="(\w+)" data-cat="(\w+)"', page.split('id="others"', 1)[0])
    assert cells == [("ref", "ok"), ("alt", "chg"), ("ref", "known"), ("alt", "err")]
    assert page.count('class="row"') == 3 and "tests/test_x.py::test_y[ref]" in page  # the other traced test
    for option in ('value="basics"', 'value="limits"', 'value="alt"', 'value="known"', 'value="bad"'):
        assert option in page
    assert "https 403 x2" in page and 'class="cb">corrupt' in page and "baseline difference" in page
    assert "order: 2024-01-03 asked Vision twice" in page and "retries 2" in page
    assert "rate limited &lt;b&gt;" in page  # the engine's log, escaped
    assert page.count('<svg class="flow"') == 1 + 4  # the legend, and one flow per test with events


def _chips(page: str) -> dict[str, str]:
    """The badge line of each engine at the top of the page: engine -> its text without tags."""
    lines = re.findall(r'<p class="chips" data-engine="[^"]*"><b>([^<]*)</b>(.*?)</p>', page)
    return {name: re.sub(r"<[^>]+>", "", rest).strip() for name, rest in lines}


def test_badges_count_every_traced_test() -> None:
    tests = [
        _test("s/basics.toml::a[ref]", "ref", scenario="basics/a", theme="basics", kind="conforming"),
        _test("tests/test_u.py::test_fails[ref]", "ref", outcome="failed"),  # a plain @pytest.mark.fcp test
        _test("tests/test_u.py::test_passes[ref]", "ref"),
        _test("tests/test_u.py::test_xfails[alt]", "alt", outcome="xfailed"),
        {"nodeid": "tests/test_u.py::test_setup_error", "engine": None, "outcome": "error"},  # no world, no engine
    ]
    chips = _chips(render_report({"seed": 1, "engines": ["ref", "alt"], "tests": tests}))
    assert chips == {
        "ref": "3 traced test(s): 2 conforming or passed 1 new failing or failed",
        "alt": "1 traced test(s): 1 known failure unchanged or xfailed",
        "no engine": "1 traced test(s): 1 error or skipped",
    }


def _http_trace(n: int) -> list[dict]:
    """``n`` Vision requests, with a log record every tenth event and one Python warning among them."""
    events: list[dict] = []
    for i in range(n):
        events.append({"kind": "http", "virtual": T0, "source": "vision", "url": f"u{i}", "status": 200})
        if i % 10 == 0:
            events.append({"kind": "log", "virtual": T0, "level": "INFO", "message": f"m{i}"})
    events.insert(len(events) // 2, {"kind": "warning", "virtual": T0, "category": "UserWarning", "message": "w"})
    return [{"index": i, "real_ms": 0.0, **e} for i, e in enumerate(events)]


@pytest.mark.parametrize("n", [0, 1, 26, 27, 299, 300, 301, 1000])
@pytest.mark.parametrize("full", [False, True], ids=["capped-on-worker", "full-trace"])
def test_any_number_of_events_is_shown_right(n: int, full: bool) -> None:
    from pytest_fcp.plugin.html_report import HtmlReport
    from pytest_fcp.report import MAX_EVENTS, event_totals

    events = _http_trace(n)
    trace = {"events": events} if full else {"events": cap_events(events), "events_total": event_totals(events)}
    entry: dict = {"nodeid": "t.py::t", "engine": "x", "outcome": "passed"}
    HtmlReport._events(entry, trace)
    page = render_report({"seed": 1, "engines": ["x"], "tests": [entry]})
    assert page.split("<section", 1)[1].count('<circle class="s2"') == min(n, MAX_EVENTS)  # after the legend
    notes = re.findall(r"first \d+ of \d+ events shown", page)
    assert notes == ([f"first {MAX_EVENTS} of {n} events shown"] if n > MAX_EVENTS else [])
    logs = (n + 9) // 10
    assert (f"engine log, {min(logs, 60)} record(s)" in page) == (logs > 0)
    assert ("(first 60 of" in page) == (logs > 60)
    assert ("Python warnings, 1 distinct" in page) and "UserWarning: w" in page


def test_verdicts_diff_and_faults_are_escaped() -> None:
    test = _test(
        "s/basics.toml::a[ref]", "ref", scenario="basics/a", theme="basics", kind="worse", outcome="failed",
        first="rows: <script>first()</script> & first", diff=["days: <script>diff()</script> & diff"],
        verdicts=["order: <script>verdict()</script> & verdict"],
        faults=[{"id": "<script>fault()</script>", "note": "a & b <i>"}, "<b>plain & fault</b>"],
    )  # fmt: skip
    test["record"] = dict(test["record"], failures=["rows: <script>failure()</script> & failure"])
    page = render_report({"seed": 1, "engines": ["ref"], "tests": [test]})
    for name in ("first", "diff", "failure"):
        assert f"<script>{name}()</script>" not in page
        assert f"&lt;script&gt;{name}()&lt;/script&gt; &amp; {name}" in page
    assert "&lt;script&gt;fault()&lt;/script&gt; [note=a &amp; b &lt;i&gt;]" in page and "<i>" not in page
    assert "&lt;b&gt;plain &amp; fault&lt;/b&gt;" in page
    del test["record"]  # no record: the verdicts list is the test's own
    page = render_report({"seed": 1, "engines": ["ref"], "tests": [test]})
    assert "<script>verdict()</script>" not in page and "&lt;script&gt;verdict()&lt;/script&gt; &amp; verdict" in page


def test_render_single_page() -> None:
    page = render_single(_test("fcp diagnose BTCUSDT spot 1h", "reference", label="contract kept"), "diag", ["l1"])
    assert "<h1>diag</h1>" in page and "contract kept" in page and page.count('<svg class="flow"') == 2


FAILING = """
import pytest

@pytest.mark.fcp(faults=["vision.http403"], engines=["reference"])
def test_fails(fcp_world, fcp_engine, fcp_trace):
    import datetime as dt
    r = fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
    assert r.rows_by_source() == {"vision": 24}

def test_plain():
    pass
"""


def test_fcp_html_under_xdist_is_written_by_the_controller(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    (pytester.path / "out").mkdir()
    result = pytester.runpytest(
        "--fcp-seed=3", "--fcp-html=out/report.html", "--fcp-engine=reference", "-n", "2", "-p", "xdist"
    )
    result.assert_outcomes(passed=1, failed=1)
    report = pytester.path / "out" / "report.html"
    result.stdout.fnmatch_lines([f"fcp: HTML report written to {report} (* KiB, 1 test(s))"])
    page = report.read_text()
    assert "test_fails[reference]" in page and "test_plain" not in page  # traced tests only
    assert "pytest --fcp-seed=3" in page and 'class="s4"' in page  # the replay line and the 403 marks
    assert "cache miss 1d -&gt; vision 403 x" in page
    assert _chips(page) == {"reference": "1 traced test(s): 1 new failing or failed"}  # the user's test counts


def test_fcp_html_from_ini_and_a_bad_directory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    pytester.makeini("[pytest]\nfcp_html = fcp.html\n")
    result = pytester.runpytest("--fcp-engine=reference", "-k", "fails")  # one process: the events stay local
    result.assert_outcomes(failed=1, deselected=1)
    assert "test_fails[reference]" in (pytester.path / "fcp.html").read_text()
    result = pytester.runpytest("--fcp-html=missing/dir/r.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: pytest-fcp: --fcp-html missing/dir/r.html: no such directory *"])
    (pytester.path / "adir").mkdir()
    result = pytester.runpytest("--fcp-html=adir")
    result.stderr.fnmatch_lines(["ERROR: pytest-fcp: --fcp-html adir: is a directory*"])


def test_diagnose_html(tmp_path, capsys) -> None:
    from pytest_fcp.cli import main

    target = tmp_path / "diag.html"
    args = ["diagnose", "BTCUSDT", "spot", "1h", "--days", "4", "--now", "2024-01-10T12:00:00Z"]
    assert main([*args, "--simulate", "vision.http403", "--html", str(target)]) == 1
    assert f"HTML written to {target}" in capsys.readouterr().out
    page = target.read_text()
    assert "fcp diagnose BTCUSDT spot 1h" in page and 'class="s4"' in page and "https 403 x1" in page
    assert "contract kept" in page and "vision.http403" in page
    assert main([*args, "--simulate", "none", "--html", str(tmp_path / "no" / "x.html")]) == 2
    assert "--html" in capsys.readouterr().err
