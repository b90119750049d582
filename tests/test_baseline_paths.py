"""A baseline written by a scenario run holds no temporary path: an engine whose failures name its cache files
gets the same baseline whatever cache directory its world had, so a second run compares equal."""

from __future__ import annotations

import textwrap

import pytest

pytest_plugins = ["pytester"]

ENGINE = '''
"""An engine that fails naming the cache file it could not open (the path is under the run's temp dir)."""

import pathlib


class DataSourceError(Exception):
    pass


class PathEngine:
    def __init__(self, cache_dir):
        self.root = pathlib.Path(cache_dir)

    def cache_file(self, symbol, market, interval, day):
        return self.root / market / f"{symbol}-{interval}" / f"{day.isoformat()}.arrow"

    def write_cache(self, symbol, market, interval, day, table):
        raise NotImplementedError

    def fetch(self, symbol, market, interval, start, end):
        path = self.cache_file(symbol, market, interval, start.date())
        raise DataSourceError(f"cannot open {path}")


def create(cache_dir):
    return PathEngine(cache_dir)
'''

SCENARIO = """
[defaults]
now = "2024-01-10T12:00:00Z"

[[scenario]]
name = "one_day"
description = "One old day, every source up: the engine fails naming its cache file."
request = { start = "2024-01-03", end = "2024-01-04" }
[scenario.expect]
outcome = "data"
"""


def test_baselines_mask_the_cache_dir_and_temporary_paths(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(path_engine=textwrap.dedent(ENGINE))
    (pytester.path / "mine").mkdir()
    (pytester.path / "mine" / "mine.toml").write_text(SCENARIO)
    base = pytester.path / "base"
    args = [
        "--fcp-scenarios",
        "-p",
        "no:cacheprovider",
        "-W",
        "ignore",
        "-n",
        "0",
        f"--fcp-scenarios-dir={pytester.path / 'mine'}",
        "--fcp-no-bundled",
        f"--fcp-baseline-dir={base}",
        "--fcp-engine=path_engine:create",
    ]
    pytester.runpytest(*args, "--fcp-update-baselines").assert_outcomes(passed=1)
    text = (base / "path_engine_create.toml").read_text()
    assert "cannot open <cache>/spot/BTCUSDT-1h/2024-01-03.arrow)" in text, text
    assert str(pytester.path) not in text and "pytest-of" not in text and "/tmp" not in text, text
    result = pytester.runpytest(*args)  # a fresh world: another cache directory, the same baseline
    result.assert_outcomes(xfailed=1)
    assert (base / "path_engine_create.toml").read_text() == text
