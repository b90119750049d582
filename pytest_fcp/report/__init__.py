"""The HTML report: a run's conformance matrix and every test's decision flow, as one self-contained page.

Pure functions from plain data to a string (standard library only): :func:`render_report` for a pytest run
(``--fcp-html``), :func:`render_single` for one fetch (``fcp diagnose --html``), :func:`flow_svg` for the
flow alone.
"""

from __future__ import annotations

from pytest_fcp.report.flow import flow_svg, status_class
from pytest_fcp.report.page import (
    CATEGORIES,
    MAX_EVENTS,
    MAX_LOGS,
    cap_events,
    category,
    event_totals,
    render_report,
    render_single,
)

__all__ = [
    "CATEGORIES",
    "MAX_EVENTS",
    "MAX_LOGS",
    "cap_events",
    "category",
    "event_totals",
    "flow_svg",
    "render_report",
    "render_single",
    "status_class",
]
