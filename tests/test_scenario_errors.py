"""Every malformed scenario file, and every bad ``@pytest.mark.fcp`` call, is one clear line: never a traceback,
never silently accepted. Each case names the exact message (a substring) it must produce."""

from __future__ import annotations

import pathlib

import pytest

from pytest_fcp.scenarios import ScenarioError
from pytest_fcp.scenarios.loader import check_unique_ids, load_file, parse_file

HEAD = '[defaults]\nnow = "2024-01-10T12:00:00Z"\n\n[[scenario]]\nname = "s"\ndescription = "d"\n'
REQUEST = '{ start = "2024-01-02", end = "2024-01-05" }'


def sc(body: str = "", request: str = REQUEST, expect: str = "", head: str = HEAD) -> str:
    """A scenario file: the head, extra scenario keys, the request and an optional [scenario.expect] body."""
    text = head + body + ("\n" if body else "") + f"request = {request}\n"
    return text + (f"[scenario.expect]\n{expect}\n" if expect else "")


def fault(entry: str) -> str:
    """A scenario with one fault."""
    return sc(f"faults = [{entry}]")


def days(n: int, first: str = "2019-01-02") -> str:
    """A TOML list of ``n`` consecutive days."""
    import datetime as dt

    start = dt.date.fromisoformat(first)
    return "[" + ", ".join(f'"{start + dt.timedelta(days=i)}"' for i in range(n)) + "]"


MANY_REQUESTS = "[" + ", ".join([REQUEST] * 21) + "]"
MANY_FAULTS = ", ".join(['"vision.http403"'] * 51)
NO_NAME = HEAD.replace('name = "s"\n', "")

CASES: list[tuple[str, str, str]] = [
    # --- the file ---
    ("empty", "", "no scenarios in this file: add at least one [[scenario]] table"),
    ("comment_only", "# nothing here\n", "no scenarios in this file"),
    ("description_only", 'description = "x"\n', "no scenarios in this file"),
    ("defaults_only", '[defaults]\nnow = "2024-01-10T12:00:00Z"\n', "no scenarios in this file"),
    ("bad_toml", "[[scenario]\nname=", "not valid TOML"),
    ("unclosed_string", 'description = "x\n', "not valid TOML"),
    ("top_level_key", "colour = 1\n" + sc(), "unknown top-level key 'colour'"),
    ("defaults_not_table", "defaults = 3\n", "[defaults] must be a table"),
    ("defaults_unknown", '[defaults]\ncolor = "x"\n', "unknown key 'color' in [defaults]"),
    ("defaults_name", '[defaults]\nname = "x"\n', "unknown key 'name' in [defaults]"),
    ("scenario_not_array", "scenario = 3\n", "scenarios must be an array of tables"),
    ("scenario_not_table", "scenario = [1]\n", "each [[scenario]] must be a table"),
    ("duplicate_name", sc() + sc(head=HEAD.split("\n\n", 1)[1]), "[name]: duplicate scenario name in this file"),
    # --- name, description, required keys ---
    ("no_name", sc(head=NO_NAME), "[name]: every scenario needs a name"),
    ("name_space", sc(head=HEAD.replace('"s"', '"a b"')), "without spaces"),
    ("name_number", sc(head=HEAD.replace('"s"', "5")), "got 5"),
    ("name_too_long", sc(head=HEAD.replace('"s"', '"' + "x" * 200 + '"')), "at most 120 characters"),
    ("no_description", sc(head=HEAD.replace('description = "d"\n', "")), "[description]: missing"),
    ("description_number", sc(head=HEAD.replace('"d"', "3")), "[description]: expected a string"),
    ("no_now", sc(head=HEAD.replace('now = "2024-01-10T12:00:00Z"\n', "")), "[now]: missing"),
    ("no_request", HEAD, "[request]: missing"),
    ("unknown_key", sc('colour = "red"'), "[colour]: unknown key; allowed:"),
    ("misspelt_faults", sc('fault = ["vision.http403"]'), "[fault]: unknown key"),
    # --- now ---
    ("now_words", sc('now = "yesterday"'), "[now]: 'yesterday' is not a date or time"),
    ("now_naive", sc('now = "2024-01-10T12:00:00"'), "[now]: 2024-01-10T12:00:00 has no timezone"),
    ("now_far_future", sc('now = "9999-12-31T12:00:00Z"'), "[now]: 9999-12-31T12:00:00+00:00 is outside what the"),
    ("now_before_listing", sc('now = "2018-06-01T12:00:00Z"'), "from the listing day 2019-01-01 to 2100-01-01"),
    ("now_number", sc("now = 5"), "[now]: expected a date or time, got int 5"),
    ("now_bad_offset", sc('now = "2024-01-10T12:00:00+25:00"'), "[now]: '2024-01-10T12:00:00+25:00' is not a date"),
    ("now_listing_moment", sc('now = "2019-01-01T00:00:00Z"'), "is the listing moment"),
    ("now_toml_time", sc("now = 12:00:00"), "[now]: expected a date or time, got time"),
    # --- series, truth, local_tz ---
    ("market_unknown", sc('market = "margin"'), "[market]: unknown market 'margin'; allowed: spot,"),
    ("market_number", sc("market = 3"), "[market]: unknown market 3"),
    ("interval_7m", sc('interval = "7m"'), "[interval]: '7m' is not a spot interval; allowed: 1s, 1m"),
    ("interval_1s_futures", sc('market = "futures_usdt"\ninterval = "1s"'), "'1s' is not a futures_usdt interval"),
    ("interval_number", sc("interval = 60"), "[interval]: 60 is not a spot interval"),
    ("symbol_dash", sc('symbol = "BTC-USDT"'), "[symbol]: 'BTC-USDT' is not a spot symbol"),
    ("symbol_number", sc("symbol = 5"), "[symbol]: 5 is not a spot symbol"),
    ("symbol_coin", sc('market = "futures_coin"\nsymbol = "BTCUSDT"'), "not a futures_coin symbol (with '_'"),
    ("truth_unknown", sc('truth = "real"'), "[truth]: unknown truth 'real'; allowed: synthetic, golden"),
    ("tz_unknown", sc('local_tz = "Mars/Olympus"'), "[local_tz]: local_tz 'Mars/Olympus' is not a known time zone"),
    ("tz_number", sc("local_tz = 9"), "[local_tz]: local_tz must be an IANA time zone name"),
    ("tz_path", sc('local_tz = "../etc/passwd"'), "local_tz must be an IANA time zone name"),
    ("tz_empty", sc('local_tz = ""'), "local_tz must be an IANA time zone name"),
    # --- publish delay ---
    (
        "delay_huge",
        sc("publish_delay_hours = 1e308"),
        "[publish_delay_hours]: expected a number of hours from 0 to 720",
    ),
    ("delay_negative", sc("publish_delay_hours = -1"), "from 0 to 720, got -1"),
    ("delay_string", sc('publish_delay_hours = "24"'), "from 0 to 720, got '24'"),
    ("delay_bool", sc("publish_delay_hours = true"), "from 0 to 720, got True"),
    ("delay_nan", sc("publish_delay_hours = nan"), "from 0 to 720, got nan"),
    ("delay_inf", sc("publish_delay_hours = inf"), "from 0 to 720, got inf"),
    ("delay_too_long", sc("publish_delay_hours = 1000"), "from 0 to 720, got 1000"),
    # --- requests ---
    ("request_string", sc(request='"2024-01-02"'), "[request]: expected a table {start, end} or a list"),
    ("request_empty_list", sc(request="[]"), "[request]: expected a table {start, end} or a list"),
    ("request_no_end", sc(request='{ start = "2024-01-02" }'), "[request]: expected a table with start and end"),
    ("request_unknown_key", sc(request=REQUEST[:-2] + ", colour = 1 }"), "unknown 'colour'"),
    ("request_reversed", sc(request='{ start = "2024-01-05", end = "2024-01-02" }'), "is after end 2024-01-02"),
    (
        "request_bad_date",
        sc(request='{ start = "2024-02-30", end = "2024-03-01" }'),
        "[request.start]: '2024-02-30' is not",
    ),
    ("request_after_now", sc(request='{ start = "2024-01-11", end = "2024-01-12" }'), "is not before now"),
    (
        "request_naive",
        sc(request='{ start = "2024-01-02", end = "2024-01-05T00:00:00" }'),
        "[request.end]: 2024-01-05T00:00:00 has no timezone",
    ),
    (
        "request_before_listing",
        sc(request='{ start = "2018-12-01", end = "2019-01-03" }'),
        "[request.start]: 2018-12-01T00:00:00+00:00 is outside",
    ),
    (
        "request_far_future_end",
        sc(request='{ start = "2024-01-02", end = "9999-01-01" }'),
        "[request.end]: 9999-01-01T00:00:00+00:00 is outside",
    ),
    ("too_many_requests", sc(request=MANY_REQUESTS), "[request]: 21 requests; at most 20"),
    (
        "too_many_days",
        sc('interval = "1d"', request='{ start = "2019-01-01", end = "2024-01-05" }'),
        "1830 days; a request may span at most 1600 days",
    ),
    (
        "1s_over_5_years",
        sc('interval = "1s"', request='{ start = "2019-01-01", end = "2024-01-05" }'),
        "a request may span at most 1600 days",
    ),
    (
        "1s_over_35_days",
        sc('interval = "1s"', request='{ start = "2024-01-02", end = "2024-02-06" }'),
        "asks for 3,024,000 bars; a scenario may ask for at most 3,000,000",
    ),
    (
        "1s_over_two_requests",
        sc(
            'interval = "1s"',
            request='[{ start = "2023-12-01", end = "2023-12-21" }, { start = "2023-12-21", end = "2024-01-10" }]',
        ),
        "asks for 3,456,000 bars; a scenario may ask for at most 3,000,000",
    ),
    (
        "request_symbol",
        sc(request=REQUEST[:-2] + ', symbol = "eth usdt" }'),
        "[request.symbol]: 'eth usdt' is not a spot symbol",
    ),
    ("request_market", sc(request=REQUEST[:-2] + ', market = "margin" }'), "[request.market]: unknown market 'margin'"),
    (
        "request_interval",
        sc(request=REQUEST[:-2] + ', interval = "7m" }'),
        "[request.interval]: '7m' is not a spot interval",
    ),
    (
        "request_coin_symbol",
        sc(request=REQUEST[:-2] + ', market = "futures_coin", symbol = "ETHUSDT" }'),
        "[request.symbol]: 'ETHUSDT' is not a futures_coin symbol",
    ),
    (
        "at_backwards",
        sc(request=REQUEST[:-2] + ', at = "2024-01-09T12:00:00Z" }'),
        "[request.at]: 2024-01-09T12:00:00+00:00 is before the world's now then (2024-01-10T12:00:00+00:00): "
        "time only moves forward",
    ),
    ("at_words", sc(request=REQUEST[:-2] + ', at = "later" }'), "[request.at]: 'later' is not a date or time"),
    (
        "at_second_backwards",
        sc(request=f'[{REQUEST[:-2]}, at = "2024-01-12T12:00:00Z" }}, {REQUEST[:-2]}, at = "2024-01-11T12:00:00Z" }}]'),
        "[request[1].at]: 2024-01-11T12:00:00+00:00 is before the world's now then (2024-01-12T12:00:00+00:00)",
    ),
    (
        "at_far_future",
        sc(request=REQUEST[:-2] + ', at = "9999-01-01T00:00:00Z" }'),
        "[request.at]: 9999-01-01T00:00:00+00:00 is outside",
    ),
    (
        "freshness_edge",
        sc('now = "2024-01-06T00:30:00Z"'),
        "[now]: day 2024-01-03 ends within an hour of the 48 h freshness edge",
    ),
    (
        "freshness_edge_after_step",
        sc('now = "2024-01-06T12:00:00Z"', request=f'[{REQUEST}, {REQUEST[:-2]}, at = "2024-01-07T00:30:00Z" }}]'),
        "[request[1].at]: day 2024-01-04 ends within an hour of the 48 h freshness edge",
    ),
    (
        "publication_edge",
        sc("publish_delay_hours = 36", request='{ start = "2024-01-02", end = "2024-01-10" }'),
        "ends within an hour of the Vision publication edge",
    ),
    # --- faults ---
    ("faults_string", sc('faults = "vision.http403"'), "[faults]: expected a list of fault ids or tables, got str"),
    ("faults_number", fault("3"), "[faults[0]]: expected a fault id or a table with an 'id' key"),
    ("fault_no_id", fault('{ days = ["2024-01-02"] }'), "[faults[0]]: expected a fault id or a table with an 'id' key"),
    ("fault_unknown", fault('"vision.http4003"'), "unknown fault id 'vision.http4003'. Did you mean 'vision.http403'"),
    (
        "fault_day_not_days",
        fault('{ id = "cache.partial_day", day = ["2024-01-03"] }'),
        "takes no parameter 'day'; its parameters: keep, holes; "
        "scope keys: days, attempts, market, symbol, interval, door; did you mean 'days'?",
    ),
    (
        "fault_day_no_params",
        fault('{ id = "vision.http403", day = ["2024-01-03"] }'),
        "its parameters: none; scope keys: days, attempts, market, symbol, interval, door; did you mean 'days'?",
    ),
    (
        "retry_after_huge",
        fault('{ id = "rest.http429", retry_after = 1e308 }'),
        "retry_after must be a number from 0 to 86400, got 1e+308",
    ),
    (
        "retry_after_negative",
        fault('{ id = "rest.http429", retry_after = -1 }'),
        "retry_after must be a number from 0 to 86400, got -1",
    ),
    (
        "retry_after_string",
        fault('{ id = "rest.http429", retry_after = "30" }'),
        "retry_after must be a number, got '30'",
    ),
    ("retry_after_nan", fault('{ id = "rest.http418", retry_after = nan }'), "retry_after must be a number, got nan"),
    (
        "retry_after_format",
        fault('{ id = "rest.http429", retry_after_format = "rfc" }'),
        "retry_after_format 'rfc' is not allowed; allowed: seconds, http-date",
    ),
    (
        "retry_after_format_number",
        fault('{ id = "rest.http429", retry_after_format = 1 }'),
        "retry_after_format must be a str, got 1",
    ),
    (
        "retry_after_format_elsewhere",
        fault('{ id = "rest.http500", retry_after_format = "http-date" }'),
        "takes no parameter 'retry_after_format'",
    ),
    ("delay_param_huge", fault('{ id = "vision.slow", delay = 1e9 }'), "delay must be a number from 0 to 3600"),
    ("keep_fraction", fault('{ id = "vision.truncated_zip", keep = 2 }'), "keep must be a number from 0 to 1, got 2"),
    ("keep_rows", fault('{ id = "rest.short_page", keep = 100000 }'), "keep must be a number from 0 to 1500"),
    ("extra_huge", fault('{ id = "rest.out_of_range", extra = 1e6 }'), "extra must be a number from 0 to 1000"),
    ("timeout_bool", fault('{ id = "vision.read_timeout", timeout = true }'), "timeout must be a number, got True"),
    (
        "holes_unknown",
        fault('{ id = "cache.partial_day", days = ["2024-01-03"], holes = "everywhere" }'),
        "holes 'everywhere' is not allowed; allowed: end, start, middle",
    ),
    (
        "write_error_unknown",
        fault('{ id = "cache.write_fails", error = "EPERM" }'),
        "error 'EPERM' is not allowed; allowed: ENOSPC, EIO",
    ),
    (
        "write_fails_days",
        fault('{ id = "cache.write_fails", days = ["2024-01-03"] }'),
        "acts on the whole cache directory and takes no days",
    ),
    ("cache_fault_no_days", fault('"cache.zero_byte"'), "cache faults describe given days' files; say which"),
    ("attempts_words", fault('{ id = "vision.http403", attempts = "sometimes" }'), "bad attempts 'sometimes'"),
    ("attempts_zero", fault('{ id = "vision.http403", attempts = "first:0" }'), "bad attempts 'first:0'"),
    ("attempts_number", fault('{ id = "vision.http403", attempts = 3 }'), "attempts must be a word like 'always'"),
    ("attempts_too_many", fault('{ id = "vision.http403", attempts = "first:5000" }'), "is too many; at most 1000"),
    (
        "cache_attempts",
        fault('{ id = "cache.zero_byte", days = ["2024-01-03"], attempts = "first:1" }'),
        "take no attempts",
    ),
    ("door_unknown", fault('{ id = "vision.http403", door = "ftp" }'), "door 'ftp' is not allowed"),
    ("door_on_rest", fault('{ id = "rest.http503", door = "s3" }'), "only Vision faults take a door"),
    ("fault_market_unknown", fault('{ id = "vision.http403", market = "margin" }'), "unknown market 'margin'"),
    (
        "fault_interval_7m",
        fault('{ id = "vision.http403", interval = "7m" }'),
        "[faults[0]]: fault 'vision.http403': interval '7m' is not an interval",
    ),
    (
        "fault_other_interval",
        fault('{ id = "vision.http403", interval = "4h" }'),
        "[faults[0].interval]: '4h' is not the interval of any request (1h): the fault would never fire",
    ),
    (
        "fault_other_market",
        fault('{ id = "vision.http403", market = "futures_usdt" }'),
        "[faults[0].market]: 'futures_usdt' is not the market of any request (spot)",
    ),
    (
        "fault_other_symbol",
        fault('{ id = "rest.http503", symbol = "ETHUSDT" }'),
        "[faults[0].symbol]: 'ETHUSDT' is not the symbol of any request (BTCUSDT)",
    ),
    (
        "fault_bad_symbol",
        fault('{ id = "rest.http503", symbol = "ETH-USDT" }'),
        "symbol must be a symbol like 'BTCUSDT'",
    ),
    (
        "fault_day_outside",
        fault('{ id = "vision.http403", days = ["2024-01-20"] }'),
        "[faults[0].days]: 2024-01-20 is outside every request (2024-01-02..2024-01-04): the fault would never fire",
    ),
    (
        "cache_fault_day_outside",
        fault('{ id = "cache.zero_byte", days = ["2023-12-01"] }'),
        "[faults[0].days]: 2023-12-01 is outside every request",
    ),
    (
        "fault_days_number",
        fault('{ id = "vision.http403", days = 5 }'),
        "days must be a list of days, e.g. ['2024-01-02'], got 5",
    ),
    ("fault_days_empty", fault('{ id = "vision.http403", days = [] }'), "days is empty; leave it out to hit every day"),
    ("fault_bad_day", fault('{ id = "vision.http403", days = ["2024-13-01"] }'), "bad day '2024-13-01'"),
    ("fault_too_many_days", fault(f'{{ id = "vision.http403", days = {days(401)} }}'), "401 days; at most 400"),
    ("too_many_faults", sc(f"faults = [{MANY_FAULTS}]"), "[faults]: 51 faults; at most 50"),
    ("other_interval", fault('{ id = "vision.wrong_interval", other = "7m" }'), "other '7m' is not an interval"),
    (
        "other_symbol",
        fault('{ id = "vision.wrong_symbol", other = "ETH USDT" }'),
        "other must be a symbol like 'ETHUSDT'",
    ),
    (
        "column_unknown",
        fault('{ id = "cache.missing_column", days = ["2024-01-03"], column = "colour" }'),
        "column 'colour' is not allowed",
    ),
    # --- cached ---
    ("cached_string", sc('cached = "2024-01-02"'), '[cached]: cached must be a list of days, e.g. ["2024-01-02"]'),
    (
        "cached_outside",
        sc('cached = ["2024-01-07"]'),
        "[cached[0]]: 2024-01-07 is outside every request (2024-01-02..2024-01-04): caching it tests nothing",
    ),
    (
        "cached_before_listing",
        sc('cached = ["2018-06-01"]'),
        "[cached[0]]: 2018-06-01 is before the market's listing day 2019-01-01",
    ),
    ("cached_words", sc('cached = ["tomorrow"]'), "[cached[0]]: 'tomorrow' is not a day (write 2024-01-02)"),
    ("cached_number", sc("cached = [20240102]"), "[cached[0]]: 20240102 is not a day"),
    ("cached_too_many", sc(f"cached = {days(401)}"), "[cached]: 401 days; at most 400"),
    # --- expect ---
    ("expect_number", sc("expect = 3"), "[expect]: expected a table, got int"),
    ("expect_unknown", sc(expect="colour = 1"), "[expect.colour]: unknown key"),
    ("outcome_unknown", sc(expect='outcome = "success"'), "[expect.outcome]: unknown 'success'"),
    ("sources_unknown", sc(expect='sources = { default = "ftp" }'), "[expect.sources.default]: unknown 'ftp'"),
    (
        "sources_bad_day",
        sc(expect='sources = { "2024-13-01" = "rest" }'),
        "[expect.sources.2024-13-01]: '2024-13-01' is not a day",
    ),
    (
        "sources_string",
        sc(expect='sources = "rest"'),
        "[expect.sources]: expected a table of days (or default) to names",
    ),
    ("requests_words", sc(expect='requests = { vision = "many" }'), "[expect.requests.vision]: 'many' is not a count"),
    (
        "requests_cache",
        sc(expect="requests = { cache = 0 }"),
        "[expect.requests.cache]: unknown source; allowed: vision, rest",
    ),
    ("requests_number", sc(expect="requests = 3"), "[expect.requests]: expected a table like"),
    (
        "cache_after_unknown",
        sc(expect='cache_after = { default = "shiny" }'),
        "[expect.cache_after.default]: unknown 'shiny'",
    ),
    ("skip_unknown", sc(expect='skip_checks = ["nonsense"]'), "[expect.skip_checks]: expected a list of check names"),
    ("skip_string", sc(expect='skip_checks = "rows"'), "[expect.skip_checks]: expected a list of check names"),
    (
        "skip_rows",
        sc(expect='skip_checks = ["rows"]'),
        "outcome, rows, sources, cache, network judge the data and the cache: no scenario may switch them off",
    ),
]


def _one_clear_line(message: str, file: str) -> None:
    assert "\n" not in message, message
    assert "Traceback" not in message and "Error:" not in message.split(": ", 1)[0], message
    assert message.startswith(file), message


def test_the_corpus_is_large():
    assert len(CASES) + len(FILE_CASES) >= 100
    assert len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_scenario_is_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_file(text, file="scenarios/bad.toml", theme="bad")
    _one_clear_line(str(info.value), "scenarios/bad.toml")
    assert message in str(info.value)


FILE_CASES: list[tuple[str, bytes, str]] = [
    ("binary", bytes(range(256)), "not UTF-8 text (byte 0x80 at offset 128): scenario files are UTF-8 TOML"),
    ("latin1", sc('description = "caf\u00e9"').encode("latin-1"), "not UTF-8 text (byte 0xe9"),
    ("utf16", sc().encode("utf-16"), "not UTF-8 text (byte 0xff at offset 0)"),
    ("nul_bytes", b"\x00" * 10, "not valid TOML"),
    ("huge", b"#" * 1_000_001, "1,000,001 bytes; a scenario file may hold at most 1,000,000"),
]


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in FILE_CASES], ids=[c[0] for c in FILE_CASES])
def test_malformed_file_is_one_clear_line(tmp_path: pathlib.Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(data)
    with pytest.raises(ScenarioError) as info:
        load_file(path, display="bad.toml")
    _one_clear_line(str(info.value), "bad.toml")
    assert message in str(info.value)


def test_a_directory_named_like_a_file_is_one_clear_line(tmp_path: pathlib.Path) -> None:
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(ScenarioError, match=r"^dir.toml: cannot be read: Is a directory$"):
        load_file(tmp_path / "dir.toml", display="dir.toml")


def test_two_directories_holding_the_same_id_name_both_files(tmp_path: pathlib.Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "theme.toml").write_text(sc())
    (tmp_path / "a" / "other.toml").write_text(sc())
    files = sorted(tmp_path.glob("*/*.toml"))
    with pytest.raises(ScenarioError) as info:
        check_unique_ids(files)
    message = str(info.value)
    _one_clear_line(message, str(tmp_path / "b" / "theme.toml"))
    assert (
        f"scenario id theme/s is in two files: {tmp_path / 'a' / 'theme.toml'} and {tmp_path / 'b' / 'theme.toml'}"
        in message
    )
    check_unique_ids(files[:2])  # other/s and theme/s: different ids
    check_unique_ids(files, only=files[1])  # a/theme.toml came first: only the second file's collection fails
    with pytest.raises(ScenarioError, match="is in two files"):
        check_unique_ids(files, only=files[2])


def test_valid_new_keys_load() -> None:
    text = sc(
        'local_tz = "Asia/Tokyo"',
        request=f'[{REQUEST}, {{ start = "2024-01-03", end = "2024-01-03", symbol = "ETHUSDT", '
        'market = "futures_usdt", interval = "4h", at = "2024-01-12T12:00:00Z" }]',
    )
    (scenario,) = parse_file(text, file="ok.toml", theme="ok")
    first, second = scenario.requests
    assert scenario.local_tz == "Asia/Tokyo"
    assert first.series(scenario) == ("BTCUSDT", "spot", "1h") and first.at is None
    assert second.series(scenario) == ("ETHUSDT", "futures_usdt", "4h")
    assert second.start == second.end and second.at is not None and second.at.day == 12


MARKER_CASES = [
    ('faults=[{"id": "cache.partial_day", "day": ["2024-01-03"]}]', "did you mean 'days'?"),
    ('faults=[{"id": "rest.http429", "retry_after": 1e308}]', "retry_after must be a number from 0 to 86400"),
    ('faults=[{"id": "vision.http403", "interval": "7m"}]', "interval '7m' is not an interval"),
    ('faults=[{"id": "vision.http403", "days": 5}]', "days must be a list of days"),
    ('faults=[{"id": "cache.write_fails", "error": "EPERM"}]', "error 'EPERM' is not allowed; allowed: ENOSPC, EIO"),
    ('faults=[{"id": "rest.http429", "retry_after_format": "rfc"}]', "retry_after_format 'rfc' is not allowed"),
    ('faults=[{"id": "cache.partial_day", "days": ["2024-01-03"], "holes": "all"}]', "holes 'all' is not allowed"),
    ('faults=[{"id": "vision.http403", "attempts": "first:0"}]', "bad attempts 'first:0'"),
    ('faults=[{"id": "vision.slow", "delay": float("nan")}]', "delay must be a number, got nan"),
    ('faults=[{"id": "cache.zero_byte", "days": ["2024-01-03"], "attempts": "first:1"}]', "take no attempts"),
    ('now="9999-12-31T12:00:00Z"', "is outside what the market truth serves"),
    ('now="2018-01-01T12:00:00Z"', "after the listing day 2019-01-01"),
    ('cached=["2018-06-01"]', "cached day 2018-06-01 is before the listing day 2019-01-01"),
    ('faults=[{"id": "rest.short_page", "keep": 10**6}]', "keep must be a number from 0 to 1500"),
]


def test_bad_marker_calls_are_one_clear_line_each(pytester: pytest.Pytester) -> None:
    tests = "\n".join(
        f"@pytest.mark.fcp({args})\ndef test_{i}(fcp_world): pass\n" for i, (args, _) in enumerate(MARKER_CASES)
    )
    pytester.makepyfile("import pytest\n\n" + tests)
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "0")
    result.assert_outcomes(errors=len(MARKER_CASES))
    out = result.stdout.str()
    assert "Traceback" not in out
    for i, (_, message) in enumerate(MARKER_CASES):
        lines = [
            line
            for line in out.splitlines()
            if f"bad world for test_bad_marker_calls_are_one_clear_line_each.py::test_{i}:" in line
        ]
        assert any(message in line for line in lines), (i, message, lines)


def test_the_marker_takes_local_tz_and_bounds_publish_delay(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import datetime as dt, time
        import pytest

        @pytest.mark.fcp(now="2024-01-10T12:00:00Z", local_tz="Asia/Tokyo")
        def test_tz(fcp_world, fcp_engine):
            assert time.strftime("%Z") == "JST"

        @pytest.mark.fcp(publish_delay_hours=1e308)
        def test_big(fcp_world, fcp_engine):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--fcp-engine=reference")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*publish_delay_hours must be a number of hours from 0 to 720, got 1e+308*"])
    assert "Traceback" not in result.stdout.str()
