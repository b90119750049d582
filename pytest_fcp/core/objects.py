"""``package.module:attr`` specs: resolving the Python object an option names (an engine factory, an example
database), once for every reader."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ObjectSpecError", "resolve_object"]


class ObjectSpecError(Exception):
    """A ``module:attr`` spec that does not resolve: its module cannot be imported (``missing == "module"``,
    ``detail`` the ImportError's words) or it lacks the attribute (``missing == "attribute"``)."""

    def __init__(self, module: str, attr: str, missing: str, detail: str = "") -> None:
        self.module, self.attr, self.missing, self.detail = module, attr, missing, detail
        if missing == "module":
            super().__init__(f"cannot import module {module!r} ({detail})")
        else:
            super().__init__(f"module {module!r} has no attribute {attr!r}")


def resolve_object(spec: str) -> Any:
    """The object ``spec`` (``package.module:attr``, ``attr`` possibly dotted) names: the module imported, the
    attribute path followed. Raises :class:`ObjectSpecError` (the ImportError chained) when either fails."""
    module_name, _, attr = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ObjectSpecError(module_name, attr, "module", str(exc)) from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ObjectSpecError(module_name, attr, "attribute") from None
    return target
