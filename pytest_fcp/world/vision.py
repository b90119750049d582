"""Simulated Binance Vision: a moto S3 bucket ``data.binance.vision`` reached through two doors.

The bucket holds ``data/{spot|futures/um|futures/cm}/daily/klines/{SYMBOL}/{interval}/{file}.zip`` and the
matching ``.zip.CHECKSUM`` (``<sha256>  <file name>``), built lazily from the market truth the first time a
key is asked for, and only for days Vision has published by the world's "now" (``publish_delay`` after the
day closes). Files follow Binance's conventions: one CSV named like the zip, 12 columns, a header row on
futures files only, spot timestamps in microseconds from 2025-01-01 on, ``close_time = open_time + interval
- 1`` in the file's unit.

Doors:

* HTTPS: ``https://data.binance.vision/<key>`` over httpx, routed by respx (see :mod:`.network`);
* S3 API: boto3/botocore clients (``GetObject``/``HeadObject`` on bucket ``data.binance.vision``), through a
  botocore ``before-send`` handler placed ahead of moto's, so faults hit both doors alike.

Missing keys answer 404 with S3's ``NoSuchKey`` XML body.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pytest_fcp.core.freshness import day_end
from pytest_fcp.core.markets import (
    CHECKSUM_SUFFIX,
    MARKETS,
    VISION_HOST,
    checksum_key,
    day_bounds_ms,
    interval_ms,
    vision_file_name,
)
from pytest_fcp.world.answer import Answer, Target
from pytest_fcp.world.recorder import Recorder

if TYPE_CHECKING:
    from pytest_fcp.faults import Fault, FaultSchedule
    from pytest_fcp.world.clock import VirtualClock
    from pytest_fcp.world.truth import Truth

__all__ = [
    "BUCKET",
    "REGION",
    "Answer",
    "VisionBucket",
    "VisionObject",
    "checksum_of",
    "csv_bytes",
    "parse_key",
    "s3_backend",
    "zip_bytes",
]

BUCKET = VISION_HOST
REGION = "ap-northeast-1"
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)
_PREFIX_TO_MARKET = {spec.vision_prefix: name for name, spec in MARKETS.items()}
_KEY_RE = re.compile(
    rf"^(?P<prefix>{'|'.join(re.escape(prefix) for prefix in _PREFIX_TO_MARKET)})/daily/klines/(?P<symbol>[A-Z0-9_]+)/"
    r"(?P<interval>[0-9]+[smhdwM])/(?P=symbol)-(?P=interval)-(?P<day>\d{4}-\d{2}-\d{2})\.zip"
    rf"(?P<checksum>{re.escape(CHECKSUM_SUFFIX)})?$"
)


@dataclass(frozen=True)
class VisionObject:
    """What a bucket key names."""

    key: str
    market: str
    symbol: str
    interval: str
    day: dt.date
    obj: str  # "zip" | "checksum"

    @property
    def file_name(self) -> str:
        """The zip's file name (without any ``.CHECKSUM`` suffix)."""
        return vision_file_name(self.symbol, self.interval, self.day)


def parse_key(key: str) -> VisionObject | None:
    """The object a Vision daily-klines key names, or ``None`` if the key is not one."""
    match = _KEY_RE.match(key)
    if not match:
        return None
    try:
        day = dt.date.fromisoformat(match["day"])
    except ValueError:
        return None
    obj = "checksum" if match["checksum"] else "zip"
    return VisionObject(key, _PREFIX_TO_MARKET[match["prefix"]], match["symbol"], match["interval"], day, obj)


def _fmt(value: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{value:.{decimals}f}"
    return str(int(value)) if value.is_integer() else repr(value)


#: A spot CSV line, the very text the general path writes with 8 decimals.
_SPOT_LINE = "{},{:.8f},{:.8f},{:.8f},{:.8f},{:.8f},{},{:.8f},{},{:.8f},{:.8f},0\n"


def csv_bytes(table: pa.Table, market: str, interval: str, day: dt.date) -> bytes:
    """The day's CSV exactly as Binance writes it for ``market``."""
    spec = MARKETS[market]
    micros = spec.micros_from is not None and day >= spec.micros_from
    unit = 1000 if micros else 1
    step = interval_ms(interval) * unit
    spot = market == "spot"
    price_dec = 8 if spot else None
    cols = table.to_pydict()
    lines = [HEADER] if spec.csv_header else []
    if spot:  # one format per row: a day of 1s bars is 86,400 lines
        values = [cols[k] for k in ("open", "high", "low", "close", "volume")]
        extra = [cols[k] for k in ("quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume")]
        lines += [
            _SPOT_LINE.format(t * unit, *v, t * unit + step - 1, *x)
            for t, v, x in zip(cols["open_time"], zip(*values, strict=True), zip(*extra, strict=True), strict=True)
        ]
        return "".join(lines).encode()
    for i, open_time in enumerate(cols["open_time"]):
        t = open_time * unit
        lines.append(
            ",".join(
                (
                    str(t),
                    _fmt(cols["open"][i], price_dec),
                    _fmt(cols["high"][i], price_dec),
                    _fmt(cols["low"][i], price_dec),
                    _fmt(cols["close"][i], price_dec),
                    _fmt(cols["volume"][i], price_dec),
                    str(t + step - 1),
                    _fmt(cols["quote_volume"][i], price_dec),
                    str(cols["count"][i]),
                    _fmt(cols["taker_buy_volume"][i], price_dec),
                    _fmt(cols["taker_buy_quote_volume"][i], price_dec),
                    "0",
                )
            )
            + "\n"
        )
    return "".join(lines).encode()


def zip_bytes(member: str, payload: bytes) -> bytes:
    """A deterministic deflated zip holding ``payload`` as ``member``."""
    buffer = io.BytesIO()
    info = zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0))  # fixed stamp: same bytes every run
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, payload)
    return buffer.getvalue()


def _s3_error(code: str, message: str, key: str | None = None) -> bytes:
    key_xml = f"<Key>{key}</Key>" if key else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{key_xml}"
        "<RequestId>FCP0SIMULATED0REQ</RequestId><HostId>pytest-fcp/simulated</HostId></Error>"
    ).encode()


_XML = {"Content-Type": "application/xml"}
_NOT_A_ZIP = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    b"<hr><center>CloudFront</center></body></html>\n"
)


@functools.lru_cache(maxsize=512)
def _genuine_zip(truth: Any, market: str, symbol: str, interval: str, day: dt.date) -> bytes:
    """The day's zip for a truth (truths are deterministic, so a built zip serves every world)."""
    name = vision_file_name(symbol, interval, day)
    start, end = day_bounds_ms(day)
    table = truth.klines(market, symbol, interval, start, end)
    return zip_bytes(name.removesuffix(".zip") + ".csv", csv_bytes(table, market, interval, day))


def checksum_of(payload: bytes, file_name: str) -> bytes:
    """A ``.CHECKSUM`` object's bytes: ``<sha256>  <file name>``."""
    return f"{hashlib.sha256(payload).hexdigest()}  {file_name}\n".encode()


def _ok(item: VisionObject, payload: bytes) -> Answer:
    content_type = "application/zip" if item.obj == "zip" else "binary/octet-stream"
    return Answer(
        200,
        payload,
        {
            "Content-Type": content_type,
            "Content-Length": str(len(payload)),
            "ETag": f'"{hashlib.md5(payload).hexdigest()}"',
            "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
            "Accept-Ranges": "bytes",
        },
    )


def s3_backend() -> Any:
    """moto's S3 backend of its default account, where the bucket lives (moto-internal, see docs/compat.md)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backends = s3_backends[DEFAULT_ACCOUNT_ID]
    try:
        return backends["aws"]  # moto 5.0.8+: one backend per partition
    except KeyError:
        return backends["global"]  # earlier moto 5: one "global" pseudo-region


class VisionBucket:
    """The bucket's content and the logic both doors share.

    Ports: the market ``truth``, the ``clock`` (now, simulated delays), the fault ``schedule`` and the
    ``recorder``; ``publish_delay`` is how long after a day closes its file appears.
    """

    def __init__(
        self,
        truth: Truth,
        clock: VirtualClock,
        schedule: FaultSchedule,
        recorder: Recorder,
        publish_delay: dt.timedelta,
    ) -> None:
        self.truth, self.clock, self.schedule, self.recorder = truth, clock, schedule, recorder
        self.publish_delay = publish_delay
        self._lock = threading.Lock()
        self.backend: Any = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Create the bucket in moto's backend (its files appear lazily, when first asked for)."""
        self.backend = s3_backend()
        if BUCKET not in self.backend.buckets:
            self.backend.create_bucket(BUCKET, REGION)

    def stop(self) -> None:
        """Remove the bucket (and only it) from moto's backend, so no file outlives the world."""
        from moto.s3.models import s3_backends

        if self.backend is not None:
            self.backend.buckets.pop(BUCKET, None)
            s3_backends.bucket_accounts.pop(BUCKET, None)

    # --- content ---------------------------------------------------------------------------------
    def has_day(self, market: str, symbol: str, interval: str, day: dt.date, now: dt.datetime) -> bool:
        """Whether Vision has published ``day``'s file at ``now``."""
        if interval not in MARKETS[market].intervals or not self.truth.has_symbol(market, symbol):
            return False
        if day_end(day) + self.publish_delay > now:
            return False
        return self.day_table(market, symbol, interval, day).num_rows > 0

    def published(self, item: VisionObject) -> bool:
        """Whether Vision has this object's day at the world's current "now"."""
        return self.has_day(item.market, item.symbol, item.interval, item.day, self.clock.now())

    def day_table(self, market: str, symbol: str, interval: str, day: dt.date) -> pa.Table:
        """The day's true bars."""
        start, end = day_bounds_ms(day)
        return self.truth.klines(market, symbol, interval, start, end)

    def genuine_zip(self, market: str, symbol: str, interval: str, day: dt.date) -> bytes:
        """The day's zip as Binance publishes it."""
        return _genuine_zip(self.truth, market, symbol, interval, day)

    checksum_of = staticmethod(checksum_of)

    def materialize(self, item: VisionObject) -> bool:
        """Put the day's zip and CHECKSUM into the bucket if Vision has published them; say whether it has."""
        if not self.published(item):
            return False
        with self._lock:
            zip_key = item.key.removesuffix(CHECKSUM_SUFFIX)
            if zip_key not in self.backend.buckets[BUCKET].keys:
                payload = self.genuine_zip(item.market, item.symbol, item.interval, item.day)
                self.backend.put_object(BUCKET, zip_key, payload)
                self.backend.put_object(BUCKET, checksum_key(zip_key), checksum_of(payload, item.file_name))
        return True

    def stored(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, if any."""
        obj = self.backend.buckets[BUCKET].keys.get(key) if self.backend else None
        return None if obj is None else bytes(obj.value)

    # --- the answer both doors give ----------------------------------------------------------------
    def answer(self, door: str, key: str, url: str) -> Answer:
        """Answer a GET/HEAD of ``key`` through ``door``: a fault in scope, the file, or 404 NoSuchKey."""
        item = parse_key(key)
        if item is None:
            return Answer(404, _s3_error("NoSuchKey", "The specified key does not exist.", key), dict(_XML))
        target = Target(item.market, item.symbol, item.interval, (item.day,), item.obj)
        fired = self.schedule.answering_fault(
            "vision", item.market, item.symbol, item.interval, [item.day], door=door, obj=item.obj
        )
        if fired is not None:
            day = self.schedule.last_day or item.day
            self.recorder.fault(fired.id, "vision", day, self.schedule.last_attempt, url)
            faulted = _EFFECTS[fired.kind.effect.kind](self, fired, item)
            if faulted is not None:
                return replace(faulted, target=target)
        if not self.materialize(item):
            answer = Answer(404, _s3_error("NoSuchKey", "The specified key does not exist.", key), dict(_XML))
            return replace(answer, target=target)
        payload = self.stored(key)
        assert payload is not None
        return replace(_ok(item, payload), target=target)

    # --- effects (one function per effect kind of the fault table) ---------------------------------
    def _s3_error(self, fault: Fault, item: VisionObject) -> Answer:
        effect = fault.kind.effect
        key = item.key if effect.status == 404 else None
        return Answer(effect.status, _s3_error(effect.code, effect.message, key), dict(_XML))

    def _transport(self, fault: Fault, item: VisionObject) -> Answer:
        return Answer(transport=fault.kind.effect.kind)  # "connect" or "reset": the client's own error

    def _timeout(self, fault: Fault, item: VisionObject) -> Answer:
        self.clock.advance(float(fault.param("timeout")))
        return Answer(transport="timeout")

    def _delay(self, fault: Fault, item: VisionObject) -> None:
        self.clock.advance(float(fault.param("delay")))
        return None  # the normal answer, late

    def _spoiled(self, fault: Fault, item: VisionObject) -> Answer | None:
        if not self.materialize(item):
            return None  # content faults need a published file to spoil
        kind = fault.kind.effect
        if kind.kind == "truncate":
            genuine = self.genuine_zip(item.market, item.symbol, item.interval, item.day)
            return _ok(item, genuine[: int(len(genuine) * float(fault.param("keep")))])
        if kind.kind == "html_page":
            return _ok(item, _NOT_A_ZIP)
        if kind.kind == "alter_values":
            table = self.day_table(item.market, item.symbol, item.interval, item.day)
            altered = table.set_column(4, "close", pc.multiply(table["close"], 1.01))
            member = item.file_name.removesuffix(".zip") + ".csv"
            return _ok(item, zip_bytes(member, csv_bytes(altered, item.market, item.interval, item.day)))
        # other_file: another symbol's or interval's genuine file, with a matching CHECKSUM
        symbol = str(fault.param("other")) if kind.swap == "symbol" else item.symbol
        interval = str(fault.param("other")) if kind.swap == "interval" else item.interval
        wrong = self.genuine_zip(item.market, symbol, interval, item.day)
        return _ok(item, wrong if item.obj == "zip" else checksum_of(wrong, item.file_name))


_EFFECTS: dict[str, Callable[[VisionBucket, Fault, VisionObject], Answer | None]] = {
    "s3_error": VisionBucket._s3_error,
    "connect": VisionBucket._transport,
    "reset": VisionBucket._transport,
    "timeout": VisionBucket._timeout,
    "delay": VisionBucket._delay,
    "truncate": VisionBucket._spoiled,
    "html_page": VisionBucket._spoiled,
    "alter_values": VisionBucket._spoiled,
    "other_file": VisionBucket._spoiled,
}


class LazyAws:
    """moto's AWS mock for the S3 door, started the first time a botocore client talks to the world (it costs
    ~15 ms; most engines never use S3), with ``bucket``'s files made again in its clean backend."""

    def __init__(self, bucket: VisionBucket) -> None:
        self.bucket = bucket
        self._mock: Any = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the mock once; engine threads running at once all find the bucket there."""
        with self._lock:
            if self._mock is None:
                from moto import mock_aws

                mock = mock_aws()
                mock.start()
                self.bucket.start()  # the mock starts from a clean backend: the bucket again (files come lazily)
                self._mock = mock

    def stop(self) -> None:
        """Stop the mock if it was started."""
        if self._mock is not None:
            mock, self._mock = self._mock, None
            mock.stop()
