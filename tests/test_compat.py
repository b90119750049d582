"""docs/compat.md and pyproject.toml agree: every package whose private parts are used has the documented upper
bound, and every floor is declared with a lower bound."""

from __future__ import annotations

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _declared() -> dict[str, list[str]]:
    """Each direct dependency's specifiers (one per marker variant), by name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    declared: dict[str, list[str]] = {}
    for requirement in requirements:
        match = re.match(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?\s*([^;]*)", requirement)
        assert match, requirement
        declared.setdefault(match[1].lower(), []).append(match[3].strip())
    return declared


def _documented_bounds() -> dict[str, str]:
    """The upper bound docs/compat.md gives each package in its private-parts table: ``| name (`<N`...) |``."""
    text = (ROOT / "docs" / "compat.md").read_text()
    section = text.split("## Private parts used", 1)[1]
    return {m[1].lower(): m[2] for m in re.finditer(r"^\| ([A-Za-z0-9_.-]+) \(`(<[^`]+)`", section, re.M)}


def test_every_package_with_private_parts_has_its_documented_upper_bound() -> None:
    declared, bounds = _declared(), _documented_bounds()
    assert {"pytest", "httpx", "urllib3", "aiohttp", "aioresponses", "moto", "botocore", "loguru"} <= set(bounds)
    for name, bound in bounds.items():
        assert name in declared, f"{name}: private parts used but not a declared dependency"
        for spec in declared[name]:
            assert bound in spec.split(","), f"{name}: declared {spec!r}, docs/compat.md says {bound}"


def test_every_dependency_has_a_floor() -> None:
    for name, specs in _declared().items():
        for spec in specs:
            assert ">=" in spec, f"{name}: no floor ({spec!r}); the floors job would install its oldest release"
