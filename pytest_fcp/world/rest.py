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
import functools
import json
import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pytest_fcp.core.markets import INTERVALS, MARKETS, day_bounds_ms, day_of_ms, to_ms
from pytest_fcp.world.vision import Answer

if TYPE_CHECKING:
    from pytest_fcp.faults import Fault
    from pytest_fcp.world.world import World

__all__ = ["RestApi", "kline_rows"]

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


@functools.lru_cache(maxsize=2048)
def _day_rows(
    truth: Any, market: str, symbol: str, interval: str, day: dt.date
) -> tuple[tuple[int, ...], tuple[Row, ...]]:
    """A day's bars as REST renders them, once per truth (truths are deterministic): open times, rows."""
    table = truth.klines(market, symbol, interval, *day_bounds_ms(day))
    rows = tuple(_rendered(kline_rows(table, market)))
    return tuple(t for t, _ in rows), rows


class RestApi:
    def __init__(self, world: World) -> None:
        self.world = world
        self._weight: dict[tuple[str, int], int] = defaultdict(int)
        self._weighing = threading.Lock()  # requests may come from several engine threads at once

    @staticmethod
    def serves(host: str, path: str) -> bool:
        entry = _HOST_TO_MARKET.get(host)
        return entry is not None and entry[1] == path

    def _weight_of(self, market: str, limit: int) -> int:
        if market == "spot":
            return 2
        return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10

    def answer(self, host: str, params: dict[str, str], url: str) -> Answer:
        market, _ = _HOST_TO_MARKET[host]
        spec = MARKETS[market]
        now_ms = to_ms(self.world.clock.now())
        symbol = params.get("symbol", "")
        interval = params.get("interval", "")
        # What Binance checks first: mandatory parameters, then their values.
        for name in ("symbol", "interval"):
            if not params.get(name):
                return _error(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        if interval not in INTERVALS or interval not in spec.intervals:
            return _error(400, -1120, "Invalid interval.")
        if not self.world.truth.has_symbol(market, symbol):
            return _error(400, -1121, "Invalid symbol.")
        try:
            limit = int(params.get("limit", "500"))
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
            self._weight[market, minute] += self._weight_of(market, limit)
            used = self._weight[market, minute]
        headers = {**_JSON, "X-MBX-USED-WEIGHT-1M": str(used)}

        fired = self.world.faults.strike("rest", market, symbol, interval, days)
        if fired is not None:
            self.world.record_fault(fired, "rest", days[0], url)
            faulted = self._faulted(fired, headers)
            if faulted is not None:
                return faulted

        rows: list[Row] = []
        for day in days if upper >= lo else []:
            times, rendered = _day_rows(self.world.truth, market, symbol, interval, day)
            first, last = bisect.bisect_left(times, lo), bisect.bisect_right(times, upper)
            rows += rendered[first : min(last, first + limit - len(rows))]
            if len(rows) >= limit:
                break
        if fired is not None:
            rows = self._spoil_rows(fired, rows, market, symbol, interval, lo, step)
        return Answer(200, b"[" + b",".join(text for _, text in rows) + b"]", headers)

    def _faulted(self, fault: Fault, headers: dict[str, str]) -> Answer | None:
        fid = fault.id
        if fid in ("rest.http429", "rest.http418"):
            status = 429 if fid == "rest.http429" else 418
            retry = str(int(fault.param("retry_after")))
            msg = (
                "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. Please use the "
                "websocket for live updates to avoid polling the API."
                if status == 429
                else "Way too many requests; IP(127.0.0.1) banned until further notice. Please use the websocket "
                "for live updates to avoid bans."
            )
            return _error(status, -1003, msg, {**headers, "Retry-After": retry})
        if fid == "rest.http500":
            return _error(500, -1000, "An unknown error occurred while processing the request.", headers)
        if fid == "rest.http503":
            return _error(503, -1008, "Service Unavailable.", headers)
        if fid in ("rest.http502", "rest.http504"):
            status = 502 if fid == "rest.http502" else 504
            title = "Bad Gateway" if status == 502 else "Gateway Timeout"
            return Answer(status, f"<html><body><h1>{status} {title}</h1></body></html>".encode(), dict(_HTML))
        if fid == "rest.connect_error":
            return Answer(transport="connect")
        if fid == "rest.read_timeout":
            self.world.clock.advance(float(fault.param("timeout")))
            return Answer(transport="timeout")
        if fid == "rest.malformed_json":
            return Answer(200, b'[[1704067200000,"42283.58000000","42554.5', headers)
        return None  # a fault on the page's rows

    def _spoil_rows(
        self,
        fault: Fault,
        rows: list[Row],
        market: str,
        symbol: str,
        interval: str,
        lo: int,
        step: int,
    ) -> list[Row]:
        fid = fault.id
        if fid == "rest.empty_page":
            return []
        if fid == "rest.short_page":
            return rows[: int(fault.param("keep"))]
        if fid == "rest.duplicate_rows":
            return [row for row in rows for _ in range(2)]
        if fid == "rest.out_of_range":
            extra = int(fault.param("extra"))
            first = -(-lo // step) * step
            before = self.world.truth.klines(market, symbol, interval, first - extra * step, first)
            last = rows[-1][0] if rows else first
            after = self.world.truth.klines(market, symbol, interval, last + step, last + step * (extra + 1))
            return _rendered(kline_rows(before, market)) + rows + _rendered(kline_rows(after, market))
        raise AssertionError(f"rest fault {fid} has no effect defined")  # pragma: no cover
