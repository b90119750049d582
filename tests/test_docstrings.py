"""Every public function, method and class in the package has a docstring."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "pytest_fcp"


def missing_docstrings(root: pathlib.Path) -> list[str]:
    """``path:line name`` of each public function, method and class under ``root`` that has no docstring.

    Public means the name does not start with ``_`` and no enclosing class is private; functions nested in
    functions are not part of the API and are not looked at.
    """
    found: list[str] = []

    def walk(node: ast.AST, path: pathlib.Path, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            if child.name.startswith("_"):
                continue
            if ast.get_docstring(child) is None:
                found.append(f"{path}:{child.lineno} {prefix}{child.name}")
            if isinstance(child, ast.ClassDef):
                walk(child, path, f"{prefix}{child.name}.")

    for path in sorted(root.rglob("*.py")):
        walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), path, "")
    return found


def test_every_public_callable_has_a_docstring():
    missing = missing_docstrings(PACKAGE)
    assert not missing, f"{len(missing)} public definitions without a docstring:\n" + "\n".join(missing)


def test_the_walker_catches_a_missing_docstring(tmp_path):
    module = tmp_path / "pkg" / "mod.py"
    module.parent.mkdir()
    module.write_text(
        '"""A module."""\n'
        "\n"
        "def documented():\n"
        '    """Documented."""\n'
        "\n"
        "def bare():\n"
        "    pass\n"
        "\n"
        "class Thing:\n"
        '    """Documented."""\n'
        "\n"
        "    def method(self):\n"
        "        pass\n"
        "\n"
        "    def _private(self):\n"
        "        pass\n"
        "\n"
        "class _Hidden:\n"
        "    def method(self):\n"
        "        pass\n"
        "\n"
        "class Bare:\n"
        "    async def run(self):\n"
        "        def helper():\n"
        "            pass\n",
        encoding="utf-8",
    )
    assert missing_docstrings(tmp_path) == [
        f"{module}:6 bare",
        f"{module}:12 Thing.method",
        f"{module}:22 Bare",
        f"{module}:23 Bare.run",
    ]
