"""Render a :class:`~pytest_fcp.scenarios.model.Scenario` as a catalog TOML file.

The output is a file in the catalog's own format (``scenarios/*.toml``): loading it back with
:func:`pytest_fcp.scenarios.loader.load_file` gives an equal scenario (apart from ``file`` and ``theme``,
which come from the path). ``pytest --fcp-fuzz --fcp-fuzz-save DIR`` writes shrunk counterexamples this way,
so a fuzz finding becomes a regression scenario: ``pytest --fcp-scenarios --fcp-scenarios-dir DIR``.
"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_fcp.faults import Fault
from pytest_fcp.scenarios.model import Expect, Request, Scenario

__all__ = ["render_scenario", "save_scenario", "toml_value"]


def _when(moment: dt.datetime) -> str:
    text = moment.astimezone(dt.UTC).isoformat()
    return text.replace("+00:00", "Z")


def toml_value(value: Any) -> str:
    """A TOML inline value for the types a scenario uses (str, bool, number, date, datetime, list, dict)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return json.dumps(_when(value))
    if isinstance(value, dt.date):
        return json.dumps(value.isoformat())
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple, frozenset, set)):
        items = sorted(value) if isinstance(value, (frozenset, set)) else value
        return "[" + ", ".join(toml_value(v) for v in items) + "]"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as TOML")


def _key(name: str) -> str:
    bare = name.replace("_", "").replace("-", "").isalnum() and name.isascii()
    return name if bare else json.dumps(name)


def _fault(item: Fault) -> str | dict[str, Any]:
    data = item.to_dict()
    return data["id"] if len(data) == 1 else data


def _request(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {"start": request.start, "end": request.end}
    for name in ("symbol", "market", "interval", "at"):
        if getattr(request, name) is not None:
            out[name] = getattr(request, name)
    return out


def _expect_lines(expect: Expect) -> list[str]:
    lines: list[str] = []
    if expect.outcome:
        lines.append(f"outcome = {toml_value(list(expect.outcome))}")
    if expect.sources:
        lines.append(f"sources = {toml_value({k: sorted(v) for k, v in expect.sources.items()})}")
    if expect.requests:
        lines.append(f"requests = {toml_value(dict(expect.requests))}")
    if expect.cache_after:
        lines.append(f"cache_after = {toml_value({k: sorted(v) for k, v in expect.cache_after.items()})}")
    if expect.skip_checks:
        lines.append(f"skip_checks = {toml_value(sorted(expect.skip_checks))}")
    return lines


def scenario_lines(scenario: Scenario) -> list[str]:
    """The ``[[scenario]]`` table of ``scenario`` (every field written out, defaults included)."""
    lines = [
        "[[scenario]]",
        f"name = {toml_value(scenario.name)}",
        f"description = {toml_value(scenario.description)}",
        f"now = {toml_value(scenario.now)}",
        f"market = {toml_value(scenario.market)}",
        f"symbol = {toml_value(scenario.symbol)}",
        f"interval = {toml_value(scenario.interval)}",
        f"truth = {toml_value(scenario.truth)}",
        f"publish_delay_hours = {toml_value(float(scenario.publish_delay_hours))}",
    ]
    if scenario.faults:
        lines.append(f"faults = {toml_value([_fault(f) for f in scenario.faults])}")
    if scenario.cached:
        lines.append(f"cached = {toml_value(list(scenario.cached))}")
    if scenario.local_tz:
        lines.append(f"local_tz = {toml_value(scenario.local_tz)}")
    if scenario.env:
        lines.append(f"env = {toml_value(dict(scenario.env))}")
    reqs = [_request(r) for r in scenario.requests]
    lines.append(f"request = {toml_value(reqs[0] if len(reqs) == 1 else reqs)}")
    expect = _expect_lines(scenario.expect)
    if expect:
        lines += ["[scenario.expect]", *expect]
    return lines


def render_scenario(scenario: Scenario | Iterable[Scenario], *, header: str = "") -> str:
    """A complete scenario file holding ``scenario`` (or several); ``header`` becomes ``#`` comment lines."""
    items = [scenario] if isinstance(scenario, Scenario) else list(scenario)
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    description = "pytest-fcp fuzz findings (shrunk counterexamples)"
    out.append(f"description = {toml_value(description)}")
    for item in items:
        out += ["", *scenario_lines(item)]
    return "\n".join(out) + "\n"


def save_scenario(scenario: Scenario, directory: pathlib.Path | str, *, header: str = "") -> pathlib.Path:
    """Write ``scenario`` to ``directory/<name>.toml`` (created if needed) and return the path."""
    folder = pathlib.Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scenario.name}.toml"
    path.write_text(render_scenario(scenario, header=header), encoding="utf-8")
    return path
