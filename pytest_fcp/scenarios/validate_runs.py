"""How a scenario runs, validated: several engine instances on one cache (``engines``, ``together``, each
request's ``engine``) and crash points (``crash``). Errors name the field, what is wrong and what is allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from pytest_fcp.scenarios.model import Request

__all__ = ["MAX_ENGINES", "Fail", "crash_value", "engines_asked", "instances"]

Fail = Callable[[str, str], NoReturn]
#: The most engine instances one scenario may run on one cache.
MAX_ENGINES = 8


def instances(data: dict[str, Any], fail: Fail) -> tuple[int, bool]:
    """The scenario's engine instances on one cache, and whether they run together."""
    engines = data.get("engines", 1)
    if isinstance(engines, bool) or not isinstance(engines, int) or not 1 <= engines <= MAX_ENGINES:
        fail("engines", f"{engines!r}: allowed a number of engine instances on one cache, 1 to {MAX_ENGINES}")
    together = data.get("together", False)
    if not isinstance(together, bool):
        fail("together", f"{together!r}: allowed true (the instances run at once, one thread each) or false")
    if together and engines < 2:
        fail("together", "needs engines = 2 or more (instances that run at once)")
    return engines, together


def engines_asked(requests: tuple[Request, ...], engines: int, together: bool, fail: Fail) -> None:
    """Each request names an instance the scenario has; together, every instance asks and no clock steps."""
    for i, request in enumerate(requests):
        what = f"request[{i}]" if len(requests) > 1 else "request"
        if request.engine >= engines:
            fail(
                f"{what}.engine",
                f"engine {request.engine + 1}, but the scenario has {engines} (allowed: 1 .. {engines})",
            )
        if together and request.at is not None:
            fail(f"{what}.at", "a clock step cannot happen while the instances run together; drop at or together")
    idle = sorted(set(range(engines)) - {r.engine for r in requests})
    if idle:
        fail(
            "engines",
            f"engine {idle[0] + 1} makes no request; give it one (request.engine = {idle[0] + 1}) or lower engines",
        )


def crash_value(raw: Any, requests: int, fail: Fail) -> str | tuple[int, ...] | None:
    """``crash``: ``"every"``, a crash point's number or a list of them (from 1); at most two requests."""
    if raw is None:
        return None
    numbers = [raw] if isinstance(raw, int) and not isinstance(raw, bool) else raw
    if raw != "every" and not (
        isinstance(numbers, list) and numbers and all(type(n) is int and 1 <= n <= 1000 for n in numbers)
    ):
        fail("crash", f'expected "every", a crash point number from 1 to 1000 or a list of them, got {raw!r}')
    if requests > 2:
        fail(
            "crash",
            f"{requests} requests; a crash scenario has one (crashed, then fetched again) or two (the second is "
            "the fetch after the crash)",
        )
    return "every" if raw == "every" else tuple(sorted(set(numbers)))
