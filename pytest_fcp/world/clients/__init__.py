"""The client doors: how each HTTP client library's requests reach the sealed network.

One module a client. Each has ``route(network)``, a context manager that routes the client's requests to
:meth:`~pytest_fcp.world.answer.DoorPort.serve` (the sealed network's) while it is open and undoes its patch
when it closes; requests to this machine (:func:`pytest_fcp.core.hosts.is_local`) pass through.
A door opens only when its libraries are installed; its module (and so the library) is imported then, at
the first world's start, never when ``pytest_fcp.world`` is imported. aiohttp costs about half a second to
import, so its door opens only when the engine has imported aiohttp already (at module level, as usual) when
the world starts; an engine importing it later is still sealed (its DNS lookups are violations).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_fcp.world.answer import DoorPort

__all__ = ["DOORS", "WHEN_IMPORTED", "installed_doors", "open_doors"]

#: Each door's module and the libraries it needs, in the order the doors open.
DOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("httpx_door", ("httpx", "respx")),
    ("requests_door", ("requests", "responses")),
    ("urllib3_door", ("urllib3",)),
    ("aiohttp_door", ("aiohttp", "aioresponses")),
)
#: Doors that open only when their client is already imported (see the module docstring).
WHEN_IMPORTED = {"aiohttp_door": "aiohttp"}
_installed: dict[str, bool] = {}


def _has(name: str) -> bool:
    found = _installed.get(name)
    if found is None:
        found = _installed[name] = importlib.util.find_spec(name) is not None
    return found


def installed_doors() -> list[str]:
    """The doors whose libraries are installed (and, for some, imported: see the module docstring)."""
    return [
        door
        for door, needs in DOORS
        if all(_has(name) for name in needs) and WHEN_IMPORTED.get(door, "sys") in sys.modules
    ]


def open_doors(network: DoorPort, stack: contextlib.ExitStack) -> None:
    """Open every installed door on ``stack`` (closing the stack closes them, in reverse)."""
    for door in installed_doors():
        module = importlib.import_module(f"{__name__}.{door}")
        stack.enter_context(module.route(network))
