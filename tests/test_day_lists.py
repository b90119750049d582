"""Day lists in verdicts: short runs listed day by day, long runs of consecutive days as one range, and nothing
lost either way (the text reads back as the very days)."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import given
from hypothesis import strategies as st

from pytest_fcp.contract.checks import RUN_DAYS, _days

D = dt.date(2024, 1, 1)


def _read_back(text: str) -> list[dt.date]:
    days: list[dt.date] = []
    for part in text.split(", "):
        run = re.fullmatch(r"(\S+) \.\. (\S+) \((\d+) days\)", part)
        if run:
            first, last = dt.date.fromisoformat(run[1]), dt.date.fromisoformat(run[2])
            assert (last - first).days + 1 == int(run[3]) >= RUN_DAYS
            days += [first + dt.timedelta(days=i) for i in range(int(run[3]))]
        else:
            days.append(dt.date.fromisoformat(part))
    return days


def test_a_long_run_is_one_range_and_a_short_one_is_listed() -> None:
    long = [D + dt.timedelta(days=i) for i in range(1501)]
    assert _days(long) == "2024-01-01 .. 2028-02-09 (1501 days)"
    short = [D + dt.timedelta(days=i) for i in range(RUN_DAYS - 1)]
    assert _days(short) == ", ".join(d.isoformat() for d in short)
    mixed = [D, *(D + dt.timedelta(days=10 + i) for i in range(RUN_DAYS)), D + dt.timedelta(days=40)]
    assert _days(mixed) == "2024-01-01, 2024-01-11 .. 2024-01-18 (8 days), 2024-02-10"


@given(st.lists(st.integers(0, 400), unique=True).map(sorted))
def test_the_text_reads_back_as_the_days(offsets: list[int]) -> None:
    days = [D + dt.timedelta(days=o) for o in offsets]
    assert _read_back(_days(days)) == days if days else _days(days) == ""
