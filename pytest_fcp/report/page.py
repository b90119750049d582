"""The HTML report as one self-contained string: a pure function of plain data (no pytest, no I/O).

``render_report(data)`` takes a mapping with ``seed``, ``engines``, ``created``, ``versions`` and ``tests``;
each test a mapping with ``nodeid``, ``engine``, ``outcome`` (passed, failed, skipped, xfailed, xpassed,
error), ``path`` (the folded decision path), ``faults``, ``events`` (trace event mappings), and for a
scenario item ``scenario``, ``theme``, ``kind`` (conforming, known failure, worse, better, changed, new
failing), ``first``, ``diff`` (the baseline difference's lines), ``record`` (the behaviour record's plain
data) and ``replay``; ``label``, if given, is shown instead of the kind. Scenarios make the conformance
matrix (scenario x engine); every other traced test gets a row below it. Opening a row shows each engine's
decision flow (:func:`~pytest_fcp.report.flow.flow_svg`), the verdicts, the baseline difference and the
per-day decision table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from pytest_fcp.core.cache_states import BROKEN_STATES
from pytest_fcp.report.assets import CSS, JS, LEGEND
from pytest_fcp.report.flow import DRAWN, flow_svg
from pytest_fcp.report.layout import label_css

__all__ = [
    "CATEGORIES",
    "MAX_EVENTS",
    "MAX_LOGS",
    "cap_events",
    "category",
    "event_totals",
    "render_report",
    "render_single",
]

#: Cell categories: (key, label), in legend and filter order.
CATEGORIES = (
    ("ok", "conforming or passed"),
    ("known", "known failure unchanged or xfailed"),
    ("chg", "changed (worse, better, changed) or xpassed"),
    ("new", "new failing or failed"),
    ("err", "error or skipped"),
)
_KIND_CATEGORY = {
    "conforming": "ok",
    "known failure": "known",
    "worse": "chg",
    "better": "chg",
    "changed": "chg",
    "new failing": "new",
}
_OUTCOME_CATEGORY = {"passed": "ok", "xfailed": "known", "xpassed": "chg", "failed": "new"}
#: Drawn events kept per test, and engine log records (and warnings) kept per test (the rest is counted).
MAX_EVENTS = 300
MAX_LOGS = 60
_LOG_CHARS = 220
_DAY_COLUMNS = ("cache_before", "vision", "rest", "rows", "cache_after")


def category(test: Mapping[str, Any]) -> str:
    """The cell category of a test: from its baseline kind (scenarios) or else its outcome."""
    kind = test.get("kind")
    if kind in _KIND_CATEGORY:
        return _KIND_CATEGORY[kind]
    if test.get("scenario") is not None:  # a scenario with no verdict: the harness failed, or it was skipped
        return "ok" if test.get("outcome") == "passed" else "err"
    return _OUTCOME_CATEGORY.get(str(test.get("outcome")), "err")


def _label(test: Mapping[str, Any]) -> str:
    kind = test.get("label") or test.get("kind")
    if kind:
        return str(kind)
    return str(test.get("outcome", "?"))


def event_totals(events: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """How many drawn events, engine log records and Python warnings ``events`` holds (before any cap)."""
    totals = {"drawn": 0, "logs": 0, "warnings": 0}
    for event in events:
        kind = event.get("kind")
        if kind in DRAWN:
            totals["drawn"] += 1
        elif kind == "log":
            totals["logs"] += 1
        elif kind == "warning":
            totals["warnings"] += 1
    return totals


def cap_events(
    events: Iterable[Mapping[str, Any]], limit: int = MAX_EVENTS, logs: int = MAX_LOGS
) -> list[dict[str, Any]]:
    """The first ``limit`` drawn events, and the first ``logs`` log records and warnings (shortened), in order."""
    kept: list[dict[str, Any]] = []
    counted = {"drawn": 0, "log": 0, "warning": 0}
    for event in events:
        kind = event.get("kind")
        if kind in ("log", "warning"):
            counted[kind] += 1
            if counted[kind] <= logs:
                kept.append({k: v for k, v in event.items() if k not in ("module", "real_ms")})
                kept[-1]["message"] = str(event.get("message", ""))[:_LOG_CHARS]
        elif kind in DRAWN:
            counted["drawn"] += 1
            if counted["drawn"] <= limit:
                kept.append({k: v for k, v in event.items() if k not in ("real_ms", "took_ms")})
    return kept


def _counts(test: Mapping[str, Any]) -> dict[str, int]:
    """Drawn events, log records and warnings the test had in all (before capping)."""
    kept = event_totals(test.get("events") or [])
    total = test.get("events_total")
    if isinstance(total, Mapping):
        return {key: max(int(total.get(key, kept[key])), kept[key]) for key in kept}
    return kept


def _note(test: Mapping[str, Any]) -> str:
    """Says how many drawn events the flow leaves out, if any."""
    total = _counts(test)["drawn"]
    drawn = event_totals(test.get("events") or [])["drawn"]
    if total > drawn:
        return f"first {drawn} of {total} events shown"
    return ""


def _day_class(value: str) -> str:
    if value == "valid":
        return ' class="cv"'
    if value in ("missing", ""):
        return ' class="cm"'
    if value.split(" ", 1)[0] in BROKEN_STATES:
        return ' class="cb"'
    return ""


def _days_tables(record: Mapping[str, Any]) -> str:
    """Each fetch's per-day decision table from a behaviour record's plain data."""
    raw = record.get("outcome", "")
    outcomes = raw if isinstance(raw, list) else [raw]
    out = []
    for i, outcome in enumerate(outcomes):
        key = "days" if i == 0 else f"days_{i + 1}"
        days = record.get(key) or {}
        if not days:
            continue
        head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in _DAY_COLUMNS)
        rows = []
        for day, row in sorted(days.items()):
            cells = "".join(
                f"<td{_day_class(str(row.get(c, '')))}>{escape(str(row.get(c, '')))}</td>" for c in _DAY_COLUMNS
            )
            rows.append(f"<tr><td>{escape(day)}</td>{cells}</tr>")
        caption = (
            f"fetch {i + 1}: {escape(str(outcome))}" if len(outcomes) > 1 else f"days · outcome {escape(str(outcome))}"
        )
        out.append(f'<table class="d"><caption>{caption}</caption><tr><th>day</th>{head}</tr>{"".join(rows)}</table>')
    return "".join(out)


def _list(title: str, lines: Sequence[str]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{escape(str(line))}</li>" for line in lines)
    return f"<b>{escape(title)}</b><ul>{items}</ul>"


def _fault_text(fault: Any) -> str:
    if isinstance(fault, Mapping):
        rest = ", ".join(f"{k}={v}" for k, v in fault.items() if k != "id")
        return f"{fault.get('id')}" + (f" [{rest}]" if rest else "")
    return str(fault)


def _aside(test: Mapping[str, Any]) -> str:
    record = test.get("record") or {}
    parts = [f'<p><span class="badge k-{category(test)}">{escape(_label(test))}</span></p>']
    if test.get("first"):
        parts.append(f"<p><b>first:</b> {escape(str(test['first']))}</p>")
    parts.append(_list("baseline difference", test.get("diff") or []))
    parts.append(_list("verdicts (contract failures)", record.get("failures") or test.get("verdicts") or []))
    parts.append(_list("faults", [_fault_text(f) for f in test.get("faults") or []]))
    totals = record.get("totals")
    if totals:
        parts.append("<p><b>totals:</b> " + escape(", ".join(f"{k} {v}" for k, v in totals.items())) + "</p>")
    if test.get("replay"):
        parts.append(f'<p class="replay"><b>replay:</b> <code>{escape(str(test["replay"]))}</code></p>')
    return "<aside>" + "".join(parts) + "</aside>"


def _logs(test: Mapping[str, Any]) -> str:
    """The engine's log records and Python warnings, folded under a summary that counts them."""
    parts = []
    total = _counts(test)
    for kind, what in (("log", "engine log, {} record(s)"), ("warning", "Python warnings, {} distinct")):
        kept = [e for e in test.get("events") or [] if e.get("kind") == kind]
        if not kept:
            continue
        count = total["logs" if kind == "log" else "warnings"]
        more = f" (first {len(kept)} of {count})" if count > len(kept) else ""
        if kind == "log":
            text = "\n".join(f"#{e.get('index', '')} {e.get('level', '')} {e.get('message', '')}" for e in kept)
        else:
            text = "\n".join(
                f"#{e.get('index', '')} {e.get('category', '')}: {e.get('message', '')}"
                + (f" (x{e['count']})" if e.get("count", 1) != 1 else "")
                for e in kept
            )
        summary = f"<summary>{what.format(len(kept))}{more}</summary>"
        parts.append(f'<details>{summary}<pre class="log">{escape(text)}</pre></details>')
    return "".join(parts)


def _detail(test: Mapping[str, Any]) -> str:
    """One test's section: title, path, its flow beside the verdicts, the day tables, the log."""
    engine = escape(str(test.get("engine") or ""))
    events = test.get("events") or []
    flow = (
        f'<div class="scroll">{flow_svg(events, _note(test))}</div>'
        if events
        else '<p class="meta">no trace: the engine did not run (skipped, or the run failed before it)</p>'
    )
    return (
        f'<section class="t" data-engine="{engine}"><h3>{engine} · {escape(str(test.get("nodeid", "")))}</h3>'
        f"<p><code>{escape(str(test.get('path', '')))}</code></p>"
        f'<div class="cols">{flow}'
        f"{_aside(test)}</div>{_days_tables(test.get('record') or {})}{_logs(test)}</section>"
    )


def _cell(test: Mapping[str, Any] | None, engine: str) -> str:
    if test is None:
        return f'<td class="c" data-engine="{escape(engine)}"></td>'
    cat = category(test)
    label = escape(_label(test))
    tip = escape(str(test.get("first") or test.get("path") or ""))
    return f'<td class="c k-{cat}" data-engine="{escape(engine)}" data-cat="{cat}" title="{tip}">{label}</td>'


def _matrix(tests: Sequence[Mapping[str, Any]], engines: Sequence[str]) -> tuple[str, list[str]]:
    by_scenario: dict[str, dict[str, Mapping[str, Any]]] = {}
    themes: dict[str, str] = {}
    for test in tests:
        sid = str(test["scenario"])
        by_scenario.setdefault(sid, {})[str(test.get("engine"))] = test
        themes[sid] = str(test.get("theme") or sid.split("/", 1)[0])
    head = "".join(f'<th data-engine="{escape(e)}">{escape(e)}</th>' for e in engines)
    rows = []
    for n, sid in enumerate(sorted(by_scenario, key=lambda s: (themes[s], s))):
        cells = by_scenario[sid]
        details = "".join(_detail(cells[e]) for e in engines if e in cells)
        rows.append(
            f'<tr class="row" id="m{n}" data-flow="mf{n}" data-theme="{escape(themes[sid])}" tabindex="0" '
            f'aria-expanded="false"><td class="theme">{escape(themes[sid])}</td><td class="id">{escape(sid)}</td>'
            + "".join(_cell(cells.get(e), e) for e in engines)
            + f'</tr><tr class="flow" id="mf{n}" hidden><td colspan="{len(engines) + 2}">{details}</td></tr>'
        )
    table = f'<table class="m" id="matrix"><tr><th>theme</th><th>scenario</th>{head}</tr>{"".join(rows)}</table>'
    return table, sorted(set(themes.values()))


def _others(tests: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    rows = []
    files = set()
    for n, test in enumerate(sorted(tests, key=lambda t: str(t.get("nodeid")))):
        nodeid = str(test.get("nodeid", ""))
        theme = nodeid.split("::", 1)[0]
        files.add(theme)
        engine = str(test.get("engine") or "")
        rows.append(
            f'<tr class="row" id="o{n}" data-flow="of{n}" data-theme="{escape(theme)}" tabindex="0" '
            f'aria-expanded="false"><td class="id">{escape(nodeid)}</td>{_cell(test, engine)}'
            f"<td><code>{escape(str(test.get('path', '')))}</code></td></tr>"
            f'<tr class="flow" id="of{n}" hidden><td colspan="3">{_detail(test)}</td></tr>'
        )
    head = "<tr><th>test</th><th>outcome</th><th>decision path</th></tr>"
    table = f'<table class="m" id="others">{head}{"".join(rows)}</table>'
    return table, sorted(files)


def _chips(tests: Sequence[Mapping[str, Any]], engines: Sequence[str]) -> str:
    """Per engine, how many of its traced tests (scenarios and the others) fall in each category."""
    counts: dict[str, dict[str, int]] = {engine: {key: 0 for key, _ in CATEGORIES} for engine in engines}
    for test in tests:
        engine = str(test.get("engine") or "")
        counts.setdefault(engine, {key: 0 for key, _ in CATEGORIES})[category(test)] += 1
    chips = []
    for engine, per in counts.items():
        shown = " ".join(f'<span class="badge k-{k}">{per[k]} {label}</span>' for k, label in CATEGORIES if per[k])
        if shown:
            name = escape(engine) if engine else "no engine"
            total = sum(per.values())
            chips.append(
                f'<p class="chips" data-engine="{escape(engine)}"><b>{name}</b> '
                f'<span class="meta">{total} traced test(s):</span> {shown}</p>'
            )
    return "".join(chips)


def _options(values: Iterable[tuple[str, str]], every: str) -> str:
    return f'<option value="">{escape(every)}</option>' + "".join(
        f'<option value="{escape(v)}">{escape(label)}</option>' for v, label in values
    )


def _page(title: str, head: str, body: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title>'
        f"<style>{CSS}{label_css()}</style></head><body>{head}{body}</body></html>"
    )


def render_report(data: Mapping[str, Any]) -> str:
    """The whole run as one self-contained HTML page (inline CSS and JS, no network)."""
    tests = list(data.get("tests") or [])
    engines = list(data.get("engines") or sorted({str(t.get("engine")) for t in tests}))
    scenarios = [t for t in tests if t.get("scenario") is not None]
    others = [t for t in tests if t.get("scenario") is None]
    seed = data.get("seed")
    versions = ", ".join(f"{k} {v}" for k, v in (data.get("versions") or {}).items() if v)
    head = (
        f"<h1>{escape(str(data.get('title') or 'pytest-fcp report'))}</h1>"
        f'<p class="meta">seed <code id="seed">{escape(str(seed))}</code> '
        f"(replay with <code>--fcp-seed={escape(str(seed))}</code>) · engines {escape(', '.join(engines))} · "
        f"{len(tests)} traced test(s) · "
        f"{escape(str(data.get('created', '')))}{' · ' + escape(versions) if versions else ''}</p>"
        + _chips(tests, engines)
        + LEGEND
    )
    body = []
    themes: list[str] = []
    if scenarios:
        table, themes = _matrix(scenarios, engines)
        body.append(f"<h2>Conformance matrix: {len({t['scenario'] for t in scenarios})} scenarios x engine</h2>{table}")
    if others:
        table, files = _others(others)
        themes += files
        body.append(f"<h2>Other traced tests</h2>{table}")
    if data.get("coverage"):
        from pytest_fcp.report.coverage import coverage_html

        body.append(coverage_html(data["coverage"]))
    bar = (
        '<div class="bar"><label>engine <select id="f-engine">'
        + _options(((e, e) for e in engines), "all engines")
        + '</select></label><label>theme <select id="f-theme">'
        + _options(((t, t) for t in themes), "all themes")
        + '</select></label><label>outcome <select id="f-kind">'
        + _options([*CATEGORIES, ("bad", "anything but conforming")], "all outcomes")
        + '</select></label><button id="open-bad" type="button">open all non-conforming</button> '
        '<span id="shown" class="meta"></span> <span class="meta">click a row to see its decision flow</span></div>'
    )
    return _page("pytest-fcp report", head, bar + "".join(body) + f"<script>{JS}</script>")


def render_single(test: Mapping[str, Any], title: str, lines: Sequence[str] = ()) -> str:
    """One fetch's decision flow as a page (``fcp diagnose --html``): header lines, the flow, its days."""
    meta = "".join(f'<p class="meta">{escape(line)}</p>' for line in lines)
    return _page(title, f"<h1>{escape(title)}</h1>{meta}{LEGEND}", _detail(test))
