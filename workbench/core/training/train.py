"""Fine-tuning: one plain function, `train(config, run_dir, on_event, stop)`, for the CLI and every start
in the app (a training process of its own, core/runs/status.launch_training) alike.

Long work reports through ON_EVENT (typed records, core/base/events.py: the same objects that go to
metrics.jsonl) and ends at the next batch when STOP is set, leaving a checkpoint. `train()` reads as
the table of contents of a run, each step in a module of its own under core/training/:

1. prepare.py   the checks (settings, data, model source, the run folder) and the run's data, loaded once
2. (here)       the run folder held: its lock and pid file (`holding_run`)
3. loop.py      the loop: model and optimizer (optim.py), restore, the epochs of steps (step.py), validation
                and checkpoints (checkpoint.py)
4. finish.py    after the last step: calibrate, evaluate the best model
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from workbench.core.base.config import TrainConfig
from workbench.core.base.errors import TrainingError
from workbench.core.base.events import Event
from workbench.core.base.hardware import cuda_available
from workbench.core.base.layout import CONFIG_FILE, PID_FILE, STOP_FILE, RunError
from workbench.core.runs.lock import RunLock
from workbench.core.training import ranks
from workbench.core.training.finish import finish_run
from workbench.core.training.loop import Training
from workbench.core.training.position import TrainResult
from workbench.core.training.prepare import RunData, check_data, prepare_run_dir, record_training_rows

EventCallback = Callable[[Event], None]


@contextmanager
def holding_run(run_dir: Path) -> Iterator[None]:
    """RUN_DIR's lock for the with block (TrainingError when another training holds it), with its
    pid file; a stop request left from before is dropped, and neither file outlives the block."""
    locked = False
    try:
        with RunLock(run_dir):
            locked = True
            (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
            (run_dir / STOP_FILE).unlink(missing_ok=True)
            try:
                yield
            finally:
                (run_dir / PID_FILE).unlink(missing_ok=True)
                (run_dir / STOP_FILE).unlink(missing_ok=True)
    except RunError as err:
        if locked:
            raise  # the training's own, not the lock's
        raise TrainingError(str(err)) from None


def train(
    config: TrainConfig,
    run_dir: Path | str,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    resume: bool = False,
    allow_pickle: bool = False,
) -> TrainResult:
    """Fine-tune CONFIG.model on CoLA into RUN_DIR; resume from its checkpoint if RESUME.

    Under `accelerate launch` / `torchrun` every process calls this; only the main
    process checks, locks and writes the run folder."""
    from accelerate import PartialState

    run_dir = Path(run_dir)
    config = config.resolved()  # what the run trains with and saves (a resume reads its saved one)
    stop = stop or threading.Event()
    state = PartialState(cpu=not cuda_available())
    with ExitStack() as run_held:
        main_failure: Exception | None = None
        data: RunData | None = None
        if state.is_main_process:  # 1. the checks, and the data loaded once
            try:
                config, data = prepare_run_dir(config, run_dir, resume)
                run_held.enter_context(holding_run(run_dir))  # 2. the run folder held
                if not resume:
                    record_training_rows(run_dir, data)  # which sentences, before the config makes it a run
                    config.save(run_dir / CONFIG_FILE)
            except Exception as err:  # with several processes, the others must hear of it first
                main_failure = err
        if state.num_processes > 1:  # the others wait here for the main process's checks (a broadcast)
            main_error = ranks.main_failure(main_failure)
            if main_error is not None and not state.is_main_process:
                raise TrainingError(f"process 0 failed: {main_error}")
        if main_failure is not None:
            raise main_failure
        if not state.is_main_process:  # each other process reads the run's data once, as checked
            if resume:
                config = TrainConfig.load(run_dir / CONFIG_FILE)
            data = check_data(config, run_dir)  # the rows the main process recorded
        assert data is not None
        with Training(config, run_dir, data, on_event, stop, resume, allow_pickle) as training:
            ended = training.train_epochs()  # 3. the loop
            if ended is not None:  # stopped or failed
                return ended
            return finish_run(
                run_dir,
                config,
                training.position,
                emit=training.emit,  # 4. the finish
                main_process=training.is_main_process,
                device=training.accelerator.device,
                tokenizer=training.tokenizer,
                data=data,
            )
