"""The import-linter contracts of pyproject.toml hold: the core's layers, no face or Textual in
the core, no CLI in the TUI, and no import cycle anywhere in workbench; no module over 600 lines."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lint_imports() -> subprocess.CompletedProcess[str]:
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    return subprocess.run(
        [command, str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_import_contracts_are_kept() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(tmp_path: Path) -> None:
    """The contracts can fail: a copy of the package whose foundation imports the training loop."""
    copy = tmp_path / "src"
    shutil.copytree(ROOT / "workbench", copy / "workbench", ignore=shutil.ignore_patterns("__pycache__"))
    events = copy / "workbench" / "core" / "base" / "events.py"
    events.write_text(
        events.read_text() + "\n\ndef _upward() -> None:\n    from workbench.core.training import train  # noqa: F401\n"
    )
    command = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or "lint-imports"
    result = subprocess.run(
        [command, str(ROOT / "pyproject.toml")],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(copy), "PATH": str(Path(sys.executable).parent)},
    )
    assert result.returncode != 0
    assert "The core in layers BROKEN" in result.stdout
    assert "workbench.core.base.events -> workbench.core.training.train" in result.stdout


MAX_MODULE_LINES = 600


def test_no_module_does_more_than_a_module_should() -> None:
    """A module over MAX_MODULE_LINES lines is doing several jobs: split it by job (issue 31)."""
    package = ROOT / "workbench"
    sizes = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in package.rglob("*.py")}
    assert len(sizes) > 50
    too_long = {str(path.relative_to(package)): n for path, n in sizes.items() if n > MAX_MODULE_LINES}
    assert not too_long, too_long
