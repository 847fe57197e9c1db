"""Shared fixtures: a tiny randomly initialised BERT with the real WordPiece vocabulary, a tiny CoLA
folder of real sentences, and the runs many tests read, trained once per test session and copied.

Built once for the whole session, also under pytest-xdist: the first worker to ask builds it under a
file lock in the session's shared temporary folder, the others wait and reuse it. Tests never write
into a shared folder; they copy it into their own tmp_path first (`copy_run`)."""

from __future__ import annotations

import os

# One torch thread per xdist worker: two workers with two threads each on two cores spend their time
# waiting for each other's threads (a tiny training measured 6x slower; the real fine-tune 239 s instead
# of 89 s). Set in each worker (xdist names it before this file is imported there), before torch is
# imported; subprocesses (the CLI, torchrun) inherit it. Never in the controller, whose environment the
# workers inherit: a value set there would look like the user's. A value the user set wins.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

import json  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from filelock import FileLock  # noqa: E402
from helpers.cli import train_args  # noqa: E402
from helpers.runs import TrainedRun, save_tiny_bert  # noqa: E402

from workbench.core.base.config import TrainConfig, project_data_dir  # noqa: E402
from workbench.core.data.cola import SPLIT_FILES  # noqa: E402

# Lines taken from the top of each bundled CoLA file: real sentences, the release's format and names.
TINY_COLA_LINES = {"in_domain_train": 240, "in_domain_dev": 40, "holdout": 40}  # train: 216 + 24 validation


# The end-to-end modules, longest first: a worker that takes a long test last keeps the other one idle
# at the suite's end. Only an order: a module missing here runs after these, a stale order costs time.
E2E_LONGEST_FIRST = [
    "test_detached_runs",
    "test_unreachable_hub",
    "test_fresh_processes",
    "test_ddp",
    "test_hangup",
    "test_sweep_postgres",
    "test_interruptions",
    "test_sweep_join",
]

# Textual's Pilot waits after each key and pause until the app looks idle: CPU time under 5% of a
# sleep of SLEEP_GRANULARITY (1/50 s), at least one sleep each time. Sleeps of 1/100 s, the same 5%,
# halve the floor of a press or a pause, which most of them hit; a busy app is still waited for (up to
# 1 s a wait).
IDLE_SLEEP = 0.01


def pytest_configure(config: pytest.Config) -> None:
    if "torch" in __import__("sys").modules and "OMP_NUM_THREADS" in os.environ:  # imported by a plugin first
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    import textual._wait

    if hasattr(textual._wait, "SLEEP_GRANULARITY") and hasattr(textual._wait, "SLEEP_IDLE"):
        textual._wait.SLEEP_IDLE = IDLE_SLEEP * textual._wait.SLEEP_IDLE / textual._wait.SLEEP_GRANULARITY
        textual._wait.SLEEP_GRANULARITY = IDLE_SLEEP
    else:
        import warnings

        warnings.warn("textual._wait has changed: Pilot's idle sleep is left as Textual sets it", stacklevel=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The real fine-tune first, then the tests that run in the test process, the end-to-end ones last
    (E2E_LONGEST_FIRST).
    Under xdist (--dist loadgroup, no reordering) the fine-tune then shares the two cores with one other
    single-threaded process: beside the end-to-end tests' subprocesses (2-3 processes each) it took
    355 s instead of 79 s on the Xeon, the suite's long pole."""

    def rank(item: pytest.Item) -> tuple[int, int]:
        if item.get_closest_marker("slow"):
            return 0, 0
        if "/e2e/" not in item.nodeid and not item.nodeid.startswith("e2e/"):
            return 1, 0
        module = item.path.stem
        order = E2E_LONGEST_FIRST.index(module) if module in E2E_LONGEST_FIRST else len(E2E_LONGEST_FIRST)
        return 2, order

    items.sort(key=rank)  # stable: within a rank, the collection order


def shared(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder NAME, made by BUILD(folder) once for the whole test session (all xdist workers)."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    root = base / "shared"
    root.mkdir(exist_ok=True)
    folder = root / name
    with FileLock(str(root / f"{name}.lock")):
        if not (root / f"{name}.built").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half way
            folder.mkdir()
            build(folder)
            (root / f"{name}.built").touch()
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BertForSequenceClassification saved as a standard folder, one for the whole
    session: the shared runs record its path, and every worker must see the same one."""

    def build(folder: Path) -> None:
        save_tiny_bert(folder, seed=0)

    return shared(tmp_path_factory, "tiny-bert", build)


@pytest.fixture(scope="session")
def tiny_cola_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CoLA folder of the first sentences of each bundled file (same names, same 4-column TSV):
    216 to train on and 24 to validate (the seeded 10%), 40 in-domain dev, 40 holdout."""

    def build(folder: Path) -> None:
        for split, file in SPLIT_FILES.items():
            lines = (project_data_dir() / file).read_text(encoding="utf-8").splitlines(keepends=True)
            (folder / file).write_text("".join(lines[: TINY_COLA_LINES[split]]), encoding="utf-8")

    return shared(tmp_path_factory, "tiny-cola", build)


@pytest.fixture
def tiny_config(tiny_model_dir: Path, tiny_cola_dir: Path) -> TrainConfig:
    """A training that takes a few seconds: 96 sentences of the tiny CoLA, batch 16, fp32."""
    return TrainConfig(
        model=str(tiny_model_dir),
        data=str(tiny_cola_dir),
        epochs=2,
        batch_size=16,
        train_limit=96,
        learning_rate=1e-3,
        precision="fp32",
        eval_batch_size=256,
    )


@pytest.fixture
def small_config(tiny_config: TrainConfig) -> TrainConfig:
    """tiny_config on 64 sentences: 4 steps an epoch, so that step 5 is in epoch 2 (after a checkpoint)."""
    tiny_config.train_limit = 64
    return tiny_config


def _trained(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    config: TrainConfig,
    stop_when: Callable[[dict[str, Any]], bool] | None = None,
) -> TrainedRun:
    from workbench.core.training.train import train

    def build(folder: Path) -> None:
        events: list[dict[str, Any]] = []
        stop = threading.Event()

        def seen(event: dict[str, Any]) -> None:
            events.append(event)
            if stop_when is not None and stop_when(event):
                stop.set()

        result = train(config, folder / "run", on_event=seen, stop=stop)
        (folder / "events.json").write_text(json.dumps(events))
        (folder / "result.json").write_text(
            json.dumps({"status": result.status, "epochs_done": result.epochs_done, "final": result.final})
        )

    folder = shared(tmp_path_factory, name, build)
    result = json.loads((folder / "result.json").read_text())
    return TrainedRun(folder / "run", json.loads((folder / "events.json").read_text()), **result)


@pytest.fixture(scope="session")
def done_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_cola_dir: Path) -> TrainedRun:
    """tiny_config trained to its end (2 epochs of 6 steps, calibrated, evaluated)."""
    config = TrainConfig(
        model=str(tiny_model_dir),
        data=str(tiny_cola_dir),
        epochs=2,
        batch_size=16,
        train_limit=96,
        learning_rate=1e-3,
        precision="fp32",
        eval_batch_size=256,
    )
    return _trained(tmp_path_factory, "done-run", config)


@pytest.fixture(scope="session")
def stopped_run(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_cola_dir: Path) -> TrainedRun:
    """tiny_config stopped at the end of epoch 1 (its checkpoint at the epoch boundary)."""
    config = TrainConfig(
        model=str(tiny_model_dir),
        data=str(tiny_cola_dir),
        epochs=2,
        batch_size=16,
        train_limit=96,
        learning_rate=1e-3,
        precision="fp32",
        eval_batch_size=256,
    )
    return _trained(tmp_path_factory, "stopped-run", config, stop_when=lambda e: e["kind"] == "epoch")


@pytest.fixture(scope="session")
def cli_runs(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_cola_dir: Path) -> Path:
    """A runs folder trained by `workbench train` (helpers.cli.train_args: 2 epochs of 4 steps on the
    tiny CoLA): `whole` (seed 42), `seed7` (--seed 7) and `other_data` (40 sentences of a file of its
    own, its holdout). Copy a run out before changing it."""
    from workbench.cli import main

    def build(folder: Path) -> None:
        small = folder / "small.tsv"
        lines = (project_data_dir() / "in_domain_train.tsv").read_text(encoding="utf-8").splitlines()[:40]
        small.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert main(train_args(tiny_model_dir, tiny_cola_dir, folder, "whole")) == 0
        assert main(train_args(tiny_model_dir, tiny_cola_dir, folder, "seed7", "--seed", "7")) == 0
        assert main(train_args(tiny_model_dir, small, folder, "other_data")) == 0

    return shared(tmp_path_factory, "cli-runs", build)
