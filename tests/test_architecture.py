"""The core runs without a screen: importing it never imports Textual."""

from __future__ import annotations

import subprocess
import sys


def test_core_never_imports_textual() -> None:
    code = (
        "import sys\n"
        "import workbench.core.config, workbench.core.data, workbench.core.model, workbench.core.train\n"
        "import workbench.core.evaluate, workbench.core.predict, workbench.core.runs, workbench.cli\n"
        "import workbench.core.train as t\n"
        "t.encode  # touch the module\n"
        "from workbench.core.data import load_cola; load_cola()\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
