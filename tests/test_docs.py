"""The documentation tells the truth: every relative link in README.md and docs/*.md reaches a file (and a
heading, for ``#anchor`` links), and the example engine of docs/engines.md keeps the whole catalog and is named
by the verdicts when a defect is planted in it."""

from __future__ import annotations

import pathlib
import re
import shutil

import pytest

pytest_plugins = ["pytester"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "tiny_engine.py"
SCENARIOS = ["--fcp-scenarios", "-p", "no:cacheprovider", "-p", "no:randomly", "-W", "ignore"]

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")


def doc_pages(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    """README.md, CHANGELOG.md and every Markdown page under docs/."""
    pages = [root / name for name in ("README.md", "CHANGELOG.md") if (root / name).exists()]
    return pages + sorted((root / "docs").rglob("*.md"))


def _prose(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(page: pathlib.Path) -> set[str]:
    """The heading anchors of a Markdown page, as GitHub spells them (duplicates get ``-1``, ``-2`` ...)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in _prose(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def broken_links(page: pathlib.Path) -> list[str]:
    """Each relative link of ``page`` whose file or anchor does not exist, as ``page: target (why)``."""
    broken = []
    for line in _prose(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            if not dest.exists():
                broken.append(f"{page.name}: {target} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{page.name}: {target} (no heading #{anchor} in {dest.name})")
    return broken


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = doc_pages()
    assert ROOT / "README.md" in pages and len(pages) > 5
    assert [link for page in pages for link in broken_links(page)] == []


def test_the_link_check_names_a_missing_file_and_a_missing_heading(tmp_path: pathlib.Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## The `fcp` command: health\n")
    (tmp_path / "README.md").write_text(
        "# Top\n\n[ok](docs/other.md#the-fcp-command-health) [ok too](#top) [web](https://example.org/x)\n"
        "[gone](docs/missing.md) [bad anchor](docs/other.md#nowhere)\n\n```\n[in code](not/checked.md)\n```\n"
    )
    assert [link for page in doc_pages(tmp_path) for link in broken_links(page)] == [
        "README.md: docs/missing.md (no such file)",
        "README.md: docs/other.md#nowhere (no heading #nowhere in other.md)",
    ]


def test_the_readme_keeps_the_two_commands_and_stays_short() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "uv run pytest --fcp-scenarios" in readme
    assert re.search(r"^uv run pytest\s+#", readme, re.M)
    assert len(readme.splitlines()) <= 200


# --- the example engine of docs/engines.md -----------------------------------------------------------------


@pytest.fixture
def tiny(pytester: pytest.Pytester) -> pytest.Pytester:
    """A test directory holding docs/examples/tiny_engine.py, importable as ``tiny_engine``."""
    shutil.copy(EXAMPLE, pytester.path / "tiny_engine.py")
    return pytester


def test_the_example_engine_keeps_the_whole_catalog(tiny: pytest.Pytester) -> None:
    result = tiny.runpytest(*SCENARIOS, "--fcp-engine=tiny_engine:create")
    out = result.stdout.str()
    match = re.search(r"^tiny_engine:create: (\d+) conforming \((\d+) scenarios\)$", out, re.M)
    assert match and match.group(1) == match.group(2), out[-3000:]
    assert int(match.group(2)) >= 100
    result.assert_outcomes(passed=int(match.group(2)))


YOUNG_VISION = """
import tiny_engine

tiny_engine.MIN_AGE_MS = 0  # planted: Vision asked for (and the cache given) days younger than 48 h
"""


def test_a_defect_planted_in_the_example_engine_is_named(tiny: pytest.Pytester) -> None:
    tiny.makepyfile(young_vision=YOUNG_VISION)
    args = ["--fcp-engine=tiny_engine:create", "-p", "young_vision", "--fcp-seed=7"]
    result = tiny.runpytest(*SCENARIOS, *args, "-k", "recent_days_from_rest")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "basics/recent_days_from_rest on tiny_engine:create breaks the FCP contract",
            "  FAIL [order] 2024-01-09: asked Vision for a day younger than 48 h (Vision is for older days)",
            "  FAIL [cache] 2024-01-09: cached a day younger than 48 h (valid)",
            "  path: cache miss 2d -> vision 404 x1 -> rest 200 x1 -> 36 rows (rest 36)",
            "*fcp replay*",
            "*pytest --fcp-seed=7 * -p young_vision --fcp-scenarios --fcp-engine=tiny_engine:create"
            " *basics.toml::recent_days_from_rest*",
            "*FCP conformance*",
            "tiny_engine:create: 0 conforming, 1 failing, not in the baseline (1 scenarios)",
        ]
    )


# --- the counts of docs/ckvd.md -------------------------------------------------------------------------------


def _baseline_counts(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What ``scripts/baseline_counts.py`` prints for ``args``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("baseline_counts", ROOT / "scripts" / "baseline_counts.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(list(args)) == 0
    return capsys.readouterr().out


def test_the_ckvd_page_shows_what_the_count_script_prints(capsys: pytest.CaptureFixture[str]) -> None:
    page = (ROOT / "docs" / "ckvd.md").read_text(encoding="utf-8")
    block = page.split("$ python scripts/baseline_counts.py\n", 1)[1].split("```", 1)[0]
    assert block == _baseline_counts(capsys)


def test_the_count_script_counts_scenarios_per_kind(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    days = '["a/one".days]\n2024-01-02 = { cache_before = "", vision = "", rest = "", rows = "", cache_after = "" }\n'
    totals = "totals = { vision = 0, rest = 0, rest_weight = 0, retries = 0, sleeps = 0 }\n"
    inclusive = "needed_only: treated the request's end as inclusive: asked Vision for 2024-01-05, the day that starts"
    baseline = tmp_path / "x.toml"
    baseline.write_text(
        'format = 1\nengine = "x"\n\n'
        f'["a/one"]\noutcome = "data"\nfailures = ["{inclusive}", "{inclusive} (again)"]\n{totals}{days}\n'
        f'["a/two"]\noutcome = "data"\nfailures = []\n{totals}{days.replace("a/one", "a/two")}'
    )
    out = _baseline_counts(capsys, str(baseline)).splitlines()
    assert out[0] == "x.toml: engine x, 2 scenarios, 1 conforming"
    assert "   1  end treated as inclusive" in out
    assert "   0  placeholder rows (NaN, no source tag)" in out
    assert out[-1] == "other failures (scenarios per check): none"


def test_the_baseline_format_page_quotes_the_bundled_ckvd_baseline() -> None:
    page = (ROOT / "docs" / "baselines.md").read_text(encoding="utf-8")
    example = page.split("```toml\n", 1)[1].split("```", 1)[0]
    entries = [chunk.strip() + "\n" for chunk in example.split("\n\n") if chunk.startswith('["')]
    assert len(entries) == 2, entries
    baseline = (ROOT / "scenarios" / "baselines" / "ckvd.toml").read_text(encoding="utf-8")
    for entry in entries:
        assert entry in baseline, entry
