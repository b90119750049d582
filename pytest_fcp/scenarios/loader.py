"""Loading scenario TOML files, with errors that name the file, the scenario and the field.

File format (see ``docs/scenarios.md``)::

    description = "what this theme covers"          # optional
    [defaults]                                       # optional: any scenario key
    now = "2024-01-10T12:00:00Z"

    [[scenario]]
    name = "403_falls_back_to_rest"
    description = "Vision answers 403 for every file; the days come from REST."
    market = "spot"                                  # optional: spot, futures_usdt, futures_coin
    symbol = "BTCUSDT"                               # optional (futures_coin: BTCUSD_PERP)
    interval = "1h"                                  # optional
    truth = "synthetic"                              # optional: synthetic, golden
    publish_delay_hours = 24                         # optional: 0 .. 720
    local_tz = "Asia/Tokyo"                          # optional: the engine runs in this local time zone
    env = { CKVD_ENABLE_CACHE = "false" }            # optional: environment variables the engine runs with
    cache_from = "caches/warm"                       # optional: start from this saved cache (relative to the file)
    faults = ["vision.http403", { id = "rest.http503", days = ["2024-01-03"], attempts = "first:1" }]
    cached = ["2024-01-02"]                          # days of the scenario's series cached before the first fetch
    request = { start = "2024-01-02", end = "2024-01-05" }
    # or a list, run in order through one engine; each may name another series and a clock step:
    # request = [{ start = "2024-01-02", end = "2024-01-05" },
    #            { start = "2024-01-02", end = "2024-01-03", symbol = "ETHUSDT", market = "futures_usdt",
    #              interval = "4h", at = "2024-01-12T12:00:00Z" }]   # at: now moves forward (never back)
    [scenario.expect]
    outcome = "data"
    sources = { default = "rest" }
    requests = { vision = 4, rest = ">=1" }          # HTTP requests per source over the whole scenario

``expect.requests`` counts every HTTP request the engine sends to a source (HTTPS, or an S3 GetObject for
Vision): a ``.CHECKSUM`` file is a Vision request of its own, so two Vision days fetched with their checksums
are ``vision = 4``; a retry of the same URL counts again, and so does each REST page.

A request may be empty (``start == end``: no bars) or lie inside one bar (the bar that opened at ``start``
only if ``start`` is on a bar edge: rows are the bars with ``start <= open_time < end``). Bounds: dates from
the synthetic market's listing day (2019-01-01) to 2100-01-01, at most 3,000,000 bars over all requests,
1,600 days a request, 20 requests, 50 faults, 400 cached days; fault parameters within their ranges
(:data:`pytest_fcp.faults.PARAM_RULES`). A fault scoped to a market, symbol, interval or days that no
request asks for, and a cached day outside every request, are refused: they would test nothing.
"""

from __future__ import annotations

import functools
import pathlib
import tomllib
from collections.abc import Iterable

from pytest_fcp.scenarios.model import Scenario, ScenarioError
from pytest_fcp.scenarios.validate import SCENARIO_KEYS, parse_scenario

__all__ = ["catalog_dir", "check_unique_ids", "load_dir", "load_file", "parse_file", "parse_scenario"]

FILE_KEYS = {"description", "defaults", "scenario"}
#: The largest scenario file read (the whole catalog's largest is a few kB).
MAX_FILE_BYTES = 1_000_000


def catalog_dir() -> pathlib.Path:
    """The bundled catalog: inside the wheel, or the repository's ``scenarios/``."""
    here = pathlib.Path(__file__).resolve().parent.parent
    packaged = here / "_catalog"
    return packaged if packaged.is_dir() else here.parent / "scenarios"


def parse_file(text: str, *, file: str, theme: str, base: pathlib.Path | None = None) -> list[Scenario]:
    """Parse a TOML scenario file's text into its scenarios; raise ``ScenarioError`` on any problem (``base``: the
    directory relative ``cache_from`` paths start at, the file's own)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}", file=file) from None
    unknown = sorted(set(doc) - FILE_KEYS)
    if unknown:
        raise ScenarioError(
            f"unknown top-level key {unknown[0]!r}; allowed: {', '.join(sorted(FILE_KEYS))} "
            "(scenarios go in [[scenario]] tables)",
            file=file,
        )
    defaults = doc.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ScenarioError("[defaults] must be a table", file=file)
    bad = sorted(set(defaults) - (SCENARIO_KEYS - {"name"}))
    if bad:
        raise ScenarioError(f"unknown key {bad[0]!r} in [defaults]", file=file, field=f"defaults.{bad[0]}")
    raw = doc.get("scenario", [])
    if not isinstance(raw, list):
        raise ScenarioError("scenarios must be an array of tables: write [[scenario]]", file=file)
    if not raw:
        raise ScenarioError("no scenarios in this file: add at least one [[scenario]] table", file=file)
    out: list[Scenario] = []
    names: set[str] = set()
    for entry in raw:
        scenario = parse_scenario(entry, theme=theme, file=file, defaults=defaults, base=base)
        if scenario.name in names:
            raise ScenarioError("duplicate scenario name in this file", file=file, scenario=scenario.name, field="name")
        names.add(scenario.name)
        out.append(scenario)
    return out


def load_file(path: pathlib.Path, *, display: str | None = None) -> list[Scenario]:
    """Read and parse a scenario file, its theme being the file's stem."""
    file = display or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot be read: {exc.strerror or exc}", file=file) from None
    if len(data) > MAX_FILE_BYTES:
        raise ScenarioError(f"{len(data):,} bytes; a scenario file may hold at most {MAX_FILE_BYTES:,}", file=file)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}): scenario files are UTF-8 TOML",
            file=file,
        ) from None
    return list(_parsed(text, file, path.stem, path.resolve().parent))


@functools.lru_cache(maxsize=256)
def _parsed(text: str, file: str, theme: str, base: pathlib.Path) -> tuple[Scenario, ...]:
    """A file's scenarios, parsed once per content (collection and the id checks read each file more than once;
    scenarios are immutable, so they are shared)."""
    return tuple(parse_file(text, file=file, theme=theme, base=base))


def check_unique_ids(files: Iterable[pathlib.Path], *, only: pathlib.Path | None = None) -> None:
    """Raise ``ScenarioError`` naming both files when two scenario files hold the same id (``only``: just for it)."""
    seen: dict[str, pathlib.Path] = {}
    for path in files:
        try:
            scenarios = load_file(path)
        except ScenarioError:
            continue  # collecting the file reports it
        for scenario in scenarios:
            first = seen.setdefault(scenario.id, path)
            if first != path and only in (None, path):
                raise ScenarioError(
                    f"scenario id {scenario.id} is in two files: {first} and {path}; rename one scenario or theme",
                    file=str(path),
                    scenario=scenario.name,
                    field="name",
                )


def load_dir(directory: pathlib.Path) -> list[Scenario]:
    """Scenarios of every ``*.toml`` file in ``directory``, in file-name order."""
    out: list[Scenario] = []
    for path in sorted(directory.glob("*.toml")):
        out.extend(load_file(path))
    return out
