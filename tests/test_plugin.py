"""The plugin as users meet it: marker, fixtures, trace sections, replay line, JSONL, JUnit, xdist."""

from __future__ import annotations

import json
import pathlib

import pytest

pytest_plugins = ["pytester"]

FAILING = """
import datetime as dt
import pytest

@pytest.mark.fcp(faults=["vision.http403"], engines=["reference"])
def test_fails(fcp_world, fcp_engine, fcp_trace):
    r = fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 4, tzinfo=dt.UTC))
    assert r.rows_by_source() == {"vision": 48}

@pytest.mark.fcp(engines=["reference"])
def test_passes(fcp_world, fcp_engine, fcp_trace):
    r = fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
    fcp_trace.assert_path("cache miss 1d -> vision 200 x2 -> 24 rows (vision 24)")
"""


def test_marker_signature_is_listed(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*@pytest.mark.fcp(*, faults=(), now=None, market='spot'*"])


def test_header_shows_seed_and_engines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--fcp-seed=1234", "--fcp-engine=reference")
    result.stdout.fnmatch_lines(["fcp: seed=1234 (replay with --fcp-seed=1234), engines=reference"])


def test_failure_shows_trace_section_and_replay_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    result = pytester.runpytest("--fcp-seed=7", "-rP")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- fcp decision trace -*",
            "path: cache miss 2d -> vision 403 x2 -> rest 200 x1 -> 48 rows (rest 48)",
            "*fault*vision.http403*",
            "*- fcp replay -*",
            "*pytest --fcp-seed=7 *test_failure_shows_trace_section_and_replay_line.py::test_fails?reference?*",
        ]
    )
    # -rP: the passing test's trace is shown too
    result.stdout.fnmatch_lines(
        [
            "*_ test_passes?reference? _*",
            "*fcp decision trace*",
            "path: cache miss 1d -> vision 200 x2 -> 24 rows (vision 24)",
        ]
    )


def test_assert_path_gives_a_diff(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import datetime as dt, pytest
        @pytest.mark.fcp(engines=["reference"])
        def test_p(fcp_world, fcp_engine, fcp_trace):
            fcp_world.fetch(dt.datetime(2024, 1, 2, tzinfo=dt.UTC), dt.datetime(2024, 1, 3, tzinfo=dt.UTC))
            fcp_trace.assert_path("cache miss 1d -> rest 200 x* -> 24 rows (rest 24)")
    """)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*decision path differs*", "*- rest 200 x[*]*", "*+ vision 200 x2*"])


def test_misuse_fails_at_setup_with_a_clear_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        @pytest.mark.fcp(faults=["vision.http4033"], engines=["reference"])
        def test_a(fcp_world): pass
        @pytest.mark.fcp(market="margin", engines=["reference"])
        def test_b(fcp_world): pass
        @pytest.mark.fcp(fault=["vision.http403"], engines=["reference"])
        def test_c(fcp_world): pass
        @pytest.mark.fcp(faults=[{"x": 1}], engines=["reference"])
        def test_d(fcp_world): pass
    """)
    result = pytester.runpytest()
    result.assert_outcomes(errors=4)
    result.stdout.fnmatch_lines(
        [
            "*unknown fault id 'vision.http4033'. Did you mean 'vision.http403'*",
            "*unknown market 'margin'; expected one of spot, futures_usdt, futures_coin*",
            "*unknown argument(s) fault; allowed: faults, now, market*",
            "*has no 'id'*",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_unknown_engine_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_e(fcp_engine): pass")
    result = pytester.runpytest("--fcp-engine=nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fcp-engine nope: no such engine; registered engines are ckvd, reference*"])


def test_unserved_url_fails_the_test_even_when_the_engine_swallows_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import httpx
        def test_s(fcp_world):
            try:
                httpx.get("https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT")
            except Exception:
                pass  # an engine that hides the failure
    """)
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*left the simulated world*", "*GET https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT*"]
    )


def _jsonl(directory: pathlib.Path) -> list[dict]:
    files = list(directory.glob("fcp-trace-*.jsonl"))
    assert len(files) == 1, files
    return [json.loads(line) for line in files[0].read_text().splitlines()]


@pytest.mark.parametrize("workers", [None, "2"])
def test_jsonl_traces_junit_and_step_summary(pytester: pytest.Pytester, workers: str | None, monkeypatch) -> None:
    pytester.makepyfile(FAILING)
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    args = ["--fcp-seed=11", "--fcp-trace-dir=traces", "--junitxml=junit.xml"]
    if workers:
        args += ["-n", workers, "-p", "xdist"]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, failed=1)
    lines = _jsonl(pytester.path / "traces")
    header, tests = lines[0], lines[1:]
    assert header["type"] == "header" and header["seed"] == 11 and header["versions"]["pytest-fcp"]
    assert sorted(t["nodeid"].split("::")[1] for t in tests) == [
        "test_fails[reference]",
        "test_passes[reference]",
    ]
    by_name = {t["nodeid"].split("::")[1]: t for t in tests}
    assert by_name["test_fails[reference]"]["outcome"] == "failed"
    assert by_name["test_fails[reference]"]["path"].startswith("cache miss 2d -> vision 403 x2")
    assert [e["index"] for e in by_name["test_passes[reference]"]["events"]] == list(
        range(len(by_name["test_passes[reference]"]["events"]))
    )
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="fcp.path" value="cache miss 1d -&gt; vision 200 x2 -&gt; 24 rows (vision 24)"' in junit
    md = summary.read_text()
    assert "| failed |" in md and "test_fails[reference]" in md


def test_same_seed_same_trace(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FAILING)
    runs = []
    for name in ("a", "b"):
        pytester.runpytest("--fcp-seed=5", f"--fcp-trace-dir={name}")
        tests = _jsonl(pytester.path / name)[1:]
        runs.append(
            [[{k: v for k, v in e.items() if k not in ("real_ms", "took_ms")} for e in t["events"]] for t in tests]
        )
    assert runs[0] == runs[1]
    pytester.runpytest("--fcp-seed=6", "--fcp-trace-dir=c")
    other = [
        [{k: v for k, v in e.items() if k not in ("real_ms", "took_ms")} for e in t["events"]]
        for t in _jsonl(pytester.path / "c")[1:]
    ]
    assert [len(t) for t in other] == [len(t) for t in runs[0]]  # same decisions with another truth


def test_engine_with_missing_requirement_is_skipped_or_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        needy="""
def create(cache_dir):
    raise AssertionError("never called")
create.requires = ("no_such_module_fcp",)
""",
        test_e="def test_e(fcp_engine): pass",
    )
    pytester.syspathinsert()
    result = pytester.runpytest("--fcp-engine=needy:create", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--fcp-engine needy:create: cannot be loaded: it needs no_such_module_fcp*"])


@pytest.mark.parametrize(
    ("modules", "absent"),
    [
        pytest.param(
            "pytest_fcp, pytest_fcp.plugin, pytest_fcp.plugin.reporting, pytest_fcp.plugin.fuzz_items, "
            "pytest_fcp.plugin.xdist",
            ("moto", "pyarrow", "respx", "boto3", "time_machine", "numpy", "hypothesis"),
            id="plugin",
        ),
        pytest.param(  # what the controller of an xdist run imports to collect the catalog
            "pytest_fcp.scenarios, pytest_fcp.plugin.items, pytest_fcp.contract, pytest_fcp.world",
            ("moto", "respx", "boto3", "time_machine", "httpx"),
            id="collection",
        ),
        pytest.param(  # what an xdist controller imports to check the options, scenario files and baselines
            "pytest_fcp.plugin.settings, pytest_fcp.plugin.items, pytest_fcp.plugin.conformance, "
            "pytest_fcp.plugin.baselines, pytest_fcp.plugin.lean, pytest_fcp.scenarios",
            ("moto", "respx", "boto3", "time_machine", "httpx", "numpy", "pyarrow", "hypothesis"),
            id="controller",
        ),
    ],
)
def test_imports_stay_light(modules: str, absent: tuple[str, ...]) -> None:
    import subprocess
    import sys

    code = f"import sys, {modules}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_log_level_option_reaches_the_world_and_is_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fcp(engines=["reference"])
        def test_level(fcp_world, fcp_engine):
            assert fcp_world.log_level == "DEBUG"  # the option wins over the ini's WARNING
        """
    )
    pytester.makeini("[pytest]\nfcp_log_level = WARNING\n")
    result = pytester.runpytest("-p", "no:xdist", "--fcp-log-level=debug")
    result.assert_outcomes(passed=1)
    bad = pytester.runpytest("-p", "no:xdist", "--fcp-log-level=loud")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--fcp-log-level 'loud' is not a log level; use one of TRACE, DEBUG, INFO*"])


def test_log_level_ini_is_the_default(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.fcp(engines=["reference"])
        def test_level(fcp_world, fcp_engine):
            assert fcp_world.log_level == "WARNING"
        """
    )
    pytester.makeini("[pytest]\nfcp_log_level = warning\n")
    pytester.runpytest("-p", "no:xdist").assert_outcomes(passed=1)


TINY_SCENARIOS = """
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

[[scenario]]
name = "wrong_source"
description = "Expects Vision where REST serves: a known failure (recorded in the baseline)."
faults = ["vision.http403"]
request = { start = "2024-01-03", end = "2024-01-04" }
[scenario.expect]
outcome = "data"
sources = { default = "vision" }
"""

SEED_PROBE = """
from pytest_fcp.plugin import settings


def pytest_sessionstart(session):
    name = getattr(session.config, "workerinput", {}).get("workerid", "controller")
    (session.config.rootpath / f"seed-{name}.txt").write_text(str(settings(session.config).seed))
"""


def test_scenarios_run_the_same_with_and_without_xdist(pytester: pytest.Pytester) -> None:
    directory = pytester.path / "tiny"
    directory.mkdir()
    (directory / "mine.toml").write_text(TINY_SCENARIOS)
    baselines = pytester.path / "base"
    pytester.makeconftest(SEED_PROBE)
    base = ["-p", "xdist", "--fcp-scenarios", f"--fcp-scenarios-dir={directory}", "--fcp-no-bundled"]
    base += ["--fcp-engine=reference", f"--fcp-baseline-dir={baselines}"]
    pytester.runpytest(*base, "--fcp-update-baselines").assert_outcomes(passed=2)
    summaries = {}
    for workers in ("0", "2"):
        for old in pytester.path.glob("seed-*.txt"):
            old.unlink()
        result = pytester.runpytest(*base, "-n", workers)
        result.assert_outcomes(passed=1, xfailed=1)
        out = result.stdout.str()
        assert out.count("FCP conformance") == 1, out  # the controller's summary only
        summary = [line for line in out[out.index("FCP conformance") :].splitlines() if line.strip()]
        summaries[workers] = summary[1:3]
        seed = out.split("fcp: seed=", 1)[1].split(" ", 1)[0]  # no --fcp-seed: a random one, handed to workers
        seeds = {p.name: p.read_text() for p in pytester.path.glob("seed-*.txt")}
        assert len(seeds) == (1 if workers == "0" else 3), seeds
        assert set(seeds.values()) == {seed}, seeds
    assert summaries["0"] == summaries["2"]
    assert summaries["0"][0] == "reference: 1 conforming, 1 known failures unchanged (2 scenarios)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fcp-log-level=loud"], "--fcp-log-level 'loud' is not a log level; use one of TRACE, DEBUG, INFO*"),
        (["--fcp-now=yesterday"], "--fcp-now: 'yesterday' is not an ISO 8601 time like 2024-01-10T12:00:00Z"),
        (["--fcp-scenarios", "--fcp-scenarios-dir=nowhere"], "--fcp-scenarios-dir nowhere: no such directory"),
        (["--fcp-scenarios", "--fcp-scenarios-dir=afile"], "--fcp-scenarios-dir afile: is a file, not a directory"),
        (["--fcp-engine", "os:getcwd"], "--fcp-engine os:getcwd: <built-in function getcwd> is not an engine factory*"),
        (["--fcp-engine", "nosuch"], "--fcp-engine nosuch: no such engine; registered engines are ckvd, reference*"),
        (["--fcp-engine=os:nosuch"], "--fcp-engine os:nosuch: module 'os' has no attribute 'nosuch'"),
        (["--fcp-engine=nosuchmod_fcp:create"], "--fcp-engine nosuchmod_fcp:create: cannot import module*"),
        (["--fcp-trace-dir=afile"], "--fcp-trace-dir afile: is a file, not a directory"),
        (["--fcp-trace-dir=afile/sub"], "--fcp-trace-dir afile/sub: cannot write there (*"),
        (["--fcp-fuzz", "--fcp-fuzz-examples", "-5"], "--fcp-fuzz-examples -5: must be a whole number of at least*"),
        (["--fcp-fuzz", "--fcp-fuzz-examples=0"], "--fcp-fuzz-examples 0: must be a whole number of at least 1"),
        (["--fcp-fuzz", "--fcp-fuzz-budget", "-1"], "--fcp-fuzz-budget -1: must be a number of seconds, not negative"),
        (["--fcp-seed=abc"], "--fcp-seed abc: not a whole number; give an integer, e.g. --fcp-seed=1234"),
        (["--fcp-seed", "1.5"], "--fcp-seed 1.5: not a whole number*"),
        (["--fcp-fuzz", "--fcp-fuzz-examples=many"], "--fcp-fuzz-examples many: must be a whole number of at least 1"),
        (["--fcp-fuzz", "--fcp-fuzz-budget=soon"], "--fcp-fuzz-budget soon: must be a number of seconds"),
        (["--fcp-fuzz", "--fcp-fuzz-budget=nan"], "--fcp-fuzz-budget nan: must be a number of seconds"),
        (["--fcp-fuzz", "--fcp-fuzz-profile=fast"], "--fcp-fuzz-profile fast: no such profile; use one of ci, deep"),
        (["-o", "fcp_lean=maybe"], "ini fcp_lean = 'maybe': must be true or false"),
        (["--fcp-scenarios-dir=."], "--fcp-scenarios-dir works only with --fcp-scenarios: add --fcp-scenarios (*"),
        (["--fcp-no-bundled"], "--fcp-no-bundled works only with --fcp-scenarios: add --fcp-scenarios (*"),
        (["--fcp-baseline-dir=."], "--fcp-baseline-dir works only with --fcp-scenarios: add --fcp-scenarios (*"),
        (["--fcp-fuzz-examples=3"], "--fcp-fuzz-examples works only with --fcp-fuzz: add --fcp-fuzz (*"),
        (["--fcp-fuzz-budget=3"], "--fcp-fuzz-budget works only with --fcp-fuzz: add --fcp-fuzz (*"),
        (["--fcp-fuzz-save=out"], "--fcp-fuzz-save works only with --fcp-fuzz: add --fcp-fuzz (*"),
        (["--fcp-fuzz-profile=ci"], "--fcp-fuzz-profile works only with --fcp-fuzz: add --fcp-fuzz (*"),
        (["--fcp-engine="], "--fcp-engine: no engine named; give a registered engine (e.g. reference) or *"),
    ],
    ids=[
        "log-level",
        "now",
        "scenarios-dir",
        "scenarios-dir-file",
        "engine-not-factory",
        "engine-unknown",
        "engine-no-attribute",
        "engine-no-module",
        "trace-dir-file",
        "trace-dir-unwritable",
        "fuzz-examples",
        "fuzz-examples-zero",
        "fuzz-budget",
        "seed-text",
        "seed-fraction",
        "fuzz-examples-text",
        "fuzz-budget-text",
        "fuzz-budget-nan",
        "fuzz-profile",
        "lean-ini",
        "scenarios-dir-alone",
        "no-bundled-alone",
        "baseline-dir-alone",
        "fuzz-examples-alone",
        "fuzz-budget-alone",
        "fuzz-save-alone",
        "fuzz-profile-alone",
        "engine-empty",
    ],
)
def test_bad_settings_are_one_usage_error_line_at_start_up(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    pytester.makepyfile("def test_never_runs(): raise AssertionError")
    (pytester.path / "afile").write_text("not a directory")
    result = pytester.runpytest("-p", "xdist", "-n", "2", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert len([line for line in result.stderr.lines if line.strip()]) == 1, result.stderr.str()
    result.stderr.fnmatch_lines([f"ERROR: pytest-fcp: {message}"])
    assert "test_never_runs" not in result.stdout.str() and "Traceback" not in result.stderr.str()


def _import_graph() -> dict[str, set[str]]:
    """pytest_fcp's modules -> the pytest_fcp modules (and 'pytest') each imports at run time (in any function)."""
    import ast

    def runtime_nodes(tree: ast.AST) -> list[ast.AST]:  # all nodes but those under ``if TYPE_CHECKING:``
        out: list[ast.AST] = []
        todo = [tree]
        while todo:
            node = todo.pop()
            out.append(node)
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                todo += node.orelse
                continue
            todo += ast.iter_child_nodes(node)
        return out

    root = pathlib.Path(__file__).resolve().parent.parent / "pytest_fcp"
    paths = {
        ".".join(p.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in root.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        edges: set[str] = set()
        for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(paths)
                edges |= subs or {node.module}
            elif isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
        graph[module] = {e for e in edges if e in paths or e == "pytest"}
    return graph


def test_no_import_cycles_and_nothing_below_imports_the_plugin() -> None:
    graph = _import_graph()
    plugin = {m for m in graph if m == "pytest_fcp.plugin" or m.startswith("pytest_fcp.plugin.")}
    assert plugin >= {f"pytest_fcp.plugin.{p}" for p in ("settings", "options", "fixtures", "items", "reporting")}
    for module in set(graph) - plugin:
        assert not graph[module] & plugin, f"{module} imports the plugin: {sorted(graph[module] & plugin)}"
        if module.startswith(("pytest_fcp.scenarios", "pytest_fcp.fuzz")):
            assert "pytest" not in graph[module], f"{module} imports pytest"
    leaf = "pytest_fcp.plugin.invocation"  # what pytest was given: below settings
    fuzz = "pytest_fcp.plugin.fuzz_settings"  # the fuzz options, read with invocation's checks
    schedules = "pytest_fcp.plugin.schedule_settings"  # the schedule options, likewise
    isolation = "pytest_fcp.plugin.isolation"  # the isolation options, likewise
    parts = {leaf, fuzz, schedules, isolation}
    assert graph["pytest_fcp.plugin.settings"] & plugin <= parts, "settings must be a leaf"
    for part in (fuzz, schedules):
        assert graph[part] & plugin <= {leaf}, f"{part} reads only what invocation checks"
    assert not graph[leaf] & plugin, f"{leaf} must import nothing of the plugin"
    for part in (fuzz, isolation):
        assert graph[part] & plugin <= {leaf}, f"{part} must import only {leaf} of the plugin"
    for part in plugin - {"pytest_fcp.plugin"}:
        assert "pytest_fcp.plugin" not in graph[part], f"{part} imports the plugin's hooks module"

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph.get(todo.pop(), set()) - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    cycles = sorted(m for m in graph if m in reach(m))
    assert not cycles, f"modules in an import cycle: {cycles}"


def test_the_plugins_own_modules_are_not_assertion_rewritten(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys

        def test_loaders():
            names = [m for m in sys.modules if m.startswith("pytest_fcp.plugin.")]
            loaders = {type(sys.modules[m].__loader__).__name__ for m in names}
            assert loaders and "AssertionRewritingHook" not in loaders, loaders
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
