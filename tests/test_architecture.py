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


def _cycles(graph: grimp.ImportGraph) -> list[tuple[str, str]]:
    found = []
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported != module and graph.chain_exists(importer=imported, imported=module):
                found.append((module, imported))
    return found


def test_no_import_cycles():
    graph = grimp.build_graph("pytest_fcp", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path, monkeypatch):
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from cyclic import b\n")
    (package / "b.py").write_text("from cyclic import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("cyclic", cache_dir=None)
    assert ("cyclic.a", "cyclic.b") in _cycles(graph)


def test_no_module_is_too_long():
    long = {
        str(path.relative_to(ROOT)): n
        for path in (ROOT / "pytest_fcp").rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 460
    }
    assert long == {}
