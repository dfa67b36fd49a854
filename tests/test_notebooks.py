"""The notebook checklist (COURSE.md), checked on every notebook without running it.

nbval runs the notebooks themselves; these tests check how they are stored and built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "-", "notes"}
# Home folders, temp folders and drive letters: none belongs in a shared notebook.
ABSOLUTE_PATH = re.compile(r"(/home/|/Users/|/root/|/tmp/|/work/|/private/|/var/folders/|[A-Za-z]:\\\\)")


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"
    assert NOTEBOOKS[0].name == "00_start_here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_without_outputs(path):
    for i, cell in enumerate(_load(path)["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs; clear them before committing"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_absolute_paths(path):
    text = path.read_text(encoding="utf-8")
    match = ABSOLUTE_PATH.search(text)
    assert match is None, f"{path.name} holds an absolute path near {text[max(0, match.start() - 40):match.end() + 40]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_follows_the_checklist(path):
    nb = _load(path)
    cells = nb["cells"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert cells[0]["cell_type"] == "markdown" and "goals" in _source(cells[0]).lower(), (
        f"{path.name} must open with its learning goals"
    )
    first_code = next(c for c in cells if c["cell_type"] == "code")
    assert "print_environment()" in _source(first_code), f"{path.name}: the first code cell reports the environment"
    headings = [line.strip().lower() for c in cells if c["cell_type"] == "markdown" for line in _source(c).splitlines()]
    assert any(h.startswith("#") and "key takeaways" in h for h in headings), f"{path.name} lacks 'Key takeaways'"
    assert any(h.startswith("#") and "exercises" in h for h in headings), f"{path.name} lacks 'Exercises'"
    for i, cell in enumerate(cells):
        slide = cell["metadata"].get("slideshow", {}).get("slide_type")
        assert slide in SLIDE_TYPES, f"{path.name} cell {i} has no slide metadata"
    assert any(c["metadata"]["slideshow"]["slide_type"] == "slide" for c in cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_checkpoints_and_solutions_assert(path):
    cells = _load(path)["cells"]
    tagged = lambda tag: [c for c in cells if tag in c["metadata"].get("tags", [])]  # noqa: E731
    assert tagged("checkpoint"), f"{path.name} has no checkpoint cell"
    for cell in tagged("checkpoint"):
        assert "assert" in _source(cell), f"{path.name}: a checkpoint cell must assert its claim"
    solutions = tagged("solution")
    assert solutions, f"{path.name} has no solution cells"
    for cell in solutions:
        src = _source(cell)
        assert "check_" in src and "assert" in src, f"{path.name}: a solution must be asserted through its checker"
        assert cell["metadata"].get("jupyter", {}).get("source_hidden"), f"{path.name}: solution cells are collapsed"
    for cell in tagged("exercise"):
        assert "check_" in _source(cell), f"{path.name}: an exercise cell calls its checker"
