"""``expect.requests`` counts every HTTP request to a source, a Vision day's ``.CHECKSUM`` file included."""

from __future__ import annotations

import pathlib

import pytest

from pytest_fcp.scenarios.loader import parse_file
from pytest_fcp.scenarios.runner import run_scenario

SCENARIO = """
[[scenario]]
name = "two_vision_days"
description = "Two old days, nothing cached: each comes from Vision with its checksum."
now = "2024-01-10T12:00:00Z"
request = {{ start = "2024-01-02", end = "2024-01-04" }}
[scenario.expect]
requests = {{ vision = {vision}, rest = 0 }}
"""


@pytest.mark.parametrize(("vision", "broken"), [("4", False), ("2", True), ("'>=3'", False)])
def test_vision_requests_count_the_checksum_files(tmp_path: pathlib.Path, vision: str, broken: bool) -> None:
    (scenario,) = parse_file(SCENARIO.format(vision=vision), file="t.toml", theme="t")
    run = run_scenario(scenario, "reference", tmp_path / "cache")
    urls = [str(e.data["url"]) for e in run.world.trace.requests("vision")]
    assert len(urls) == 4 and sum(u.endswith(".CHECKSUM") for u in urls) == 2
    verdicts = [str(v) for v in run.verdicts if v.check == "expect.requests"]
    assert verdicts == (["[expect.requests] 4 vision request(s); expected 2"] if broken else [])
