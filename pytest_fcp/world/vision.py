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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pytest_fcp.core.markets import MARKETS, day_bounds_ms, interval_ms, vision_file_name

if TYPE_CHECKING:
    from pytest_fcp.faults import Fault
    from pytest_fcp.world.world import World

__all__ = ["BUCKET", "REGION", "Answer", "VisionBucket", "VisionObject", "csv_bytes", "zip_bytes"]

BUCKET = "data.binance.vision"
REGION = "ap-northeast-1"
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)
_PREFIX_TO_MARKET = {spec.vision_prefix: name for name, spec in MARKETS.items()}
_KEY_RE = re.compile(
    r"^(?P<prefix>data/spot|data/futures/um|data/futures/cm)/daily/klines/(?P<symbol>[A-Z0-9_]+)/"
    r"(?P<interval>[0-9]+[smhdwM])/(?P=symbol)-(?P=interval)-(?P<day>\d{4}-\d{2}-\d{2})\.zip(?P<checksum>\.CHECKSUM)?$"
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
        return vision_file_name(self.symbol, self.interval, self.day)


@dataclass
class Answer:
    """A door-neutral answer: an HTTP status with headers and body, or a transport failure."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] | None = None
    transport: str | None = None  # "connect" | "timeout"


def parse_key(key: str) -> VisionObject | None:
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
_HTTP_FAULTS = {
    "vision.http403": (403, "AccessDenied", "Access Denied"),
    "vision.http404": (404, "NoSuchKey", "The specified key does not exist."),
    "vision.http500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "vision.http503": (503, "SlowDown", "Please reduce your request rate."),
}
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


class VisionBucket:
    """The bucket's content and the logic both doors share."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._lock = threading.Lock()
        self.backend: Any = None

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        self.backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        if BUCKET not in self.backend.buckets:
            self.backend.create_bucket(BUCKET, REGION)

    def stop(self) -> None:
        """Remove the bucket (and only it) from moto's backend, so no file outlives the world."""
        from moto.s3.models import s3_backends

        if self.backend is not None:
            self.backend.buckets.pop(BUCKET, None)
            s3_backends.bucket_accounts.pop(BUCKET, None)

    # --- content ---------------------------------------------------------------------------------
    def published(self, item: VisionObject) -> bool:
        """Whether Vision has this day's file at the world's current "now"."""
        world = self.world
        if item.interval not in MARKETS[item.market].intervals:
            return False
        if not world.truth.has_symbol(item.market, item.symbol):
            return False
        day_end = dt.datetime.combine(item.day, dt.time(), dt.UTC) + dt.timedelta(days=1)
        if day_end + world.publish_delay > world.clock.now():
            return False
        return self.day_table(item.market, item.symbol, item.interval, item.day).num_rows > 0

    def day_table(self, market: str, symbol: str, interval: str, day: dt.date) -> pa.Table:
        start, end = day_bounds_ms(day)
        return self.world.truth.klines(market, symbol, interval, start, end)

    def genuine_zip(self, market: str, symbol: str, interval: str, day: dt.date) -> bytes:
        return _genuine_zip(self.world.truth, market, symbol, interval, day)

    @staticmethod
    def checksum_of(payload: bytes, file_name: str) -> bytes:
        return f"{hashlib.sha256(payload).hexdigest()}  {file_name}\n".encode()

    def materialize(self, item: VisionObject) -> bool:
        """Put the day's zip and CHECKSUM into the bucket if Vision has published them; say whether it has."""
        if not self.published(item):
            return False
        with self._lock:
            zip_key = item.key.removesuffix(".CHECKSUM")
            if zip_key not in self.backend.buckets[BUCKET].keys:
                payload = self.genuine_zip(item.market, item.symbol, item.interval, item.day)
                self.backend.put_object(BUCKET, zip_key, payload)
                self.backend.put_object(BUCKET, zip_key + ".CHECKSUM", self.checksum_of(payload, item.file_name))
        return True

    def stored(self, key: str) -> bytes | None:
        obj = self.backend.buckets[BUCKET].keys.get(key) if self.backend else None
        return None if obj is None else bytes(obj.value)

    # --- the answer both doors give ----------------------------------------------------------------
    def answer(self, door: str, key: str, url: str) -> Answer:
        item = parse_key(key)
        fired: Fault | None = None
        if item is not None:
            fired = self.world.faults.strike(
                "vision", item.market, item.symbol, item.interval, [item.day], door=door, obj=item.obj
            )
            if fired is not None:
                self.world.record_fault(fired, "vision", item.day, url)
        if fired is not None and item is not None:
            faulted = self._faulted(fired, item)
            if faulted is not None:
                return faulted
        if item is None or not self.materialize(item):
            return Answer(404, _s3_error("NoSuchKey", "The specified key does not exist.", key), dict(_XML))
        payload = self.stored(key)
        assert payload is not None
        return self._ok(item, payload)

    @staticmethod
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

    def _faulted(self, fault: Fault, item: VisionObject) -> Answer | None:
        fid = fault.id
        if fid in _HTTP_FAULTS:
            status, code, message = _HTTP_FAULTS[fid]
            return Answer(status, _s3_error(code, message, item.key if status == 404 else None), dict(_XML))
        if fid == "vision.connect_error":
            return Answer(transport="connect")
        if fid == "vision.read_timeout":
            self.world.clock.advance(float(fault.param("timeout")))
            return Answer(transport="timeout")
        if fid == "vision.slow":
            self.world.clock.advance(float(fault.param("delay")))
            return None  # the normal answer, late
        if fid == "vision.missing_checksum":
            return Answer(404, _s3_error("NoSuchKey", "The specified key does not exist.", item.key), dict(_XML))
        if not self.materialize(item):
            return None  # content faults need a published file to spoil
        genuine = self.genuine_zip(item.market, item.symbol, item.interval, item.day)
        if fid == "vision.truncated_zip":
            return self._ok(item, genuine[: int(len(genuine) * float(fault.param("keep")))])
        if fid == "vision.not_a_zip":
            return self._ok(item, _NOT_A_ZIP)
        if fid == "vision.checksum_mismatch":
            table = self.day_table(item.market, item.symbol, item.interval, item.day)
            altered = table.set_column(4, "close", pc.multiply(table["close"], 1.01))
            member = item.file_name.removesuffix(".zip") + ".csv"
            return self._ok(item, zip_bytes(member, csv_bytes(altered, item.market, item.interval, item.day)))
        if fid in ("vision.wrong_symbol", "vision.wrong_interval"):
            symbol = str(fault.param("other")) if fid == "vision.wrong_symbol" else item.symbol
            interval = str(fault.param("other")) if fid == "vision.wrong_interval" else item.interval
            wrong = self.genuine_zip(item.market, symbol, interval, item.day)
            if item.obj == "zip":
                return self._ok(item, wrong)
            return self._ok(item, self.checksum_of(wrong, item.file_name))
        raise AssertionError(f"vision fault {fid} has no effect defined")  # pragma: no cover
