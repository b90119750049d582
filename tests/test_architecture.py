"""The package's shape: imports flow one way (import-linter's layers), no module imports itself back through
another (no cycle), and no module grows past what one person reads."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import grimp
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_import_layers_are_kept():
    lint = pathlib.Path(sys.executable).with_name("lint-imports")
    if not lint.exists():
        pytest.skip("import-linter is not installed in this environment")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def _module_cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """(module, imported) pairs where ``imported`` leads back to ``module``."""
    found = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                found.append((module, imported))
    return found


def _sibling_cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    """(child, child) pairs of one package that import each other, each subpackage taken as a whole.

    A cycle through a subpackage can be invisible module by module: ``world.network`` imported
    ``world.clients`` (whose ``__init__`` imports its doors by name, with ``importlib``, which no static graph
    sees) while ``world.clients.urllib3_door`` imported ``world.network``; no chain of modules leads from one
    back to the other, yet the two parts need each other.
    """
    found = []
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        inside = [m for m in graph.modules if m.startswith(package + ".")]
        unit = {m: package + "." + m[len(package) + 1 :].split(".")[0] for m in inside}
        edges: dict[str, set[str]] = {}
        for module in inside:
            for imported in graph.find_modules_directly_imported_by(module):
                if imported in unit and unit[imported] != unit[module]:
                    edges.setdefault(unit[module], set()).add(unit[imported])
        for start in sorted(edges):
            for step in sorted(edges[start]):
                seen, todo = set(), [step]
                while todo and start not in seen:
                    here = todo.pop()
                    if here not in seen:
                        seen.add(here)
                        todo.extend(edges.get(here, ()))
                if start in seen:
                    found.append((start, step))
    return found


def _cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    return _module_cycles(graph) + _sibling_cycles(graph)


def test_no_import_cycles():
    # no cache: a stale one could hide an import (the graph takes a few hundredths of a second to build)
    graph = grimp.build_graph("pytest_fcp", exclude_type_checking_imports=True, cache_dir=None)
    assert _cycles(graph) == []


def _package(root: pathlib.Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    _package(
        tmp_path,
        {
            "cyclic/__init__.py": "",
            "cyclic/a.py": "def f():\n    from cyclic import b\n",
            "cyclic/b.py": "from cyclic import a\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic", cache_dir=None)
    assert ("cyclic.a", "cyclic.b") in _cycles(graph)


def test_the_cycle_finder_finds_a_cycle_through_a_subpackage(tmp_path, monkeypatch):
    # the shape network <-> clients had: a module imports a subpackage that loads its modules by name, one of
    # which imports the module back (in a function); module by module there is no cycle
    _package(
        tmp_path,
        {
            "layered/__init__.py": "",
            "layered/network.py": "from layered.doors import open_doors\nfrom layered.doors.one import Error\n",
            "layered/doors/__init__.py": "import importlib\n\ndef open_doors():\n"
            "    return importlib.import_module(__name__ + '.two')\n",
            "layered/doors/one.py": "class Error(Exception):\n    pass\n",
            "layered/doors/two.py": "def route():\n    from layered.network import open_doors\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("layered", cache_dir=None)
    assert _module_cycles(graph) == []
    assert _cycles(graph) == [("layered.doors", "layered.network"), ("layered.network", "layered.doors")]


def test_the_cycle_finder_is_silent_on_one_way_imports(tmp_path, monkeypatch):
    _package(
        tmp_path,
        {
            "oneway/__init__.py": "",
            "oneway/network.py": "from oneway.doors import two\nfrom oneway import port\n",
            "oneway/port.py": "",
            "oneway/doors/__init__.py": "",
            "oneway/doors/two.py": "def route():\n    from oneway import port\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _cycles(grimp.build_graph("oneway", cache_dir=None)) == []


def test_no_module_is_too_long():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "pytest_fcp").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 460
    }
    assert long == {}
