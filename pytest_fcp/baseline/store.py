"""The behaviour-baseline file of one engine: ``<engine>.toml``, loaded with validation, written deterministically.

Format 1 (hand-rendered so that a behaviour change is a small diff: scenarios sorted by id, keys in a fixed
order, one line per day)::

  format = 1
  engine = "ckvd"

  ["basics/second_fetch_from_cache"]
  outcome = ["data", "data"]            # one per fetch; a plain string when the scenario fetches once
  failures = [
    "needed_only: asked Vision for day(s) outside the request: 2024-01-05",
  ]
  totals = { vision = 6, rest = 0, rest_weight = 0, retries = 0, sleeps = 0 }

  ["basics/second_fetch_from_cache".days]      # the first fetch, one line per UTC day of its request
  2024-01-02 = { cache_before = "missing", vision = "s3 200 x2", rest = "", rows = "vision 24", cache_after = "valid" }

  ["basics/second_fetch_from_cache".days_2]    # the second fetch (days_3 ... for further ones)
  2024-01-02 = { cache_before = "valid", vision = "", rest = "", rows = "cache 24", cache_after = "valid" }

Every key is required. A file holding only ``[expected_failures]`` is the old expectations format: it is
recognised (:class:`LegacyBaselineError`) and :func:`update_baseline` replaces it.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_fcp.baseline.record import DAY_FIELDS, Record, RecordError, days_key, describe

__all__ = [
    "FORMAT",
    "Baseline",
    "BaselineError",
    "LegacyBaselineError",
    "load_baseline",
    "read_legacy_expectations",
    "render_baseline",
    "update_baseline",
    "validate_ids",
    "write_baseline",
]

#: The format version this module reads and writes.
FORMAT = 1

HEADER = """\
# Behaviour baseline of the {name} engine against the pytest-fcp scenario catalog (format {format}).
# Per scenario: how each fetch ended (outcome), the contract failures found, request totals, and per UTC day
# of the request the cache state before, Vision's and REST's answers, where the rows came from and the cache
# state after. A run compares each scenario with its entry and reports what got worse, better or changed.
# Do not edit by hand; rewrite it from a run (add -k ... to rewrite only the selected scenarios):
#   pytest --fcp-scenarios --fcp-engine {engine} --fcp-update-baselines
"""

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
_REWRITE = "fix the syntax or rewrite the file with --fcp-update-baselines"
_MIGRATE = "rerun with --fcp-update-baselines to replace it with a behaviour baseline"


class BaselineError(Exception):
    """A baseline file cannot be used; ``str()`` is one line naming the file, scenario and field."""

    def __init__(self, path: os.PathLike[str] | str, scenario: str | None, field: str | None, message: str) -> None:
        self.path, self.scenario, self.field = pathlib.Path(path), scenario, field
        self.message = " ".join(message.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        where = [f"scenario {json.dumps(self.scenario, ensure_ascii=False)}"] if self.scenario is not None else []
        where += [f"field {self.field}"] if self.field else []
        return f"{self.path}: " + (", ".join(where) + ": " if where else "") + self.message


class LegacyBaselineError(BaselineError):
    """The file is in the old expectations format (a single ``[expected_failures]`` table)."""


@dataclass(frozen=True)
class Baseline:
    """A loaded baseline file: its engine and the record of each scenario id."""

    engine: str
    records: dict[str, Record] = field(default_factory=dict)


def _read_toml(path: pathlib.Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BaselineError(path, None, None, f"cannot read it ({exc.strerror or exc}); a readable file") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BaselineError(
            path, None, None, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); a UTF-8 TOML file"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BaselineError(path, None, None, f"not valid TOML ({exc}); {_REWRITE}") from None


def _is_legacy(doc: Mapping[str, Any]) -> bool:
    return "expected_failures" in doc and "format" not in doc


def load_baseline(path: os.PathLike[str] | str, engine: str | None = None) -> Baseline:
    """The validated baseline in ``path`` (of ``engine``, when given); raises :class:`BaselineError`."""
    path = pathlib.Path(path)
    doc = _read_toml(path)
    if _is_legacy(doc):
        message = f"this is the old expectations format ([expected_failures]); {_MIGRATE}"
        raise LegacyBaselineError(path, None, None, message)
    version = doc.get("format")
    if "format" not in doc or type(version) is not int:
        got = "missing" if "format" not in doc else f"is {describe(version)}"
        raise BaselineError(path, None, "format", f"{got}; allowed: format = {FORMAT}")
    if version != FORMAT:
        raise BaselineError(
            path, None, "format", f"version {version} is not supported; this pytest-fcp reads format {FORMAT} only"
        )
    name = doc.get("engine")
    if not isinstance(name, str) or not name:
        got = "missing" if "engine" not in doc else f"is {describe(name)}"
        raise BaselineError(path, None, "engine", f'{got}; allowed: the engine\'s name, e.g. engine = "ckvd"')
    if engine is not None and name != engine:
        raise BaselineError(path, None, "engine", f'is "{name}", not "{engine}"; allowed: the engine this file is for')
    records: dict[str, Record] = {}
    for key, value in doc.items():
        if key in ("format", "engine"):
            continue
        if not isinstance(value, dict):
            if "/" in key:
                raise BaselineError(path, key, None, f"is {describe(value)}; allowed: a table per scenario")
            raise BaselineError(path, None, key, "unknown key; allowed: format, engine, then one table per scenario id")
        try:
            records[key] = Record.from_data(value)
        except RecordError as exc:
            raise BaselineError(path, key, exc.field, f"{exc.problem}; {exc.allowed}".rstrip("; ")) from None
    return Baseline(name, records)


def read_legacy_expectations(path: os.PathLike[str] | str) -> dict[str, str]:
    """The ``scenario id -> reason`` table of an old-format expectations file; raises :class:`BaselineError`."""
    path = pathlib.Path(path)
    doc = _read_toml(path)
    if not _is_legacy(doc) or set(doc) != {"expected_failures"}:
        message = "not an old expectations file; allowed: a single [expected_failures] table"
        raise BaselineError(path, None, None, message)
    table = doc["expected_failures"]
    if not isinstance(table, dict):
        raise BaselineError(path, None, "expected_failures", f"is {describe(table)}; allowed: a table of id = reason")
    for key, reason in table.items():
        if not isinstance(reason, str):
            raise BaselineError(path, key, "expected_failures", f"is {describe(reason)}; allowed: a reason string")
    return dict(table)


def validate_ids(baseline: Baseline, known_ids: Iterable[str]) -> list[str]:
    """The baseline's scenario ids that are not in ``known_ids``, sorted."""
    return sorted(set(baseline.records) - set(known_ids))


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(text: str) -> str:
    return text if _BARE_KEY.fullmatch(text) else _string(text)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"


def _comment(text: str) -> str:
    return "".join(char if char.isprintable() else "?" for char in text)


def render_baseline(engine: str, records: Mapping[str, Record]) -> str:
    """The text of the baseline file of ``engine`` holding ``records``: the same for the same records."""
    lines = [HEADER.format(name=_comment(repr(engine)), engine=_comment(engine), format=FORMAT), f"format = {FORMAT}"]
    lines.append(f"engine = {_string(engine)}")
    for scenario in sorted(records):
        record, table = records[scenario], _key(scenario)
        lines += ["", f"[{table}]", f"outcome = {_value(record.to_data()['outcome'])}"]
        if len(record.failures) <= 1:
            lines.append(f"failures = {_value(list(record.failures))}")
        else:
            lines += ["failures = [", *(f"  {_string(key)}," for key in record.failures), "]"]
        lines.append(f"totals = {_value(record.totals.to_data())}")
        for i, fetch in enumerate(record.fetches):
            lines.append(f"[{table}.{days_key(i)}]")
            lines += [f"{row.day} = {_value({f: getattr(row, f) for f in DAY_FIELDS})}" for row in fetch.days]
    return "\n".join(lines) + "\n"


def write_baseline(path: os.PathLike[str] | str, engine: str, records: Mapping[str, Record]) -> pathlib.Path:
    """Write the baseline of ``engine`` to ``path`` atomically (temporary file, then replace); returns the path."""
    path = pathlib.Path(path)
    data = render_baseline(engine, records).encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            pathlib.Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BaselineError(path, None, None, f"cannot write it ({exc.strerror or exc}); a writable path") from None
    return path


def update_baseline(
    path: os.PathLike[str] | str,
    engine: str,
    records: Mapping[str, Record],
    only: set[str] | None = None,
    remove: Iterable[str] = (),
) -> Baseline:
    """Rewrite ``path`` with ``records`` (only the ids in ``only``, keeping the others), dropping ``remove``.

    With ``only=None`` the file becomes exactly ``records``. With ``only`` given, each id in it that has a record
    is replaced or added, an id without a record keeps its entry, and every other entry is kept. A missing file
    or one in the old expectations format starts empty; any other unreadable file raises :class:`BaselineError`.
    """
    path = pathlib.Path(path)
    merged: dict[str, Record] = {}
    if only is not None and path.exists():
        try:
            merged = dict(load_baseline(path, engine).records)
        except LegacyBaselineError:
            merged = {}
    if only is None:
        merged = dict(records)
    else:
        merged.update({scenario: records[scenario] for scenario in only if scenario in records})
    for scenario in remove:
        merged.pop(scenario, None)
    write_baseline(path, engine, merged)
    return Baseline(engine, merged)
