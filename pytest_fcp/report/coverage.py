"""The coverage map in the HTML report: one table per projection (rows x columns), each reachable cell
coloured exercised (with its test count) or empty; unreachable cells are blank. From plain data
(:meth:`pytest_fcp.coverage.CoverageMap.to_data`)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

__all__ = ["COVERAGE_CSS", "coverage_html"]

#: The map's styles (scoped to ``.cov``, so the matrix's filters never touch it).
COVERAGE_CSS = (
    "table.cov{border-collapse:collapse;margin:6px 0 14px}table.cov th,table.cov td{border:1px solid #d9e2ec;"
    "padding:1px 5px;font-size:12px;white-space:nowrap;text-align:center}table.cov th{background:#f0f4f8}"
    "table.cov td.hit{background:#c6f7d0}table.cov td.empty{background:#ffd6d9}table.cov td.na{background:#fff}"
    "details.cov-p summary{cursor:pointer;font-weight:600}"
)


def _table(projection: Mapping[str, Any]) -> str:
    cells = {(c["a"], c["b"]): int(c["tests"]) for c in projection["cells"]}
    columns = list(projection["column_values"])
    head = "".join(f"<th>{escape(str(c))}</th>" for c in columns)
    rows = []
    for row in projection["row_values"]:
        tds = []
        for column in columns:
            tests = cells.get((row, column))
            if tests is None:
                tds.append('<td class="na" title="not reachable"></td>')
            elif tests:
                tds.append(f'<td class="hit" title="{tests} test(s)">{tests}</td>')
            else:
                tds.append('<td class="empty" title="empty">0</td>')
        rows.append(f"<tr><th>{escape(str(row))}</th>{''.join(tds)}</tr>")
    corner = f"{escape(projection['rows'])} \\ {escape(projection['columns'])}"
    return f'<table class="cov"><tr><th>{corner}</th>{head}</tr>{"".join(rows)}</table>'


def coverage_html(data: Mapping[str, Any]) -> str:
    """The map's section: a summary line, then per projection its counts and its table (open when not full)."""
    parts = [
        f"<h2>Coverage map: {int(data['exercised'])} of {int(data['reachable'])} reachable cells exercised</h2>"
        f'<p class="meta">green: exercised (number of tests), red: reachable but empty, blank: not reachable'
        f"{' · ' + str(int(data['tests'])) + ' test(s) recorded cells' if 'tests' in data else ''}</p>"
    ]
    for projection in data["projections"]:
        full = projection["exercised"] == projection["reachable"]
        summary = f"{escape(projection['name'])}: {projection['exercised']} of {projection['reachable']}"
        parts.append(
            f'<details class="cov-p" id="cov-{escape(projection["name"].replace(" ", "-"))}"'
            f"{'' if full else ' open'}><summary>{summary}</summary>{_table(projection)}</details>"
        )
    return f'<section id="coverage"><style>{COVERAGE_CSS}</style>{"".join(parts)}</section>'
