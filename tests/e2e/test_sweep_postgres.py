"""Two `workbench sweep` processes at once on one study, as two machines would: on a real PostgreSQL
server (postgresql+psycopg://) and on the default SQLite file. Every trial runs exactly once, and both read
back all of them.

The server is the one WORKBENCH_TEST_POSTGRES names, or else a throwaway one this module starts and stops
with .ci/postgres.sh (as `runuser -u postgres` when run as root) wherever PostgreSQL's binaries are
installed, so the README's `pytest` runs the test; it is skipped only on a machine without them."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from helpers import warm

from workbench.core.data.cola import SPLIT_FILES, project_data_dir
from workbench.core.runs.metrics import read_metrics
from workbench.core.search.storage import default_storage

TRIALS_EACH = 2
REPO = Path(__file__).resolve().parents[2]


def postgres_binaries() -> bool:
    return bool(shutil.which("initdb")) or any(Path("/usr/lib/postgresql").glob("*/bin/initdb"))


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server's URL for the module: WORKBENCH_TEST_POSTGRES's, or a throwaway server started
    here (.ci/postgres.sh: its own folder, a unix socket only, trust authentication) and stopped after."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg driver is not installed: pip install 'cola-workbench[postgres]'")
    given = os.environ.get("WORKBENCH_TEST_POSTGRES", "")
    if given:
        yield given
        return
    if not postgres_binaries():
        pytest.skip("no PostgreSQL binaries here (apt-get install postgresql), and WORKBENCH_TEST_POSTGRES is not set")
    started = subprocess.run([str(REPO / ".ci" / "postgres.sh"), "start"], capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, f"the throwaway PostgreSQL server did not start: {started.stderr}"
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines() if line.startswith("export ")
    )
    folder, url = (shlex.split(exported[name])[0] for name in ("WORKBENCH_PG_DIR", "WORKBENCH_TEST_POSTGRES"))
    try:
        yield url
    finally:
        subprocess.run([str(REPO / ".ci" / "postgres.sh"), "stop", folder], capture_output=True, timeout=120)


def small_cola(folder: Path, rows: int = 40) -> Path:
    folder.mkdir(parents=True)
    for file in SPLIT_FILES.values():
        lines = (project_data_dir() / file).read_text(encoding="utf-8").splitlines()[:rows]
        (folder / file).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def two_sweeps_at_once(storage: str | None, study: str, model: Path, tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    data = small_cola(tmp_path / "cola")
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"learning_rate": {"low": 1e-4, "high": 3e-3, "log": True}}))
    flags = [
        "--trials",
        str(TRIALS_EACH),
        "--study",
        study,
        "--space",
        str(space),
        "--model",
        str(model),
        "--data",
        str(data),
        "--runs",
        str(runs),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--train-limit",
        "32",
        "--precision",
        "fp32",
        "--no-pruning",
        *(["--storage", storage] if storage else []),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    sweeps = [warm.cli(["sweep", *flags], env, merged=False) for _ in range(2)]  # two processes (helpers/warm.py)
    outputs = [sweep.communicate(timeout=600) for sweep in sweeps]
    for sweep, (_out, err) in zip(sweeps, outputs, strict=True):
        assert sweep.returncode == 0, err
    total = 2 * TRIALS_EACH
    shown_by = []
    for _ in range(2):  # each "machine" reads the study back: all trials of both
        shown = warm.run_cli(
            [
                "sweep",
                "show",
                "--study",
                study,
                "--runs",
                str(runs),
                "--json",
                *(["--storage", storage] if storage else []),
            ],
            env,
        )
        assert shown.returncode == 0, shown.stderr
        shown_by.append(json.loads(shown.stdout))
    assert [s["counts"] for s in shown_by] == [{"complete": total}] * 2

    loaded = optuna.load_study(study_name=study, storage=storage or default_storage(runs))
    numbers = sorted(t.number for t in loaded.trials)
    assert numbers == list(range(total))
    ran = [line for _, err in outputs for line in err.splitlines() if " complete after " in line]
    assert sorted(int(line.split()[1]) for line in ran) == numbers  # each trial run by one process, once
    for trial in loaded.trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        run = runs / trial.user_attrs["run"]
        starts = [e for e in read_metrics(run) if e["kind"] == "start"]
        assert len(starts) == 1, run  # trained once, never twice into one folder
        assert json.loads((run / "trial.json").read_text())["trial"] == trial.number
    return runs


def test_two_sweeps_at_once_on_postgresql(postgres_url: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    study = f"two-{os.getpid()}-{tmp_path.name}"[:60]
    two_sweeps_at_once(postgres_url, study, tiny_model_dir, tmp_path)


def test_two_sweeps_at_once_on_the_default_sqlite_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    two_sweeps_at_once(None, "two", tiny_model_dir, tmp_path)
