"""Simulated Binance REST klines: ``api.binance.com/api/v3/klines``, ``fapi.../fapi/v1/klines``,
``dapi.../dapi/v1/klines``.

Binance's semantics: ``symbol``, ``interval``, ``startTime``, ``endTime`` (both inclusive, on open_time),
``limit`` (default 500; at most 1000 on spot, 1500 on futures; larger values are capped); without
``startTime`` the page ends at ``endTime`` (or now). Rows are 12-field lists with string prices; nothing
opens after "now" (the bar open at "now" is served with its final values). Every answer carries
``X-MBX-USED-WEIGHT-1M``; errors carry Binance's JSON body ``{"code": ..., "msg": ...}``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import email.utils
import functools
import json
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pytest_fcp.core.markets import DEFAULT_PAGE_LIMIT, INTERVALS, MARKETS, day_bounds_ms, day_of_ms, to_ms
from pytest_fcp.world.answer import Answer, Target
from pytest_fcp.world.recorder import Recorder

if TYPE_CHECKING:
    from pytest_fcp.faults import Fault, FaultSchedule
    from pytest_fcp.world.clock import VirtualClock
    from pytest_fcp.world.truth import Truth

__all__ = ["RestApi", "asked_days", "kline_rows"]

_HOST_TO_MARKET = {spec.rest_host: (name, spec.rest_path) for name, spec in MARKETS.items()}
_JSON = {"Content-Type": "application/json;charset=UTF-8"}
_HTML = {"Content-Type": "text/html"}


def _error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, json.dumps({"code": code, "msg": msg}).encode(), {**_JSON, **(headers or {})})


def _num(value: float, market: str) -> str:
    if market == "spot":
        return f"{value:.8f}"
    return str(int(value)) if value.is_integer() else repr(value)


def kline_rows(table: pa.Table, market: str) -> list[list[Any]]:
    """Truth rows as Binance REST renders them."""
    c = table.to_pydict()
    return [
        [
            c["open_time"][i],
            _num(c["open"][i], market),
            _num(c["high"][i], market),
            _num(c["low"][i], market),
            _num(c["close"][i], market),
            _num(c["volume"][i], market),
            c["close_time"][i],
            _num(c["quote_volume"][i], market),
            c["count"][i],
            _num(c["taker_buy_volume"][i], market),
            _num(c["taker_buy_quote_volume"][i], market),
            "0",
        ]
        for i in range(table.num_rows)
    ]


#: A rendered row: its open time and its JSON text (a page is ``[`` + the texts joined by ``,`` + ``]``).
Row = tuple[int, bytes]


def _rendered(rows: list[list[Any]]) -> list[Row]:
    return [(row[0], json.dumps(row, separators=(",", ":")).encode()) for row in rows]


#: Spot's row as JSON text, the very bytes :func:`_rendered` makes of :func:`kline_rows` (prices with 8 decimals).
_SPOT_ROW = '[{},"{:.8f}","{:.8f}","{:.8f}","{:.8f}","{:.8f}",{},"{:.8f}",{},"{:.8f}","{:.8f}","0"]'


def _rendered_table(table: pa.Table, market: str) -> list[Row]:
    """``_rendered(kline_rows(table, market))``, formatted in one go for spot (a 1s day is 86,400 rows)."""
    if market != "spot":
        return _rendered(kline_rows(table, market))
    c = table.to_pydict()
    columns = [c[k] for k in ("open", "high", "low", "close", "volume", "close_time", "quote_volume", "count")]
    columns += [c["taker_buy_volume"], c["taker_buy_quote_volume"]]
    return [(t, _SPOT_ROW.format(t, *values).encode()) for t, *values in zip(c["open_time"], *columns, strict=True)]


@functools.lru_cache(maxsize=2048)
def _day_rows(
    truth: Any, market: str, symbol: str, interval: str, day: dt.date
) -> tuple[tuple[int, ...], tuple[Row, ...]]:
    """A day's bars as REST renders them, once per truth (truths are deterministic): open times, rows."""
    table = truth.klines(market, symbol, interval, *day_bounds_ms(day))
    rows = tuple(_rendered_table(table, market))
    return tuple(t for t, _ in rows), rows


#: Bars shorter than a minute are rendered an hour at a time (a day of 1s bars is 86,400 rows; a page is 1,000).
_HOUR_MS = 3_600_000


@functools.lru_cache(maxsize=2048)
def _hour_rows(
    truth: Any, market: str, symbol: str, interval: str, start_ms: int
) -> tuple[tuple[int, ...], tuple[Row, ...]]:
    """An hour's bars as REST renders them (for intervals under a minute), once per truth."""
    rows = tuple(_rendered_table(truth.klines(market, symbol, interval, start_ms, start_ms + _HOUR_MS), market))
    return tuple(t for t, _ in rows), rows


def _blocks(
    truth: Any, market: str, symbol: str, interval: str, day: dt.date, lo: int, upper: int
) -> list[tuple[tuple[int, ...], tuple[Row, ...]]]:
    """The rendered blocks of ``day`` that hold bars from ``lo`` to ``upper``: the whole day, or its hours."""
    if INTERVALS[interval] >= 60_000:
        return [_day_rows(truth, market, symbol, interval, day)]
    start, end = day_bounds_ms(day)
    first = max(start, lo - lo % _HOUR_MS)
    return [_hour_rows(truth, market, symbol, interval, h) for h in range(first, min(end, upper + 1), _HOUR_MS)]


def asked_days(params: dict[str, str]) -> tuple[dt.date, ...]:
    """The UTC days a klines request asks about: ``startTime`` .. ``endTime`` (none without ``startTime``)."""
    try:
        start = int(params["startTime"])
        end = int(params.get("endTime", start))
    except (KeyError, ValueError):
        return ()
    first, last = day_of_ms(start), day_of_ms(max(start, end))
    return tuple(dt.date.fromordinal(o) for o in range(first.toordinal(), last.toordinal() + 1))


class RestApi:
    """The three klines endpoints. Ports: the market ``truth``, the ``clock``, the fault ``schedule``, the
    ``recorder``."""

    def __init__(self, truth: Truth, clock: VirtualClock, schedule: FaultSchedule, recorder: Recorder) -> None:
        self.truth, self.clock, self.schedule, self.recorder = truth, clock, schedule, recorder
        self._weight: dict[tuple[str, int], int] = defaultdict(int)
        self._weighing = threading.Lock()  # requests may come from several engine threads at once

    @staticmethod
    def serves(host: str, path: str) -> bool:
        """Whether ``host`` + ``path`` is one of the klines endpoints."""
        entry = _HOST_TO_MARKET.get(host)
        return entry is not None and entry[1] == path

    @staticmethod
    def weight_of(market: str, limit: int) -> int:
        """The request weight Binance counts for a klines request with ``limit``."""
        if market == "spot":
            return 2
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

    def answer(self, host: str, params: dict[str, str], url: str) -> Answer:
        """Answer one klines request as Binance would, or as the fault in scope makes it."""
        market, _ = _HOST_TO_MARKET[host]
        answer = self._answer(market, params, url)
        limit = params.get("limit", str(DEFAULT_PAGE_LIMIT))
        weight = self.weight_of(market, min(int(limit), MARKETS[market].max_limit)) if limit.isdigit() else 0
        target = Target(market, params.get("symbol"), params.get("interval"), asked_days(params), None, weight)
        return replace(answer, target=target)

    def _answer(self, market: str, params: dict[str, str], url: str) -> Answer:
        spec = MARKETS[market]
        now_ms = to_ms(self.clock.now())
        symbol = params.get("symbol", "")
        interval = params.get("interval", "")
        # What Binance checks first: mandatory parameters, then their values.
        for name in ("symbol", "interval"):
            if not params.get(name):
                return _error(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        if interval not in INTERVALS or interval not in spec.intervals:
            return _error(400, -1120, "Invalid interval.")
        if not self.truth.has_symbol(market, symbol):
            return _error(400, -1121, "Invalid symbol.")
        try:
            limit = int(params.get("limit", DEFAULT_PAGE_LIMIT))
            start = int(params["startTime"]) if "startTime" in params else None
            end = int(params["endTime"]) if "endTime" in params else None
        except ValueError:
            return _error(400, -1100, "Illegal characters found in a parameter.")
        if limit < 1:
            return _error(400, -1100, "Illegal characters found in parameter 'limit'; legal range is '1-1000'.")
        if start is not None and end is not None and start > end:
            return _error(400, -1023, "Start time is greater than end time.")
        limit = min(limit, spec.max_limit)
        step = INTERVALS[interval]

        upper = min(end if end is not None else now_ms, now_ms)  # inclusive bound on open_time
        lo = max(0, (upper // step - limit + 1) * step) if start is None else start
        touched = [day_of_ms(lo), day_of_ms(max(lo, upper))] if upper >= lo else [day_of_ms(lo)]
        days = [dt.date.fromordinal(o) for o in range(touched[0].toordinal(), touched[-1].toordinal() + 1)]

        minute = now_ms // 60_000
        with self._weighing:
            self._weight[market, minute] += self.weight_of(market, limit)
            used = self._weight[market, minute]
        headers = {**_JSON, "X-MBX-USED-WEIGHT-1M": str(used)}

        fired = self.schedule.answering_fault("rest", market, symbol, interval, days)
        if fired is not None:
            day = self.schedule.last_day or days[0]
            self.recorder.fault(fired.id, "rest", day, self.schedule.last_attempt, url)
            effect = fired.kind.effect.kind
            if effect in _ANSWERS:
                return _ANSWERS[effect](self, fired, headers)

        rows: list[Row] = []
        for day in days if upper >= lo else []:
            for times, rendered in _blocks(self.truth, market, symbol, interval, day, lo, upper):
                first, last = bisect.bisect_left(times, lo), bisect.bisect_right(times, upper)
                rows += rendered[first : min(last, first + limit - len(rows))]
                if len(rows) >= limit:
                    break
            if len(rows) >= limit:
                break
        if fired is not None:
            rows = _PAGES[fired.kind.effect.kind](self, fired, rows, market, symbol, interval, lo, step)
        return Answer(200, b"[" + b",".join(text for _, text in rows) + b"]", headers)

    # --- effects that replace the answer (one function per effect kind of the fault table) ----------
    def _binance_error(self, fault: Fault, headers: dict[str, str]) -> Answer:
        effect = fault.kind.effect
        extra = dict(headers)
        if "retry_after" in fault.kind.params:
            seconds = int(fault.param("retry_after"))
            extra["Retry-After"] = str(seconds)
            if fault.param("retry_after_format") == "http-date":  # RFC 9110: an IMF-fixdate, whole seconds
                when = self.clock.now() + dt.timedelta(seconds=seconds)
                when = when.replace(microsecond=0) + dt.timedelta(seconds=1 if when.microsecond else 0)
                extra["Retry-After"] = email.utils.format_datetime(when.astimezone(dt.UTC), usegmt=True)
        return _error(effect.status, int(effect.code), effect.message, extra)

    def _html_error(self, fault: Fault, headers: dict[str, str]) -> Answer:
        effect = fault.kind.effect
        body = f"<html><body><h1>{effect.status} {effect.message}</h1></body></html>".encode()
        return Answer(effect.status, body, dict(_HTML))

    def _transport(self, fault: Fault, headers: dict[str, str]) -> Answer:
        return Answer(transport=fault.kind.effect.kind)  # "connect" or "reset": the client's own error

    def _timeout(self, fault: Fault, headers: dict[str, str]) -> Answer:
        self.clock.advance(float(fault.param("timeout")))
        return Answer(transport="timeout")

    def _malformed_json(self, fault: Fault, headers: dict[str, str]) -> Answer:
        return Answer(200, b'[[1704067200000,"42283.58000000","42554.5', headers)

    # --- effects that spoil the page's rows ----------------------------------------------------------
    def _rows_empty(self, fault: Fault, rows: list[Row], *_: Any) -> list[Row]:
        return []

    def _rows_keep(self, fault: Fault, rows: list[Row], *_: Any) -> list[Row]:
        return rows[: int(fault.param("keep"))]

    def _rows_twice(self, fault: Fault, rows: list[Row], *_: Any) -> list[Row]:
        return [row for row in rows for _ in range(2)]

    def _rows_out_of_range(
        self, fault: Fault, rows: list[Row], market: str, symbol: str, interval: str, lo: int, step: int
    ) -> list[Row]:
        extra = int(fault.param("extra"))
        first = -(-lo // step) * step
        before = self.truth.klines(market, symbol, interval, first - extra * step, first)
        last = rows[-1][0] if rows else first
        after = self.truth.klines(market, symbol, interval, last + step, last + step * (extra + 1))
        return _rendered(kline_rows(before, market)) + rows + _rendered(kline_rows(after, market))

    def _rows_fields(self, fault: Fault, rows: list[Row], *_: Any) -> list[Row]:
        fields = int(fault.param("fields"))
        reshaped = []
        for open_time, text in rows:
            row = json.loads(text)
            row = row[:fields] + ["0"] * (fields - len(row))
            reshaped.append((open_time, json.dumps(row, separators=(",", ":")).encode()))
        return reshaped


_ANSWERS: dict[str, Callable[[RestApi, Fault, dict[str, str]], Answer]] = {
    "binance_error": RestApi._binance_error,
    "html_error": RestApi._html_error,
    "connect": RestApi._transport,
    "reset": RestApi._transport,
    "timeout": RestApi._timeout,
    "malformed_json": RestApi._malformed_json,
}
_PAGES: dict[str, Callable[..., list[Row]]] = {
    "rows_empty": RestApi._rows_empty,
    "rows_keep": RestApi._rows_keep,
    "rows_twice": RestApi._rows_twice,
    "rows_out_of_range": RestApi._rows_out_of_range,
    "rows_fields": RestApi._rows_fields,
}
