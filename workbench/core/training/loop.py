"""The training loop (`Training`): start the accelerator and the metrics file, build the model and optimizer,
restore a checkpoint, train the epochs (steps, timed checkpoints, stop requests), validate and checkpoint at
each epoch's end. The finish after the loop is core/training/finish.py's."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.base.errors import TrainingError, is_out_of_memory
from workbench.core.base.events import (
    CheckpointEvent,
    EndEvent,
    EpochEvent,
    Event,
    LogEvent,
    StartEvent,
    StepEvent,
    now,
)
from workbench.core.base.hardware import (
    cuda_available,
    device_name,
    fused_adamw_ok,
    keep_freed_memory,
    resolve_precision,
)
from workbench.core.base.layout import METRICS_FILE, STOP_FILE
from workbench.core.runs.dynamics import TrainingDynamics, load_or_start
from workbench.core.runs.metrics import MetricsWriter
from workbench.core.runs.train_rows import read_training_data, training_data_text
from workbench.core.training import ranks, trackers
from workbench.core.training.checkpoint import (
    CheckpointError,
    checkpoint_meta,
    recover_run,
    restore_checkpoint,
    resume_note,
    rng_states,
    save_checkpoint,
    save_model,
)
from workbench.core.training.gold import GoldRecorder
from workbench.core.training.optim import WeightAverage, data_loaders, grouped_adamw, warmup_steps
from workbench.core.training.position import Position, TrainResult
from workbench.core.training.prepare import RunData, initial_model, prepare_data
from workbench.core.training.speed import compile_for_steps, less_work_per_step, step_text
from workbench.core.training.step import (
    PendingStep,
    Throughput,
    clip_and_step,
    nonfinite_message,
    out_of_memory_as,
    read_interval,
    read_steps,
)
from workbench.core.training.validate import validate

EventCallback = Callable[[Event], None]


class Training:
    """One training into a run folder, as its steps. As a context manager it starts the accelerator
    and the metrics file, and on the way out records any failure as the run's end event and closes
    them; `train_epochs` runs the loop on the run's DATA (loaded once, core/training/prepare.py). The
    finish after it is `finish_run`'s."""

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        data: RunData,
        on_event: EventCallback | None,
        stop: threading.Event,
        resume: bool,
        allow_pickle: bool = False,
    ):
        self.config = config
        self.data = data
        self.run_dir = run_dir
        self.on_event = on_event
        self.stop = stop
        self.resume = resume
        self.allow_pickle = allow_pickle  # the user's opt-in to pickle weights for CONFIG.model
        self.writer: MetricsWriter | None = None  # metrics.jsonl (the main process only)
        self.position = Position()
        self.restarted_from_zero = False  # resumed with no checkpoint: trains again from step 0
        self.emit_lock = threading.RLock()  # the failure watch may end the run from its own thread
        self.end_emitted = False
        self.failure_agreed = False  # every process knows of this failure (ranks.agree_on_step)
        self.peer_failures: ranks.FailureBoard | None = None  # several processes: failures not agreed in a step
        # set by the steps below
        self.accelerator: Any = None
        self.device_name = ""
        self.tokenizer: Any = None
        self.model: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.train_loader: Any = None
        self.val_loader: Any = None
        self.params: list[Any] = []
        self.step_levers: list[str] = []  # what less_work_per_step took, for the run's log
        self.ema: WeightAverage | None = None  # --ema-decay
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.read_every = 1  # steps between host reads of the loss (read_interval)
        self.train_labels: list[int] = []
        self.gold = GoldRecorder()  # p(gold) for the map; its dynamics: the map being recorded (main process)
        self.started = 0.0  # perf_counter when this session's first step began
        self.elapsed_before = 0.0  # training time of the sessions before this one (a resume's checkpoint)
        self.last_checkpoint_at = 0.0  # perf_counter of the last checkpoint (or of this session's start)
        self.steps_this_session = 0
        self.throughput = Throughput()

    @property
    def is_main_process(self) -> bool:
        return bool(self.accelerator.is_main_process)

    def emit(self, event: Event) -> None:
        with self.emit_lock:
            if self.writer is not None:
                self.writer.write(dict(event))
            if self.on_event is not None:
                self.on_event(event)
            trackers.log_event(self.accelerator, event)  # --report-to: step loss/lr, epoch metrics, final scores
            self.end_emitted = self.end_emitted or event["kind"] == "end"

    def log(self, message: str) -> None:
        self.emit(LogEvent(kind="log", time=now(), message=message))

    def __enter__(self) -> Training:
        self._start_accelerator()
        if self.is_main_process:
            self.writer = MetricsWriter(self.run_dir / METRICS_FILE)
        if self.accelerator.num_processes > 1:
            self.peer_failures = ranks.FailureBoard(self.accelerator.process_index)
            self.peer_failures.watch(self._peer_failed)
        return self

    def __exit__(self, error_type: type[BaseException] | None, err: BaseException | None, _trace: Any) -> None:
        """The run folder records every failure (an Exception) before it propagates; then the
        failure watch, the trackers and metrics.jsonl are closed."""
        try:
            if isinstance(err, Exception):
                self._record_failure(err)
        finally:
            try:
                if self.peer_failures is not None:
                    self.peer_failures.close()
                self._finish_trackers()
            finally:
                if self.writer is not None:
                    self.writer.close()

    def _finish_trackers(self) -> None:
        """Close the --report-to trackers; one that fails to close is said in the run's log."""
        message = trackers.finish_quietly(self.accelerator)
        if message and self.on_event is not None:  # not in metrics.jsonl: its end event stays its last line
            self.on_event(LogEvent(kind="log", time=now(), message=message))

    def _record_failure(self, err: Exception) -> None:
        """The end event of a run that failed with ERR; when ERR came of another process's failure,
        a TrainingError naming that process replaces it."""
        error, peer = f"{type(err).__name__}: {err}", None
        if self.peer_failures is not None and not self.failure_agreed:
            peer = self.peer_failures.read()  # this process failed because another one died?
            if peer is None:
                self.peer_failures.post(error)  # tell the others, who may be waiting in a collective
        if peer is not None:
            error = f"process {peer[0]} failed: {peer[1]}"
        self.emit(EndEvent(kind="end", time=now(), status="failed", error=error))
        if peer is not None:
            raise TrainingError(error) from err

    def _peer_failed(self, rank: int, message: str) -> None:
        """Another process failed where this one could not hear it (the failure watch's thread): end the
        run with its message, then this process, which may be waiting in a collective for ever."""
        with self.emit_lock:
            if not self.end_emitted:
                error = f"process {rank} failed: {message}"
                self.log(f"error: {error}; ending process {self.accelerator.process_index}")
                self.emit(EndEvent(kind="end", time=now(), status="failed", error=error))
                if self.writer is not None:
                    self.writer.close()
                os._exit(1)

    def train_epochs(self) -> TrainResult | None:
        """Train until the run is trained (None: `finish_run` is next), stopped or failed (its result)."""
        from accelerate.utils import set_seed

        trackers.start(self.accelerator, self.config, self.run_dir)  # --report-to; a failure ends the run here
        if self.resume and self.is_main_process:  # under the run lock
            recover_run(self.run_dir)  # after a kill mid-swap
        set_seed(self.config.seed)
        prepared = prepare_data(self.config, self.data)
        self.tokenizer, self.train_labels = prepared.tokenizer, prepared.train_labels
        train_rows, val_rows = prepared.train_rows, prepared.val_rows
        self._build_model_and_optimizer(train_rows, val_rows)
        self._restore()
        self.position.validation_sentences = len(val_rows)
        self._emit_start(len(train_rows), len(val_rows))
        if self.config.compile != "off" and not self.position.finished:  # compiled, and the wait said, first
            batch = self.train_loader.collate_fn(train_rows[: self.config.effective_batch_size])
            compiling = (self.config.compile, batch, self.accelerator, self.log, self.step_levers)
            self.step_model = compile_for_steps(self.model, *compiling)
        if self.is_main_process:  # how the steps run (after a compile, which may change it)
            self.log(step_text(self.accelerator.mixed_precision, self.optimizer, self.step_levers))
        self.started = self.last_checkpoint_at = time.perf_counter()
        self.elapsed_before = self.position.train_seconds
        while not self.position.finished and self.position.epoch < self.config.epochs:
            ended = self._train_epoch()
            if ended is not None:  # failed (non-finite loss) or stopped mid-epoch
                return ended
            if self._end_epoch():
                break
        if self.position.finished:
            return None
        return self._stopped()

    # ------------------------------------------------------------ before the first step

    def _start_accelerator(self) -> None:
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState, GradientState

        on_gpu = cuda_available()
        if not on_gpu:
            keep_freed_memory()
        # Accelerate keeps its state per process; a second training in the same process (the
        # TUI, tests) may want another precision, so that state is rebuilt for every run. The
        # launcher's process group (PartialState) is kept.
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
        self.accelerator = Accelerator(
            cpu=not on_gpu,
            mixed_precision=resolve_precision(self.config.precision, "cuda" if on_gpu else "cpu"),
            **trackers.accelerator_kwargs(self.config, self.run_dir),
        )  # --report-to (started in train_epochs)
        self.read_every = read_interval(self.accelerator.device.type)
        self.device_name = device_name(self.accelerator.device)

    def _build_model_and_optimizer(self, train_rows: list[dict[str, Any]], val_rows: list[dict[str, Any]]) -> None:
        """Model, length-grouped loaders, grouped AdamW and the warmup schedule, prepared by Accelerate."""
        from transformers import get_linear_schedule_with_warmup

        config, accelerator = self.config, self.accelerator
        model = initial_model(config, allow_pickle=self.allow_pickle)  # dropout, reinit_top_layers, head seed
        self.step_levers = less_work_per_step(model, config, accelerator.device.type)  # before the optimizer groups
        train_loader, val_loader = data_loaders(
            self.tokenizer, train_rows, val_rows, config.batch_size, config.eval_batch_size, config.seed
        )
        optimizer = grouped_adamw(model, config, fused_adamw_ok(accelerator.device.type))
        (self.model, self.optimizer, self.train_loader, self.val_loader) = accelerator.prepare(
            model, optimizer, train_loader, val_loader
        )
        self.step_model = self.model  # what the training step calls: the compiled model with --compile
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, warmup_steps(self.total_steps, config.warmup_ratio), self.total_steps
        )
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if config.ema_decay > 0:
            self.ema = WeightAverage(self.params, config.ema_decay)

    def _restore(self) -> None:
        """When resuming: weights, optimizer, schedule, random state and position from the checkpoint."""
        if self.is_main_process:  # a resume continues the map recorded so far
            self.gold.dynamics = (
                load_or_start(self.run_dir, self.config.epochs, self.train_labels)
                if self.resume
                else TrainingDynamics.empty(self.config.epochs, self.train_labels)
            )
        if not self.resume:
            return
        if checkpoint_meta(self.run_dir) is None:  # killed before its first checkpoint
            self.restarted_from_zero = True
            return
        try:
            meta = restore_checkpoint(
                self.run_dir,
                self.accelerator.unwrap_model(self.model),
                self.optimizer,
                self.scheduler,
                self.ema,
                self.accelerator.process_index,
            )
        except CheckpointError as err:
            raise TrainingError(str(err)) from None
        self.position = Position.from_meta(meta)

    def _emit_start(self, train_sentences: int, val_sentences: int) -> None:
        accelerator = self.accelerator
        self.emit(
            StartEvent(
                kind="start",
                time=now(),
                run=self.run_dir.name,
                model=self.config.model,
                device=self.device_name,
                precision=accelerator.mixed_precision,
                processes=accelerator.num_processes,
                train_sentences=train_sentences,
                validation_sentences=val_sentences,
                steps_per_epoch=self.steps_per_epoch,
                total_steps=self.total_steps,
                epochs=self.config.epochs,
                resumed_at_step=self.position.step if self.resume else None,
            )
        )
        chosen = self.data.chosen.summary if self.data.chosen is not None else read_training_data(self.run_dir)
        if (trained_on := training_data_text(chosen)) and self.is_main_process:  # the overrides', the map's counts
            self.log(trained_on)
        if note := resume_note(self.restarted_from_zero, self.position.finished):
            self.log(note)

    # ------------------------------------------------------------ an epoch of steps

    def _train_epoch(self) -> TrainResult | None:
        """The optimizer steps of one epoch (from where a resume left it). A TrainResult when the
        run ends here: failed on a non-finite loss or gradient (the weights as they were before that
        step), or stopped mid-epoch (with a checkpoint)."""
        position, accelerator, config = self.position, self.accelerator, self.config
        self.train_loader.set_epoch(position.epoch)
        loader = self.train_loader
        if position.epoch_step:
            loader = accelerator.skip_first_batches(self.train_loader, position.epoch_step)
        self.model.train()
        out_of_memory = (
            f"out of memory at batch size {config.batch_size} (max length {config.max_length}) on "
            f"{self.device_name}; try --batch-size {max(1, config.batch_size // 2)}"
        )
        pending: list[PendingStep] = []  # steps taken, their loss and gradient norm not read yet
        for batch in loader:
            if accelerator.num_processes == 1 and self._stop_agreed():
                break  # several processes learn of a stop from the step's agreement (_forward)
            with out_of_memory_as(out_of_memory):
                loss, shared_loss, agreed_stop, timed = self._forward(batch, out_of_memory)
                if shared_loss is not None and not math.isfinite(shared_loss):  # agreed by every process
                    return self._record_steps(pending) or self._fail_nonfinite(shared_loss)
                if agreed_stop:
                    break  # agreed by every process, before any of them changes the weights
                accelerator.backward(loss)
                # the step is skipped unless the loss and gradient norm are finite (on the device)
                grad_norm = clip_and_step(accelerator, self.optimizer, self.params, config.max_grad_norm, loss)
                if self.ema is not None:
                    self.ema.update(self.params)
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                pending.append(
                    PendingStep(
                        int(batch["labels"].shape[0]),
                        loss.detach(),
                        grad_norm,
                        shared_loss,
                        time.perf_counter(),
                        self.scheduler.get_last_lr()[-1],
                    )
                )
                step = position.step + len(pending)
                in_epoch = position.epoch_step + len(pending) < self.steps_per_epoch  # (the epoch's end checkpoints)
                checkpoint_due = (bool(config.checkpoint_every) and step % config.checkpoint_every == 0) or (
                    in_epoch and (timed if accelerator.num_processes > 1 else self._timed_checkpoint_due())
                )
                if len(pending) >= self.read_every or checkpoint_due:
                    failed = self._record_steps(pending)  # one read from the device for all of them
                    if failed is not None:
                        return failed
            if checkpoint_due:
                self._checkpoint()
        if pending:
            with out_of_memory_as(out_of_memory):
                failed = self._record_steps(pending)
            if failed is not None:
                return failed
        if self._stop_agreed() and position.epoch_step < self.steps_per_epoch:
            return self._stopped()
        return None

    def _forward(self, batch: Any, out_of_memory: str) -> tuple[Any, float | None, bool, bool]:
        """The batch's loss; with several processes also their mean loss, whether any of them was
        asked to stop and whether the main process's clock calls for a timed checkpoint after this
        step, agreed by all after each said whether its forward pass failed (ranks.agree_on_step):
        when one did, every process raises here, the failing one its own error, the others
        "process R failed: ..."."""
        rows = batch.pop("row", None)
        if self.accelerator.num_processes == 1:
            output = self.step_model(**batch)
            self.gold.note(self.position.epoch, output.logits, batch["labels"], rows)
            return output.loss, None, False, False
        loss, failure, message = None, None, None
        try:
            output = self.step_model(**batch)
            loss = output.loss
            self.gold.note(self.position.epoch, output.logits, batch["labels"], rows)
        except Exception as err:
            failure = err
            message = out_of_memory if is_out_of_memory(err) else f"{type(err).__name__}: {err}"
        timed = self.is_main_process and self._timed_checkpoint_due()  # one clock decides for all
        agreed = ranks.agree_on_step(
            self.accelerator, loss, message, stop=self._stop_requested_here(), checkpoint=timed
        )
        if agreed.failed_rank is not None:
            self.failure_agreed = True
            if failure is not None:
                raise failure
            raise TrainingError(f"process {agreed.failed_rank} failed: {agreed.message}")
        if agreed.stop:
            self.stop.set()
        return loss, agreed.mean_loss, agreed.stop, agreed.checkpoint

    def _record_steps(self, pending: list[PendingStep]) -> TrainResult | None:
        """Read the PENDING steps' losses and gradient norms (one wait for the device), check them
        and record them; empties PENDING. A TrainResult when one was not finite (the run failed)."""
        if not pending:
            return None
        numbers = read_steps(pending)
        steps = list(pending)
        pending.clear()
        # the read waited for the device: the last step is done now (the others' clocks are their launches)
        steps[-1].clock = time.perf_counter()
        for index, (taken, (loss_value, norm_value)) in enumerate(zip(steps, numbers, strict=True)):
            steps_after = len(steps) - index - 1  # steps taken after this one before this read
            if not math.isfinite(loss_value):
                return self._fail_nonfinite(loss_value, steps_after=steps_after)
            if norm_value is not None and not math.isfinite(norm_value):
                return self._fail_nonfinite(norm_value, "the gradient norm", steps_after=steps_after)
            self._record_step(taken.sentences, loss_value, norm_value, taken.clock, taken.lr)
        return None

    def _record_step(
        self, batch_sentences: int, loss_value: float, grad_norm: float | None, clock: float, lr: float
    ) -> None:
        position = self.position
        position.step += 1
        position.epoch_step += 1
        position.loss_sum += loss_value
        position.loss_count += 1
        self.steps_this_session += 1
        rate = self.throughput.add(clock, batch_sentences * self.accelerator.num_processes)
        per_step = (clock - self.started) / self.steps_this_session
        self.emit(
            StepEvent(
                kind="step",
                time=now(),
                epoch=position.epoch + 1,
                step=position.step,
                epoch_step=position.epoch_step,
                steps_per_epoch=self.steps_per_epoch,
                total_steps=self.total_steps,
                loss=loss_value,
                lr=lr,
                grad_norm=grad_norm,
                sentences_per_s=rate,
                elapsed_s=self.elapsed_before + clock - self.started,
                eta_s=per_step * (self.total_steps - position.step),
            )
        )

    def _fail_nonfinite(self, value: float, what: str = "loss", steps_after: int = 0) -> TrainResult:
        """End the run on a non-finite loss or gradient norm at the next step not yet recorded.
        STEPS_AFTER: steps taken after it before it was read (an accelerator reads every few steps);
        the bad step itself was skipped on the device, so no weight ever held a non-finite number."""
        step = self.position.step
        message = nonfinite_message(what, value, step + 1, steps_after)
        self.emit(EndEvent(kind="end", time=now(), status="failed", error=message, step=step))
        return self.position.result(self.run_dir, "failed", error=message)

    # ------------------------------------------------------------ the end of an epoch

    def _end_epoch(self) -> bool:
        """Validate, keep the model if it is the best so far, record the epoch and checkpoint.
        True when the training should end here (early stop, or stopped at the epoch's end)."""
        position, config = self.position, self.config
        self.gold.flush(self.accelerator)
        metrics = validate(self.model, self.val_loader, self.accelerator, config)
        averaged: dict[str, float] | None = None
        use_average = False
        if self.ema is not None:
            with self.ema.swapped_in(self.params):
                averaged = validate(self.model, self.val_loader, self.accelerator, config)
                use_average = averaged["mcc"] > metrics["mcc"]  # ties keep the live weights
                if use_average and averaged["mcc"] > position.best_val_mcc:
                    self._save_best()  # the averaged weights, while they are in the model
        chosen = averaged if use_average and averaged is not None else metrics
        improved = chosen["mcc"] > position.best_val_mcc
        epoch = position.epoch + 1
        if improved:
            position.best_val_mcc, position.best_epoch, position.stale_epochs = chosen["mcc"], epoch, 0
            if not use_average:
                self._save_best()
        else:
            position.stale_epochs += 1
        record = EpochEvent(
            kind="epoch",
            time=now(),
            epoch=epoch,
            step=position.step,
            train_loss=position.loss_sum / max(1, position.loss_count),
            val_n=int(chosen["n"]),
            val_loss=chosen["loss"],
            val_accuracy=chosen["accuracy"],
            val_mcc=chosen["mcc"],
            best=improved,
            elapsed_s=self.elapsed_s(),
        )
        if averaged is not None:
            record["raw_val_mcc"] = metrics["mcc"]
            record["ema_val_mcc"] = averaged["mcc"]
            record["weights"] = "ema" if use_average else "raw"
        position.history.append(record)
        self.emit(record)
        position.epoch, position.epoch_step, position.loss_sum, position.loss_count = epoch, 0, 0.0, 0
        early_stop = bool(config.patience) and position.stale_epochs >= config.patience
        position.finished = position.epoch >= config.epochs or early_stop
        self._checkpoint()
        if early_stop:
            self.log(f"early stop: no better validation MCC for {config.patience} epochs")
            return True
        return self._stop_agreed() and not position.finished

    def _save_best(self) -> None:
        """model/ := the model's weights as they are now (the main process writes it)."""
        if self.is_main_process:
            save_model(self.run_dir, self.accelerator.unwrap_model(self.model), self.tokenizer)

    def elapsed_s(self) -> float:
        """The run's training time so far, over every session (resumes included)."""
        return self.elapsed_before + time.perf_counter() - self.started

    def _timed_checkpoint_due(self) -> bool:
        """Whether checkpoint_minutes of training have passed since the last checkpoint (or the start)."""
        minutes = self.config.checkpoint_minutes
        return bool(minutes) and time.perf_counter() - self.last_checkpoint_at >= minutes * 60

    def _checkpoint(self) -> None:
        position = self.position
        position.train_seconds = self.elapsed_s()
        self.gold.flush(self.accelerator)  # the map covers at least what the checkpoint does (a collective)
        rng = rng_states(self.accelerator.num_processes)  # every process's (a collective)
        if self.is_main_process:
            if self.writer is not None:
                self.writer.sync()  # the steps this checkpoint covers are on the disk before it
            if self.gold.dynamics is not None:
                self.gold.dynamics.save(self.run_dir)
            save_checkpoint(
                self.run_dir,
                self.accelerator.unwrap_model(self.model),
                self.optimizer,
                self.scheduler,
                position.to_meta(),
                rng=rng,
                ema=self.ema.tensors if self.ema is not None else None,
            )
            self.emit(
                CheckpointEvent(
                    kind="checkpoint",
                    time=now(),
                    step=position.step,
                    epoch=position.epoch,
                    epoch_step=position.epoch_step,
                )
            )
        self.accelerator.wait_for_everyone()
        self.last_checkpoint_at = time.perf_counter()

    def _stopped(self) -> TrainResult:
        position = self.position
        self._checkpoint()
        self.emit(
            EndEvent(
                kind="end",
                time=now(),
                status="stopped",
                step=position.step,
                epoch=position.epoch,
                best_val_mcc=position.best_val_mcc,
            )
        )
        return position.result(self.run_dir, "stopped")

    # ------------------------------------------------------------ stopping

    def _stop_requested_here(self) -> bool:
        """This process's own view: the stop flag, or (main process) a stop request file (`workbench stop`)."""
        if self.is_main_process and (self.run_dir / STOP_FILE).exists():
            self.stop.set()
        return self.stop.is_set()

    def _stop_agreed(self) -> bool:
        """The stop flag or a stop request file (`workbench stop`), agreed by all processes (a
        collective of its own with several: used between epochs; a step's agreement carries it)."""
        self._stop_requested_here()
        return ranks.agree_on_stop(self.accelerator, self.stop)
