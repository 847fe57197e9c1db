"""Real processes without the cold start: forked from a server that has the model stack imported.

A fresh `python -m workbench.cli train` spends ~10 s of CPU importing torch, transformers,
accelerate and scikit-learn before its first line (2-core Intel Xeon, slow phase), and the e2e tests
start dozens of them (CLI runs that are killed, interrupted or raced, and both ranks of every 2-process
run). Here each is a child of a multiprocessing *forkserver* that imported those modules once per
test worker: a separate process with its own pid, environment, output files and exit status, that
SIGKILL and SIGINT reach as they reach the CLI, and that runs the same `workbench.cli.main` on the
same argv. What it cannot see is a module's import-time reading of the environment, so tests about
imports or environment read at import (tests/e2e/test_fresh_processes.py, test_unreachable_hub.py)
and at least one 2-process run (test_ddp.py's shared run, under the real `torchrun`) stay cold.

`cli(argv)` starts `workbench.cli.main(argv)`; `torchrun(argv)` starts torchrun's own launcher
(its argument parser and the elastic agent it runs) on a function instead of a script, its ranks
forked from the warm launcher."""

from __future__ import annotations

import importlib
import multiprocessing
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# What `workbench train` and `sweep` import, also lazily (transformers loads its models on first use)
PRELOAD = [
    "torch",
    "transformers",
    "accelerate",
    "sklearn.metrics",
    "pandas",
    "optuna",
    "torch.distributed.run",
    "optuna.storages._rdb.storage",
    "transformers.optimization",
    "transformers.data.data_collator",
    "transformers.models.auto.modeling_auto",
    "transformers.models.auto.tokenization_auto",
    "transformers.models.bert.modeling_bert",
    "transformers.models.bert.tokenization_bert",
    "transformers.models.bert.tokenization_bert_fast",
    "workbench.cli",
    "workbench.core.training.train",
    "workbench.core.training.recipe",
    "workbench.core.training.speed",
    "workbench.core.evaluation.calibration",
    "workbench.core.explore.cartography",
    "workbench.core.explore.pairs",
    "workbench.core.model.sentence_vectors",
    "workbench.core.search.sweep",
    "helpers.ddp_driver",
]
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)
_OUTPUTS: list[tempfile.TemporaryDirectory[str]] = []  # the output files' folder, made on first use, removed at exit


def _output_folder() -> Path:
    if not _OUTPUTS:
        _OUTPUTS.append(tempfile.TemporaryDirectory(prefix="warm-"))
    return Path(tempfile.mkdtemp(dir=_OUTPUTS[0].name))


def _redirect(fd: int, path: str) -> None:
    opened = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(opened, fd)
    os.close(opened)


def _child(entry: str, argv: list[str], env: dict[str, str], stdout: str, stderr: str) -> None:
    """In the forked child: the caller's environment and output files, then ENTRY(argv)'s status."""
    os.environ.clear()
    os.environ.update(env)
    _redirect(1, stdout)
    _redirect(2, stderr)
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)  # as PYTHONUNBUFFERED: a reader sees each line as it comes
    module, name = entry.split(":")
    status = getattr(importlib.import_module(module), name)(argv)
    sys.exit(status)


class WarmProcess:
    """The parts of subprocess.Popen the tests use, on a forkserver child. Output is read back from
    files once the process ends (stdout and stderr apart, or merged as with stderr=STDOUT)."""

    def __init__(self, entry: str, argv: list[str], env: dict[str, str] | None, merged: bool) -> None:
        folder = _output_folder()
        self._out = folder / "stdout"
        self._err = self._out if merged else folder / "stderr"
        self.args = argv
        self._process = _CONTEXT.Process(
            target=_child, args=(entry, argv, dict(os.environ if env is None else env), str(self._out), str(self._err))
        )
        self._process.start()

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode  # as Popen's: -N when ended by signal N

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return self.returncode

    def read(self, stream: str = "stdout") -> str:
        path = self._out if stream == "stdout" else self._err
        return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""

    def communicate(self, timeout: float | None = None) -> tuple[str, str | None]:
        self.wait(timeout)
        return self.read("stdout"), (None if self._err == self._out else self.read("stderr"))

    def send_signal(self, signal: int) -> None:
        os.kill(self.pid, signal)

    def kill(self) -> None:
        self._process.kill()


def cli(argv: list[str], env: dict[str, str] | None = None, merged: bool = True) -> WarmProcess:
    """`python -m workbench.cli ARGV`, started warm (stderr into stdout unless merged=False)."""
    return WarmProcess("workbench.cli:main", argv, env, merged)


def run_cli(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """As subprocess.run(..., capture_output=True, text=True): stdout and stderr apart."""
    proc = cli(argv, env, merged=False)
    try:
        out, err = proc.communicate(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return subprocess.CompletedProcess(argv, proc.returncode or 0, out, err or "")


def torchrun(argv: list[str], env: dict[str, str] | None = None) -> WarmProcess:
    """`torchrun ARGV` with ARGV's script replaced by its `rank` function (see _torchrun)."""
    return WarmProcess(f"{__name__}:_torchrun", argv, env, merged=True)


def _torchrun(argv: list[str]) -> int:
    """torchrun's own steps (torch.distributed.run.run) on a function entrypoint: the module named
    by the script's file stem, its `rank(*args)`; ranks forked from this warm process."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import elastic_launch
    from torch.distributed.run import config_from_args, parse_args

    args = parse_args(["--start-method", "fork", *argv])
    config, _, _ = config_from_args(args)
    rank: Any = importlib.import_module(f"helpers.{Path(args.training_script).stem}").rank
    try:
        elastic_launch(config=config, entrypoint=rank)(*args.training_script_args)
    except ChildFailedError as failed:
        print(f"{type(failed).__name__}: {failed}", file=sys.stderr)
        return 1
    return 0


def launcher(paced: bool = False) -> Any:
    """A launcher for the app (`make_app(launcher=...)`): core `launch_training`, its training process
    forked warm. PACED: a new run's process waits after each step until the run is asked to stop (so that a
    test's stop lands mid-run however fast the machine); a resumed run goes at its own pace."""
    from workbench.core.runs.status import launch_training

    entry = f"{__name__}:_paced_cli" if paced else "workbench.cli:main"
    # the fork server started here, in the test's own thread: started from the app's worker thread under
    # Textual's test harness, its launch failed ("bad value(s) in fds_to_keep")
    from multiprocessing import forkserver

    forkserver.ensure_running()

    def spawn(argv: list[str], log: Path, processes: int = 1) -> WarmProcess:
        return WarmProcess(entry, argv, None, merged=True)

    def launch(config: Any, run_dir: Path, **options: Any) -> int:
        return launch_training(config, run_dir, spawn=spawn, **options)

    return launch


def _paced_cli(argv: list[str]) -> int:
    """`workbench ARGV`, a new run's training held after each step until its stop file appears."""
    import time

    import workbench.cli.train as cli_train
    from workbench.cli import main
    from workbench.core.base.layout import STOP_FILE

    original = cli_train.train

    def held(
        config: Any, run_dir: Any, on_event: Any = None, stop: Any = None, resume: bool = False, **options: Any
    ) -> Any:
        def pace(event: Any) -> None:
            if on_event is not None:
                on_event(event)
            if event["kind"] == "step" and not resume:
                deadline = time.monotonic() + 60
                while not (Path(run_dir) / STOP_FILE).exists() and time.monotonic() < deadline:
                    time.sleep(0.02)

        return original(config, run_dir, on_event=pace, stop=stop, resume=resume, **options)

    cli_train.train = held
    return int(main(argv))
