"""The scenario catalog, its loader's errors, user scenario directories and per-engine baselines."""

from __future__ import annotations

import pathlib
import textwrap

import pytest

from pytest_fcp.scenarios import ScenarioError, catalog_dir, load_dir
from pytest_fcp.scenarios.loader import parse_file
from pytest_fcp.scenarios.runner import assert_scenario, run_scenario
from tests.conftest import ALT

CATALOG = load_dir(catalog_dir())

GOOD = """
[defaults]
now = "2024-01-10T12:00:00Z"

[[scenario]]
name = "my_403"
description = "Vision blocked: REST serves the old day."
faults = ["vision.http403"]
request = { start = "2024-01-03", end = "2024-01-04" }
[scenario.expect]
outcome = "data"
sources = { default = "rest" }
"""


def test_catalog_size_and_coverage():
    from pytest_fcp.faults import FAULTS

    assert len(CATALOG) >= 60
    used = {f.id for s in CATALOG for f in s.faults}
    assert set(FAULTS) <= used, f"faults without a scenario: {sorted(set(FAULTS) - used)}"
    assert {s.market for s in CATALOG} == {"spot", "futures_usdt", "futures_coin"}
    assert {"1m", "1h", "1d"} <= {s.interval for s in CATALOG}
    assert any(len(s.faults) >= 2 for s in CATALOG) and any(s.cached for s in CATALOG)
    assert any(f.attempts.recovers for s in CATALOG for f in s.faults)


@pytest.mark.parametrize("engine", ["reference", ALT], ids=["reference", "alt"])
@pytest.mark.parametrize("scenario", CATALOG, ids=[s.id for s in CATALOG])
def test_catalog_holds_on_every_correct_engine(scenario, engine, tmp_path):
    """The reference engine and a differently built correct engine keep every scenario."""
    assert_scenario(scenario, engine, tmp_path / "cache", seed=3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[scenario]\nname=", "not valid TOML"),
        (GOOD.replace('name = "my_403"', 'name = "my_403"\ncolour = "red"'), "my_403 [colour]: unknown key"),
        (
            GOOD.replace('"vision.http403"', '"vision.http4003"'),
            "my_403 [faults[0]]: unknown fault id 'vision.http4003'",
        ),
        (
            GOOD.replace('faults = ["vision.http403"]', 'faults = "vision.http403"'),
            "[faults]: expected a list",
        ),
        (
            GOOD.replace('end = "2024-01-04"', 'end = "2024-01-02"'),
            "[request]: start 2024-01-03T00:00:00+00:00 is after end",
        ),
        (
            GOOD.replace('end = "2024-01-04"', 'end = "2024-02-30"'),
            "[request.end]: '2024-02-30' is not a date",
        ),
        (
            GOOD + GOOD.split("[defaults]")[1].split('now = "2024-01-10T12:00:00Z"')[1],
            "my_403 [name]: duplicate scenario name",
        ),
        (GOOD.replace('outcome = "data"', 'outcome = "success"'), "[expect.outcome]: unknown 'success'"),
        (
            GOOD.replace('now = "2024-01-10T12:00:00Z"', 'now = "2024-01-10T12:00:00"'),
            "[now]: 2024-01-10T12:00:00 has no timezone",
        ),
        (
            GOOD.replace("2024-01-10T12:00:00Z", "2024-01-06T00:30:00Z"),
            "within an hour of the 48 h freshness edge",
        ),
        (
            GOOD.replace('market = "spot"', "").replace('name = "my_403"', 'name = "my_403"\nmarket = "margin"'),
            "[market]: unknown market 'margin'",
        ),
    ],
)
def test_malformed_scenarios_name_file_scenario_and_field(text, message):
    with pytest.raises(ScenarioError) as info:
        parse_file(text, file="scenarios/mine.toml", theme="mine")
    assert str(info.value).startswith("scenarios/mine.toml")
    assert message in str(info.value)


def test_python_scenarios_use_the_same_model(tmp_path):
    import datetime as dt

    from pytest_fcp import fault
    from pytest_fcp.scenarios import Expect, Request, Scenario

    scenario = Scenario(
        name="py_403",
        description="written in Python",
        now=dt.datetime(2024, 1, 10, 12, tzinfo=dt.UTC),
        requests=(Request(dt.datetime(2024, 1, 3, tzinfo=dt.UTC), dt.datetime(2024, 1, 4, tzinfo=dt.UTC)),),
        faults=(fault("vision.http403"), fault("rest.http500")),
        expect=Expect(outcome=("DataSourceError",)),
    )
    run = run_scenario(scenario, "reference", tmp_path / "c")
    assert run.passed, run.summary()
    broken = run_scenario(
        Scenario(**{**scenario.__dict__, "expect": Expect(outcome=("data",))}), "reference", tmp_path / "d"
    )
    assert [v.check for v in broken.verdicts] == ["expect.outcome"]


def _user_dir(pytester: pytest.Pytester, text: str = GOOD) -> pathlib.Path:
    directory = pytester.path / "my_scenarios"
    directory.mkdir()
    (directory / "mine.toml").write_text(textwrap.dedent(text))
    return directory


def test_user_scenario_directory(pytester: pytest.Pytester) -> None:
    directory = _user_dir(pytester)
    result = pytester.runpytest(
        "--fcp-scenarios",
        f"--fcp-scenarios-dir={directory}",
        "--fcp-no-bundled",
        "--fcp-engine=reference",
        "-v",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*my_scenarios/mine.toml::my_403?reference? PASSED*",
            "*FCP conformance*",
            "reference: 1 conforming (1 scenarios)",
            "  mine *1 conforming*",
        ]
    )


def test_malformed_file_is_a_collection_error(pytester: pytest.Pytester) -> None:
    directory = _user_dir(pytester, GOOD.replace('"vision.http403"', '"vision.http4003"'))
    result = pytester.runpytest(
        "--fcp-scenarios", f"--fcp-scenarios-dir={directory}", "--fcp-no-bundled", "--fcp-engine=reference"
    )
    assert result.ret != 0
    result.stdout.fnmatch_lines(
        [
            "*my_scenarios/mine.toml::my_403 ?faults?0??: unknown fault id 'vision.http4003'*",
            "*ERROR my_scenarios/mine.toml*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_baseline_known_failure_update_and_better(pytester: pytest.Pytester) -> None:
    failing = GOOD.replace('sources = { default = "rest" }', 'sources = { default = "vision" }')
    directory = _user_dir(pytester, failing)
    baselines = pytester.path / "base"
    base = [
        "--fcp-scenarios",
        f"--fcp-scenarios-dir={directory}",
        "--fcp-no-bundled",
        "--fcp-engine=reference",
        f"--fcp-baseline-dir={baselines}",
        "-rxX",
    ]
    result = pytester.runpytest(*base[:-2], "-rxX")  # no baseline yet: the contract alone
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*FAIL ?expect.sources? 2024-01-03: rows from rest; expected vision*",
            "*path: cache miss 1d*",
            "reference: 0 conforming, 1 failing, not in the baseline (1 scenarios)",
        ]
    )
    result = pytester.runpytest(*base, "--fcp-update-baselines")
    result.stdout.fnmatch_lines(
        [f"fcp: baseline written to {baselines / 'reference.toml'}: 1 added, 0 changed, 0 unchanged, 0 kept (not run)"]
    )
    written = (baselines / "reference.toml").read_text()
    assert '"expect.sources: 2024-01-03: rows from rest; expected vision"' in written
    result = pytester.runpytest(*base)
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["reference: 0 conforming, 1 known failures unchanged (1 scenarios)"])
    result.stdout.fnmatch_lines(["*known failure of reference, unchanged: ?expect.sources? 2024-01-03*"])
    (directory / "mine.toml").write_text(GOOD)  # the engine now conforms: better, and strict about it
    result = pytester.runpytest(*base)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*mine/my_403 on reference behaves better than its baseline: update the baseline*",
            "*no longer failing ?expect.sources? 2024-01-03: rows from rest; expected vision*",
            "  BETTER mine/my_403: no longer failing*",
        ]
    )


def test_scenarios_run_under_xdist(pytester: pytest.Pytester) -> None:
    directory = _user_dir(pytester)
    result = pytester.runpytest(
        "--fcp-scenarios",
        f"--fcp-scenarios-dir={directory}",
        "--fcp-engine=reference",
        "-p",
        "xdist",
        "-n",
        "2",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == len(CATALOG) + 1, outcomes
    result.stdout.fnmatch_lines([f"reference: {len(CATALOG) + 1} conforming ({len(CATALOG) + 1} scenarios)"])


def test_two_scenario_dirs_with_one_id_are_one_collection_error(pytester: pytest.Pytester) -> None:
    first = _user_dir(pytester)
    second = pytester.path / "more_scenarios"
    second.mkdir()
    (second / "mine.toml").write_text(textwrap.dedent(GOOD))
    result = pytester.runpytest(
        "--fcp-scenarios",
        f"--fcp-scenarios-dir={first}",
        f"--fcp-scenarios-dir={second}",
        "--fcp-no-bundled",
        "--fcp-engine=reference",
    )
    assert result.ret != 0
    out = result.stdout.str()
    assert out.count("ERROR collecting") == 1 and "Traceback" not in out
    assert "mine/my_403" in out and "my_scenarios/mine.toml" in out and "more_scenarios/mine.toml" in out
