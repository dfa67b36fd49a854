"""The README's two commands, the pins in requirements.txt, and the course map, kept honest."""

from __future__ import annotations

import re
from pathlib import Path

from lora_edu.models import DEFAULT_MODEL, MODELS

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> list[str]:
    match = re.match(r"```bash\n(.*?)\n```", README, re.S)
    assert match, "README.md must start with a fenced bash block"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_readme_starts_with_exactly_two_commands():
    install, test = _commands()
    assert install.endswith("&& .venv/bin/jupyter lab notebooks/00_start_here.ipynb")
    assert "-m venv .venv" in install and "pip install -r requirements.txt" in install
    assert MODELS[DEFAULT_MODEL].pip_command in install
    assert "HF_HUB_OFFLINE=1" in test and "LORA_EDU_PROFILE=smoke" in test
    assert "--nbval-lax" in test and "tests" in test.split() and "notebooks" in test.split()


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "README.md" in ci and "&& .venv/bin/jupyter lab" in ci


def test_requirements_are_pinned():
    lines = [l.split("#")[0].strip() for l in (ROOT / "requirements.txt").read_text().splitlines()]
    packages = [l for l in lines if l and l != "-e ."]
    assert "torch==2.13.0" in packages
    unpinned = [l for l in packages if "==" not in l]
    assert not unpinned, f"unpinned requirements: {unpinned}"
    assert "-e ." in lines, "requirements.txt installs lora_edu itself"


def test_course_map_lists_every_notebook():
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        number = path.name[:2]
        assert re.search(rf"^\| {number} \|", README, re.M), f"README's course map lacks notebook {number}"
        assert f"(notebooks/{path.name})" in README, f"README's course map does not link {path.name}"


def test_readme_figures_exist():
    for name in re.findall(r"\]\((figures/[^)]+)\)", README):
        assert (ROOT / name).is_file(), f"README shows {name}, which does not exist"
