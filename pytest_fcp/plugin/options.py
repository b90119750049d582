"""pytest-fcp's command-line options and ini keys (all of them, fuzzing's too); read once by ``settings``."""

from __future__ import annotations

import pytest

from pytest_fcp.plugin.settings import DEFAULT_EXAMPLES, DEFAULT_NOW

__all__ = ["addoption"]


def addoption(parser: pytest.Parser) -> None:
    """Register every ``--fcp-*`` option and ``fcp_*`` ini key (from ``pytest_addoption``)."""
    group = parser.getgroup("fcp", "pytest-fcp (Failover Control Protocol harness)")
    group.addoption(
        "--fcp-engine",
        action="append",
        dest="fcp_engine",
        metavar="NAME",
        help="engine to test: an entry point of group 'pytest_fcp.engines' (bundled: reference, ckvd) or "
        "'package.module:factory'. Repeat for several. Default: ini fcp_engine, else reference and ckvd.",
    )
    parser.addini("fcp_engine", type="linelist", default=[], help="default engines (one name a line)")
    group.addoption(
        "--fcp-seed",
        dest="fcp_seed",
        metavar="N",
        help="seed of the synthetic market truth, of fuzzing and of random in pytest-fcp tests (an integer); shown on "
        "the fcp: line; replays a run",
    )
    group.addoption(
        "--fcp-log-level",
        dest="fcp_log_level",
        metavar="LEVEL",
        help="lowest level of the engine's own log records kept in each trace: TRACE, DEBUG, INFO, SUCCESS, "
        "WARNING, ERROR or CRITICAL (default: ini fcp_log_level, else INFO; DEBUG keeps everything but costs "
        "ckvd about a tenth of its time)",
    )
    parser.addini("fcp_log_level", default="", help="lowest engine log level kept in traces (like --fcp-log-level)")
    group.addoption("--fcp-now", dest="fcp_now", metavar="ISO", help=f"default world 'now' (default {DEFAULT_NOW})")
    parser.addini("fcp_now", default="", help="default world 'now' (ISO 8601, UTC)")
    group.addoption(
        "--fcp-trace-dir",
        dest="fcp_trace_dir",
        metavar="DIR",
        help="write every test's decision trace as JSON Lines to DIR/fcp-trace-<run id>.jsonl",
    )
    parser.addini("fcp_trace_dir", default="", help="directory for JSON Lines traces (like --fcp-trace-dir)")
    group.addoption(
        "--fcp-html",
        dest="fcp_html",
        metavar="PATH",
        help="write one self-contained HTML report to PATH: the conformance matrix (scenario x engine) and every "
        "traced test's decision flow (cache -> Vision -> REST), written by the controller at the end",
    )
    parser.addini("fcp_html", default="", help="path of the HTML report (like --fcp-html; relative to the rootdir)")
    group.addoption(
        "--fcp-lean",
        action="store_true",
        dest="fcp_lean",
        help="process-wide speed measures, off by default (docs/speed.md): in --fcp-scenarios runs, set aside "
        "Hypothesis's plugin when its summary would be empty, and freeze the garbage collector at exit (skips "
        "the finalizers of objects left in reference cycles)",
    )
    parser.addini("fcp_lean", default="false", help="the --fcp-lean speed measures (true or false)")
    group.addoption(
        "--fcp-coverage",
        action="store_true",
        dest="fcp_coverage",
        help="record which cells of the FCP space (fault x target, cache state x interval, clock, request shape, "
        "lifetime...) the run exercised; print the empty reachable ones at the end (and map them in --fcp-html)",
    )
    parser.addini("fcp_coverage", type="bool", default=False, help="like --fcp-coverage")
    group.addoption(
        "--fcp-coverage-json",
        dest="fcp_coverage_json",
        metavar="PATH",
        help="write the full coverage map (every reachable cell with its test count) as JSON to PATH; "
        "implies --fcp-coverage",
    )
    parser.addini("fcp_coverage_json", default="", help="like --fcp-coverage-json (relative to the rootdir)")
    _add_scenario_options(parser, group)
    _add_cache_options(parser, group)
    _add_isolation_options(parser, group)
    _add_fuzz_options(parser, group)
    group.addoption(
        "--fcp-update-baselines",
        "--fcp-update-expectations",
        action="store_true",
        dest="fcp_update_baselines",
        help="record this run's behaviour in the baselines: each scenario that ran gets its entry added or replaced "
        "in <engine>.toml, every other entry is kept (see --fcp-prune-baselines); also the baselines of tests that "
        "use fcp_baseline; old expectation files are migrated (--fcp-update-expectations is the old name)",
    )
    group.addoption(
        "--fcp-prune-baselines",
        action="store_true",
        dest="fcp_prune_baselines",
        help="with --fcp-update-baselines: also remove the unused entries (scenarios of a theme this run loaded "
        "that no scenario file defines any more) from the baseline files it writes",
    )
    group.addoption(
        "--fcp-unused-baselines",
        dest="fcp_unused_baselines",
        choices=("report", "fail"),
        default=None,
        help="what unused baseline entries do at the end of a --fcp-scenarios run: report (default: listed after "
        "the summary) or fail (the run fails too). Default: ini fcp_unused_baselines, else report",
    )
    parser.addini("fcp_unused_baselines", default="", help="report or fail on unused baseline entries")
    group.addoption(
        "--fcp-schedules",
        dest="fcp_schedules",
        default=None,
        metavar="K",
        help="run each scenario whose engine instances run together under K interleavings (schedules 1..K, chosen "
        "from the seed); behaviours that differ between them are reported, each with its replay line. Default: ini "
        "fcp_schedules, else 1",
    )
    parser.addini(
        "fcp_schedules", default="", help="interleavings each together-scenario runs under (like --fcp-schedules)"
    )
    group.addoption(
        "--fcp-schedule",
        dest="fcp_schedule",
        default=None,
        metavar="N",
        help="run each together-scenario under schedule N alone (what a replay line gives)",
    )
    group.addoption(
        "--fcp-schedule-strategy",
        dest="fcp_schedule_strategy",
        choices=("random", "pct"),
        default=None,
        help="how schedules pick who goes next: random (default: a uniform random walk) or pct (random priorities, "
        "two change points). Default: ini fcp_schedule_strategy, else random",
    )
    parser.addini("fcp_schedule_strategy", default="", help="random or pct (like --fcp-schedule-strategy)")


def _add_scenario_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption(
        "--fcp-scenarios",
        action="store_true",
        dest="fcp_scenarios",
        help="collect and run the FCP scenario catalog (bundled + --fcp-scenarios-dir) on every engine",
    )
    group.addoption(
        "--fcp-scenarios-dir",
        action="append",
        dest="fcp_scenarios_dirs",
        metavar="DIR",
        help="extra directory of scenario TOML files (repeatable); with --fcp-scenarios",
    )
    parser.addini("fcp_scenarios_dirs", type="paths", default=[], help="extra scenario directories")
    group.addoption(
        "--fcp-no-bundled",
        action="store_true",
        dest="fcp_no_bundled",
        help="with --fcp-scenarios: leave out the bundled catalog (run only --fcp-scenarios-dir)",
    )
    group.addoption(
        "--fcp-baseline-dir",
        "--fcp-expectations-dir",
        dest="fcp_baseline_dir",
        metavar="DIR",
        help="directory of your <engine>.toml behaviour baselines (default: <rootdir>/fcp-baselines if it "
        "exists); a scenario it has no entry for is compared with the bundled baseline's entry. "
        "--fcp-update-baselines writes there (default <rootdir>/fcp-baselines; the bundled files only when the "
        "rootdir is pytest-fcp's own checkout). --fcp-expectations-dir is the old name",
    )
    parser.addini("fcp_baseline_dir", default="", help="directory of <engine>.toml behaviour baselines")


def _add_cache_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption(
        "--fcp-save-cache",
        dest="fcp_save_cache",
        metavar="DIR",
        help="after each scenario (and each test using fcp_world) copy the engine's cache directory as the test "
        "left it to DIR/<engine>/<theme>/<name>/, with fcp-cache.json saying which engine and release, test, seed "
        "and now wrote it (record with one release, judge the next with --fcp-cache-from; docs/regression.md)",
    )
    parser.addini("fcp_save_cache", default="", help="like --fcp-save-cache (relative to the rootdir)")
    group.addoption(
        "--fcp-cache-from",
        dest="fcp_cache_from",
        metavar="DIR",
        help="start each scenario (and each test using fcp_world) from the cache saved for it under DIR: "
        "DIR/<engine>/<theme>/<name>/, else DIR/any/<theme>/<name>/, else DIR/<theme>/<name>/ (tests without one "
        "start empty); such a scenario fails on contract failures its engine's baseline does not list",
    )
    parser.addini("fcp_cache_from", default="", help="like --fcp-cache-from (relative to the rootdir)")


def _add_isolation_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption(
        "--fcp-isolation",
        dest="fcp_isolation",
        metavar="{fork,off}",
        help="run each scenario and fuzz item in a forked child, so an engine that dies (a signal, an exit code) or "
        "hangs fails only its test (fork); or in this process (off). Default: ini fcp_isolation, else fork on Linux, "
        "off elsewhere (docs/isolation.md)",
    )
    parser.addini("fcp_isolation", default="", help="fork or off (like --fcp-isolation)")
    group.addoption(
        "--fcp-hang-seconds",
        dest="fcp_hang_seconds",
        metavar="SECONDS",
        help="with isolation: real seconds without progress (no trace event, almost no CPU) after which an engine "
        "has hung and its child is killed (default: ini fcp_hang_seconds, else 5)",
    )
    parser.addini("fcp_hang_seconds", default="", help="seconds without progress that make a hang")
    group.addoption(
        "--fcp-item-seconds",
        dest="fcp_item_seconds",
        metavar="SECONDS",
        help="with isolation: real seconds one scenario or fuzz item may take at most (an engine spinning on the "
        "CPU; default: ini fcp_item_seconds, else 600)",
    )
    parser.addini("fcp_item_seconds", default="", help="real seconds an isolated item may take at most")
    group.addoption(
        "--fcp-max-requests",
        dest="fcp_max_requests",
        metavar="N",
        help="requests one fetch may send before it is an endless retry loop (default: ini fcp_max_requests, else "
        "2000)",
    )
    parser.addini("fcp_max_requests", default="", help="requests one fetch may send (endless-retry bound)")
    group.addoption(
        "--fcp-max-sleep",
        dest="fcp_max_sleep",
        metavar="SECONDS",
        help="virtual seconds one fetch may sleep before it is an endless retry loop (default: ini fcp_max_sleep, "
        "else 3600)",
    )
    parser.addini("fcp_max_sleep", default="", help="virtual seconds one fetch may sleep (endless-retry bound)")


def _add_fuzz_options(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    group.addoption(
        "--fcp-fuzz",
        action="store_true",
        dest="fcp_fuzz",
        help="add one property-based test per engine: generated fault schedules judged by the FCP contract",
    )
    group.addoption(
        "--fcp-fuzz-examples",
        dest="fcp_fuzz_examples",
        metavar="N",
        help=f"generated scenarios per engine (default: ini fcp_fuzz_examples, else {DEFAULT_EXAMPLES})",
    )
    parser.addini("fcp_fuzz_examples", default=str(DEFAULT_EXAMPLES), help="generated scenarios per engine")
    group.addoption(
        "--fcp-fuzz-budget",
        dest="fcp_fuzz_budget",
        metavar="SECONDS",
        help="wall-time budget of the search per engine (default: ini fcp_fuzz_budget, else the profile's)",
    )
    parser.addini("fcp_fuzz_budget", default="", help="wall-time budget of the fuzz search per engine (s)")
    group.addoption(
        "--fcp-fuzz-steer",
        dest="fcp_fuzz_steer",
        metavar="on|off",
        help="steer the search towards the coverage map's empty cells (default: ini fcp_fuzz_steer, else on)",
    )
    parser.addini("fcp_fuzz_steer", default="on", help="steer the fuzz search towards empty coverage cells (on/off)")
    group.addoption(
        "--fcp-fuzz-save",
        dest="fcp_fuzz_save",
        metavar="DIR",
        help="save each shrunk counterexample as a scenario TOML file in DIR",
    )
    group.addoption(
        "--fcp-fuzz-db",
        dest="fcp_fuzz_db",
        metavar="DIR|module:attr|none",
        help="Hypothesis example database the fuzz items replay first and keep findings in: a directory, "
        "module:attr naming an ExampleDatabase, or none (default: ini fcp_fuzz_db, else .pytest_cache/d/fcp-fuzz)",
    )
    parser.addini("fcp_fuzz_db", default="", help="fuzz example database: a directory, module:attr or none")
    group.addoption(
        "--fcp-fuzz-shards",
        type=int,
        dest="fcp_fuzz_shards",
        metavar="N",
        help="split each engine's examples into N fuzz items with distinct seeds "
        "(default: ini fcp_fuzz_shards, else the number of xdist workers)",
    )
    parser.addini("fcp_fuzz_shards", default="", help="fuzz items per engine (default: the xdist workers)")
    group.addoption(
        "--fcp-fuzz-shard",
        type=int,
        dest="fcp_fuzz_shard",
        metavar="K",
        help="run only shard K (1..N) of each engine (a failure's replay line names it)",
    )
    group.addoption(
        "--fcp-fuzz-profile",
        dest="fcp_fuzz_profile",
        metavar="{ci,deep}",
        default=None,
        help="ci: derandomized and bounded (120 s budget); deep: 10x the examples, seeded by --fcp-seed",
    )
