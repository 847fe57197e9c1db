"""Fine-tuning: one plain function, `train(config, run_dir, on_event, stop)`, for CLI and TUI alike.

Long work reports through ON_EVENT (typed records, core/events.py: the same objects that go to
metrics.jsonl) and ends at the next batch when STOP is set, leaving a checkpoint. The loop reads
as its steps: prepare the data, build the model and optimizer, restore, train an epoch, end the
epoch (validate, keep the best model, checkpoint), finish (the final evaluation).
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.base.durable import fault_point, fsync_dir, fsync_file
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
from workbench.core.base.layout import PID_FILE, STOP_FILE, RunError, check_writable
from workbench.core.runs.lock import RunLock
from workbench.core.runs.metrics import MetricsWriter, read_metrics
from workbench.core.training import ranks, trackers
from workbench.core.training.checkpoint import (
    CheckpointError,
    checkpoint_meta,
    load_checkpoint,
    rank_rng_state,
    recover_run,
    rng_states,
    save_checkpoint,
    save_model,
    update_checkpoint_meta,
)

EventCallback = Callable[[Event], None]


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # done, stopped, failed
    epochs_done: int
    best_epoch: int
    best_val_mcc: float
    error: str = ""
    history: list[EpochEvent] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)


READ_EVERY_ON_DEVICE = 10  # steps between host reads of the loss on an accelerator (read_interval)


@dataclass
class Position:
    """Where a training is; every checkpoint's meta.json holds it, so a resume starts here."""

    epoch: int = 0  # epochs completed
    epoch_step: int = 0  # optimizer steps done in the current epoch
    step: int = 0
    best_val_mcc: float = -2.0
    best_epoch: int = 0
    stale_epochs: int = 0  # epochs since the best, for --patience
    loss_sum: float = 0.0  # over the current epoch
    loss_count: int = 0
    history: list[EpochEvent] = field(default_factory=list)
    finished: bool = False  # trained: only the finish (calibration, final evaluation) is left
    calibrated: bool = False  # the decision threshold is folded into model/ (not to be folded twice)
    calibration: dict[str, Any] = field(default_factory=dict)  # its entries for the end event
    evaluated: bool = False  # the final evaluation is written: nothing is left to resume

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Position:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in meta.items() if k in known})

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- small pure helpers

def layer_index(name: str, num_layers: int) -> int:
    """Depth of a parameter: 0 for embeddings, i+1 for encoder layer i, top for the head."""
    if "embeddings" in name:
        return 0
    match = re.search(r"\.layer\.(\d+)\.", name)
    if match:
        return int(match.group(1)) + 1
    return num_layers + 1


def no_decay(name: str) -> bool:
    """Biases and LayerNorm weights get no weight decay (as in BERT)."""
    lowered = name.lower()
    return lowered.endswith("bias") or "layernorm" in lowered or "layer_norm" in lowered


def parameter_groups(model: Any, learning_rate: float, weight_decay: float,
                     layer_lr_decay: float = 1.0) -> list[dict[str, Any]]:
    """AdamW groups: decay / no decay, times a learning rate per layer when LAYER_LR_DECAY < 1."""
    num_layers = int(getattr(model.config, "num_hidden_layers", 0))
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_index(name, num_layers) if layer_lr_decay < 1.0 else num_layers + 1
        skip = no_decay(name)
        key = (depth, skip)
        if key not in groups:
            scale = layer_lr_decay ** (num_layers + 1 - depth)
            groups[key] = {"params": [], "names": [], "lr": learning_rate * scale,
                           "weight_decay": 0.0 if skip else weight_decay}
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def warmup_steps(total_steps: int, warmup_ratio: float) -> int:
    return math.ceil(total_steps * warmup_ratio)


class LengthGroupedSampler:
    """Shuffled indices, grouped so each batch holds sentences of similar length.

    Uses transformers' grouping; the order depends only on (seed, epoch), so a
    resumed run sees the same batches as an uninterrupted one."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        import torch
        from transformers.trainer_pt_utils import get_length_grouped_indices

        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        return iter(get_length_grouped_indices(self.lengths, self.batch_size, generator=generator))


def encode(tokenizer: Any, sentences: list[str], labels: list[int] | None, max_length: int) -> list[dict[str, Any]]:
    encoded = tokenizer(sentences, truncation=True, max_length=max_length)
    rows = []
    for i in range(len(sentences)):
        row = {key: encoded[key][i] for key in encoded.keys()}
        if labels is not None:
            row["labels"] = int(labels[i])
        rows.append(row)
    return rows


class Throughput:
    """Sentences per second over the last few steps."""

    def __init__(self, window: int = 20):
        self.marks: deque[tuple[float, int]] = deque(maxlen=window + 1)

    def add(self, now: float, sentences: int) -> float:
        total = (self.marks[-1][1] if self.marks else 0) + sentences
        self.marks.append((now, total))
        if len(self.marks) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self.marks[0], self.marks[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


# ---------------------------------------------------------------- the training function

def prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> TrainConfig:
    """Check the folder and return the config to use (the saved one when resuming)."""
    problems = config.validate()
    if problems:
        raise TrainingError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    if not resume:
        check_data(config)  # a bad data file stops here, before a run folder is made
        check_model_source(config)  # so does an unreachable hub
    check_writable(run_dir)
    saved = run_dir / "config.json"
    if resume:
        if not saved.is_file():
            raise TrainingError(f"{run_dir}: not a run folder (no config.json)")
        check_resumable(run_dir)  # here, before anything is written to the run
        config = TrainConfig.load(saved)
        check_data(config)
        check_model_source(config)
        return config
    if saved.exists() or (run_dir / "metrics.jsonl").exists():
        raise TrainingError(f"{run_dir}: a run already exists here; resume it with --resume or pick another name")
    return config


def check_resumable(run_dir: Path) -> None:
    """Refuse to resume RUN_DIR when nothing is left to do: trained and evaluated (its checkpoint
    says so; a checkpoint from before `evaluated` was recorded, or none, when its last end event
    is done), or its checkpoint deleted (a sweep deletes those of its trials). A run killed before
    its first checkpoint is resumable: from step 0."""
    meta = checkpoint_meta(run_dir)
    events = read_metrics(run_dir)
    ends = [e for e in events if e["kind"] == "end"]
    done = bool(ends) and ends[-1]["status"] == "done"
    if meta is not None and "evaluated" in meta:
        ended = bool(meta.get("finished")) and bool(meta["evaluated"])
    else:
        ended = done and (meta is None or bool(meta.get("finished")))
    if ended:
        raise TrainingError(f"{run_dir}: this run has finished; nothing to resume")
    if meta is None and any(e["kind"] == "checkpoint" for e in events):
        raise TrainingError(f"{run_dir}: no checkpoint to resume from (it was deleted after it was written)")


def check_model_source(config: TrainConfig) -> None:
    """A hub model while the hub is unreachable fails here in a few seconds (ModelError), before
    a run folder is made; a local folder costs nothing."""
    from workbench.core.model.loading import hub_options, resolve_model

    hub_options(config.model, resolve_model(config.model))


def check_data(config: TrainConfig) -> None:
    """Load CONFIG's data once (DataError names the file and line) so a bad file fails before training."""
    from workbench.core.data.cola import load_cola

    load_cola(config.data or None, config.validation_fraction, config.split_seed)


def train(config: TrainConfig, run_dir: Path | str, on_event: EventCallback | None = None,
          stop: threading.Event | None = None, resume: bool = False, allow_pickle: bool = False) -> TrainResult:
    """Fine-tune CONFIG.model on CoLA into RUN_DIR; resume from its checkpoint if RESUME.

    Under `accelerate launch` / `torchrun` every process calls this; only the main
    process checks, locks and writes the run folder."""
    from accelerate import PartialState

    run_dir = Path(run_dir)
    stop = stop or threading.Event()
    state = PartialState(cpu=not cuda_available())
    lock: RunLock | None = None
    failure: Exception | None = None
    if state.is_main_process:
        try:
            config = prepare_run_dir(config, run_dir, resume)
            try:
                lock = RunLock(run_dir).__enter__()
            except RunError as err:
                raise TrainingError(str(err)) from None
            if not resume:
                config.save(run_dir / "config.json")
            (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
            (run_dir / STOP_FILE).unlink(missing_ok=True)
        except Exception as err:  # with several processes, the others must hear of it first
            failure = err
    try:
        if state.num_processes > 1:  # the others wait here for the main process's checks (a broadcast)
            told = ranks.main_failure(failure)
            if told is not None and not state.is_main_process:
                raise TrainingError(f"process 0 failed: {told}")
        if failure is not None:
            raise failure
        if resume and not state.is_main_process:
            config = TrainConfig.load(run_dir / "config.json")
        return _Trainer(config, run_dir, on_event, stop, resume, allow_pickle).run()
    finally:
        if lock is not None:
            (run_dir / PID_FILE).unlink(missing_ok=True)
            (run_dir / STOP_FILE).unlink(missing_ok=True)
            lock.__exit__()


class _Trainer:
    """One training, as its steps; `run` calls them in order."""

    def __init__(self, config: TrainConfig, run_dir: Path, on_event: EventCallback | None,
                 stop: threading.Event, resume: bool, allow_pickle: bool = False):
        self.config = config
        self.run_dir = run_dir
        self.on_event = on_event
        self.stop = stop
        self.resume = resume
        self.allow_pickle = allow_pickle  # the user's opt-in to pickle weights for CONFIG.model
        self.writer: MetricsWriter | None = None
        self.position = Position()
        self.restarted = False  # resumed with no checkpoint: trains again from step 0
        self.emitting = threading.RLock()  # the failure watch may end the run from its own thread
        self.ended = False  # an end event was emitted
        self.failure_agreed = False  # every process knows of this failure (ranks.agree_on_step)
        self.board: ranks.FailureBoard | None = None  # several processes: failures that cannot be agreed
        # set by the steps below
        self.accelerator: Any = None
        self.tokenizer: Any = None
        self.train_sentences: list[str] = []  # the training part's sentences (for the neighbour index)
        self.model: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.train_loader: Any = None
        self.val_loader: Any = None
        self.params: list[Any] = []
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.read_every = 1  # steps between host reads of the loss (read_interval)

    def emit(self, event: Event) -> None:
        with self.emitting:
            if self.writer is not None:
                self.writer.write(dict(event))
            if self.on_event is not None:
                self.on_event(event)
            trackers.log_event(self.accelerator, event)  # --report-to: step loss/lr, epoch metrics, final scores
            self.ended = self.ended or event["kind"] == "end"

    def run(self) -> TrainResult:
        self._start_accelerator()
        if self.accelerator.is_main_process:
            self.writer = MetricsWriter(self.run_dir / "metrics.jsonl")
        if self.accelerator.num_processes > 1:
            self.board = ranks.FailureBoard(self.accelerator.process_index)
            self.board.watch(self._peer_failed)
        try:
            if self.resume and self.accelerator.is_main_process:  # under the run lock
                recover_run(self.run_dir)  # after a kill mid-swap
            return self._train()
        except Exception as err:  # the run folder records every failure before it propagates
            error, peer = f"{type(err).__name__}: {err}", None
            if self.board is not None and not self.failure_agreed:
                peer = self.board.read()  # this process failed because another one died?
                if peer is None:
                    self.board.post(error)  # tell the others, who may be waiting in a collective
            if peer is not None:
                error = f"process {peer[0]} failed: {peer[1]}"
            self.emit(EndEvent(kind="end", time=now(), status="failed", error=error))
            if peer is not None:
                raise TrainingError(error) from err
            raise
        finally:
            if self.board is not None:
                self.board.close()
            trackers.finish(self.accelerator)  # --report-to
            if self.writer is not None:
                self.writer.close()

    def _peer_failed(self, rank: int, message: str) -> None:
        """Another process failed where this one could not hear it (the failure watch's thread): end the
        run with its message, then this process, which may be waiting in a collective for ever."""
        with self.emitting:
            if not self.ended:
                error = f"process {rank} failed: {message}"
                self.emit(LogEvent(kind="log", time=now(), message=f"error: {error}; ending process "
                                   f"{self.accelerator.process_index}"))
                self.emit(EndEvent(kind="end", time=now(), status="failed", error=error))
                if self.writer is not None:
                    self.writer.close()
                os._exit(1)

    def _train(self) -> TrainResult:
        from accelerate.utils import set_seed

        set_seed(self.config.seed)
        train_rows, val_rows = self._prepare_data()
        self._build_model_and_optimizer(train_rows, val_rows)
        self._restore()
        self._emit_start(len(train_rows), len(val_rows))
        self.started = time.perf_counter()
        self.steps_this_session = 0
        self.throughput = Throughput()
        while not self.position.finished and self.position.epoch < self.config.epochs:
            outcome = self._train_epoch()
            if outcome is not None:  # failed (non-finite loss) or stopped mid-epoch
                return outcome
            if self._end_epoch():
                break
        if self.position.finished:
            return self._finish()
        return self._stopped()

    # ------------------------------------------------------------ steps

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
        self.accelerator = Accelerator(cpu=not on_gpu, mixed_precision=resolve_precision(
            self.config.precision, "cuda" if on_gpu else "cpu"),
            **trackers.accelerator_kwargs(self.config, self.run_dir))  # --report-to
        trackers.start(self.accelerator, self.config, self.run_dir)  # --report-to
        self.read_every = read_interval(self.accelerator.device.type)

    def _prepare_data(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The run's train and validation sentences, tokenized."""
        from workbench.core.data.cola import load_cola
        from workbench.core.model.loading import load_tokenizer

        config = self.config
        cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
        train_frame, val_frame = cola["train"], cola["validation"]
        if config.train_limit:
            train_frame = train_frame.iloc[: config.train_limit]
        self.tokenizer = load_tokenizer(config.model)
        self.train_sentences = train_frame["sentence"].astype(str).tolist()  # for the neighbour index at the end
        train_rows = encode(self.tokenizer, train_frame["sentence"].tolist(), train_frame["label"].tolist(),
                            config.max_length)
        val_rows = encode(self.tokenizer, val_frame["sentence"].tolist(), val_frame["label"].tolist(),
                          config.max_length)
        return train_rows, val_rows

    def _build_model_and_optimizer(self, train_rows: list[dict[str, Any]], val_rows: list[dict[str, Any]]) -> None:
        """Model, length-grouped loaders, grouped AdamW and the warmup schedule, prepared by Accelerate."""
        import torch
        from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

        from workbench.core.model.loading import load_model
        from workbench.core.training.recipe import apply_recipe

        config, accelerator = self.config, self.accelerator
        model = load_model(config.model, allow_pickle=self.allow_pickle)
        apply_recipe(model, config)  # dropout, reinit_top_layers (core/recipe.py)
        from workbench.core.training.speed import cheap_dropout, cls_only_last_layer, freeze_word_embeddings

        if config.freeze_embeddings:
            freeze_word_embeddings(model)  # before the optimizer groups: the table gets no gradient, no AdamW state
        cls_only_last_layer(model)  # the head reads only [CLS] of the last layer: skip the rest there (exact)
        if accelerator.device.type == "cpu":
            cheap_dropout(model)  # CPU dropout masks without bernoulli_ (core/speed.py)
        collator = DataCollatorWithPadding(self.tokenizer)
        sampler = LengthGroupedSampler([len(r["input_ids"]) for r in train_rows], config.batch_size, config.seed)
        # Own generators keep DataLoader iterators from drawing on the global RNG, so
        # dropout draws are the same in a resumed run as in an uninterrupted one.
        train_loader: Any = torch.utils.data.DataLoader(
            train_rows,  # type: ignore[arg-type]  # a list is a map-style dataset
            batch_size=config.batch_size, sampler=sampler, collate_fn=collator,
            generator=torch.Generator().manual_seed(0))
        val_order = sorted(range(len(val_rows)), key=lambda i: len(val_rows[i]["input_ids"]))
        val_loader: Any = torch.utils.data.DataLoader(
            [val_rows[i] for i in val_order],  # type: ignore[arg-type]
            batch_size=config.eval_batch_size, shuffle=False,
            collate_fn=collator, generator=torch.Generator().manual_seed(0))
        fused: dict[str, Any] = {"fused": True} if fused_adamw_ok(accelerator.device.type) else {"foreach": True}
        groups = parameter_groups(model, config.learning_rate, config.weight_decay, config.layer_lr_decay)
        optimizer = torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups],
                                      lr=config.learning_rate, eps=config.adam_epsilon, **fused)
        (self.model, self.optimizer, self.train_loader,
         self.val_loader) = accelerator.prepare(model, optimizer, train_loader, val_loader)
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, warmup_steps(self.total_steps, config.warmup_ratio), self.total_steps)
        self.params = [p for p in self.model.parameters() if p.requires_grad]

    def _restore(self) -> None:
        """When resuming: weights, optimizer, schedule, random state and position from the checkpoint."""
        if not self.resume:
            return
        if checkpoint_meta(self.run_dir) is None:  # killed before its first checkpoint
            self.restarted = True
            return
        try:
            meta, state = load_checkpoint(self.run_dir)
        except CheckpointError as err:
            raise TrainingError(str(err)) from None
        from workbench.core.training.checkpoint import set_rng_state

        self.accelerator.unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(rank_rng_state(state["rng"], self.accelerator.process_index))
        self.position = Position.from_meta(meta)

    def _emit_start(self, train_sentences: int, val_sentences: int) -> None:
        accelerator = self.accelerator
        self.device_name = device_name(accelerator.device)
        self.emit(StartEvent(
            kind="start", time=now(), run=self.run_dir.name, model=self.config.model, device=self.device_name,
            precision=accelerator.mixed_precision, processes=accelerator.num_processes,
            train_sentences=train_sentences, validation_sentences=val_sentences,
            steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps, epochs=self.config.epochs,
            resumed_at_step=self.position.step if self.resume else None))
        if self.restarted:
            self.emit(LogEvent(kind="log", time=now(), message=(
                "no checkpoint yet (the run was killed before its first one): training restarts from step 0 "
                "with the run's saved config.json")))
        elif self.position.finished:
            self.emit(LogEvent(kind="log", time=now(), message=(
                "the run is trained; resuming its final evaluation")))

    def _train_epoch(self) -> TrainResult | None:
        """The optimizer steps of one epoch (from where a resume left it). A TrainResult when the
        run ends here: failed on a non-finite loss or gradient (the weights as they were before that
        step), or stopped mid-epoch (with a checkpoint)."""
        position, accelerator = self.position, self.accelerator
        self.train_loader.set_epoch(position.epoch)
        loader = self.train_loader
        if position.epoch_step:
            loader = accelerator.skip_first_batches(self.train_loader, position.epoch_step)
        self.model.train()
        config = self.config
        out_of_memory = (f"out of memory at batch size {config.batch_size} (max length {config.max_length}) on "
                         f"{self.device_name}; try --batch-size {max(1, config.batch_size // 2)}")
        pending: list[PendingStep] = []  # steps taken, their loss and gradient norm not read yet
        for batch in loader:
            if self.accelerator.num_processes == 1 and self._should_stop():
                break  # several processes learn of a stop from the step's agreement (_forward)
            with out_of_memory_as(out_of_memory):
                loss, shared_loss, agreed_stop = self._forward(batch, out_of_memory)
                if shared_loss is not None and not math.isfinite(shared_loss):  # agreed by every process
                    return self._record_steps(pending) or self._fail_nonfinite(shared_loss)
                if agreed_stop:
                    break  # agreed by every process, before any of them changes the weights
                accelerator.backward(loss)
                # the step is skipped unless the loss and gradient norm are finite (on the device)
                grad_norm = clip_and_step(accelerator, self.optimizer, self.params, config.max_grad_norm, loss)
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                pending.append(PendingStep(int(batch["labels"].shape[0]), loss.detach(), grad_norm, shared_loss,
                                           time.perf_counter(), self.scheduler.get_last_lr()[-1]))
                step = position.step + len(pending)
                checkpoint_due = bool(config.checkpoint_every) and step % config.checkpoint_every == 0
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
        if self._should_stop() and position.epoch_step < self.steps_per_epoch:
            return self._stopped()
        return None

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
            later = len(steps) - index - 1  # steps taken after this one before this read
            if not math.isfinite(loss_value):
                return self._fail_nonfinite(loss_value, later=later)
            if norm_value is not None and not math.isfinite(norm_value):
                return self._fail_nonfinite(norm_value, "the gradient norm", later=later)
            self._record_step(taken.sentences, loss_value, norm_value, taken.clock, taken.lr)
        return None

    def _record_step(self, batch_sentences: int, loss_value: float, grad_norm: float | None,
                     clock: float, lr: float) -> None:
        position = self.position
        position.step += 1
        position.epoch_step += 1
        position.loss_sum += loss_value
        position.loss_count += 1
        self.steps_this_session += 1
        rate = self.throughput.add(clock, batch_sentences * self.accelerator.num_processes)
        per_step = (clock - self.started) / self.steps_this_session
        self.emit(StepEvent(
            kind="step", time=now(), epoch=position.epoch + 1, step=position.step, epoch_step=position.epoch_step,
            steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps, loss=loss_value,
            lr=lr, grad_norm=grad_norm, sentences_per_s=rate,
            elapsed_s=clock - self.started, eta_s=per_step * (self.total_steps - position.step)))

    def _end_epoch(self) -> bool:
        """Validate, keep the model if it is the best so far, record the epoch and checkpoint.
        True when the training should end here (early stop, or stopped at the epoch's end)."""
        position, config = self.position, self.config
        metrics = self._validate()
        improved = metrics["mcc"] > position.best_val_mcc
        epoch = position.epoch + 1
        if improved:
            position.best_val_mcc, position.best_epoch, position.stale_epochs = metrics["mcc"], epoch, 0
            if self.accelerator.is_main_process:
                save_model(self.run_dir, self.accelerator.unwrap_model(self.model), self.tokenizer)
        else:
            position.stale_epochs += 1
        record = EpochEvent(
            kind="epoch", time=now(), epoch=epoch, step=position.step,
            train_loss=position.loss_sum / max(1, position.loss_count), val_n=int(metrics["n"]),
            val_loss=metrics["loss"], val_accuracy=metrics["accuracy"], val_mcc=metrics["mcc"], best=improved,
            elapsed_s=time.perf_counter() - self.started)
        position.history.append(record)
        self.emit(record)
        position.epoch, position.epoch_step, position.loss_sum, position.loss_count = epoch, 0, 0.0, 0
        early_stop = bool(config.patience) and position.stale_epochs >= config.patience
        position.finished = position.epoch >= config.epochs or early_stop
        self._checkpoint()
        if early_stop:
            self.emit(LogEvent(kind="log", time=now(),
                               message=f"early stop: no better validation MCC for {config.patience} epochs"))
            return True
        return self._should_stop() and not position.finished

    def _checkpoint(self) -> None:
        position = self.position
        rng = rng_states(self.accelerator.num_processes)  # every process's (a collective)
        if self.accelerator.is_main_process:
            if self.writer is not None:
                self.writer.sync()  # the steps this checkpoint covers are on the disk before it
            save_checkpoint(self.run_dir, self.accelerator.unwrap_model(self.model), self.optimizer, self.scheduler,
                            position.to_meta(), rng=rng)
            self.emit(CheckpointEvent(kind="checkpoint", time=now(), step=position.step, epoch=position.epoch,
                                      epoch_step=position.epoch_step))
        self.accelerator.wait_for_everyone()

    def _stopped(self) -> TrainResult:
        position = self.position
        self._checkpoint()
        self.emit(EndEvent(kind="end", time=now(), status="stopped", step=position.step, epoch=position.epoch,
                           best_val_mcc=position.best_val_mcc))
        return self._result("stopped")

    def _finish(self) -> TrainResult:
        """Calibrate (once), evaluate, end. Each part done is recorded in the checkpoint's meta.json, so
        that a run killed here resumes with what is left; the end event comes before `evaluated`
        (a kill between them evaluates again, which changes nothing)."""
        position = self.position
        final: dict[str, Any] = {}
        if self.accelerator.is_main_process:
            if not position.calibrated:
                position.calibration = self._calibrate()
                position.calibrated = True
                update_checkpoint_meta(self.run_dir, position.to_meta())
            final = self._final_eval()
        end = EndEvent(kind="end", time=now(), status="done", step=position.step, epoch=position.epoch,
                       best_epoch=position.best_epoch, best_val_mcc=position.best_val_mcc)
        end.update(final)  # type: ignore[typeddict-item]  # holdout_mcc, holdout_accuracy, in_domain_dev_mcc
        self.emit(end)
        if self.accelerator.is_main_process:
            position.evaluated = True
            update_checkpoint_meta(self.run_dir, position.to_meta())
        return self._result("done", final=final)

    # ------------------------------------------------------------ helpers of the steps

    def _stop_requested(self) -> bool:
        """This process's own view: the stop flag, or (main process) a stop request file (`workbench stop`)."""
        if self.accelerator.is_main_process and (self.run_dir / STOP_FILE).exists():
            self.stop.set()
        return self.stop.is_set()

    def _should_stop(self) -> bool:
        """The stop flag or a stop request file (`workbench stop`), agreed by all processes (a
        collective of its own with several: used between epochs; a step's agreement carries it)."""
        self._stop_requested()
        if self.accelerator.num_processes == 1:
            return self.stop.is_set()
        import torch

        flag = torch.tensor([1.0 if self.stop.is_set() else 0.0], device=self.accelerator.device)
        agreed = float(self.accelerator.reduce(flag, reduction="sum").item()) > 0
        if agreed:
            self.stop.set()
        return agreed  # the agreed answer, not the flag: a signal arriving after the reduce waits for the next one

    def _forward(self, batch: Any, out_of_memory: str) -> tuple[Any, float | None, bool]:
        """The batch's loss; with several processes also their mean loss and whether any of them was
        asked to stop, agreed by all after each said whether its forward pass failed
        (ranks.agree_on_step): when one did, every process raises here, the failing one its own
        error, the others "process R failed: ..."."""
        if self.accelerator.num_processes == 1:
            return self.model(**batch).loss, None, False
        loss, failure, message = None, None, None
        try:
            loss = self.model(**batch).loss
        except Exception as err:
            failure = err
            message = out_of_memory if is_out_of_memory(err) else f"{type(err).__name__}: {err}"
        agreed = ranks.agree_on_step(self.accelerator, loss, message, stop=self._stop_requested())
        if agreed.failed_rank is not None:
            self.failure_agreed = True
            if failure is not None:
                raise failure
            raise TrainingError(f"process {agreed.failed_rank} failed: {agreed.message}")
        if agreed.stop:
            self.stop.set()
        return loss, agreed.mean_loss, agreed.stop

    def _validate(self) -> dict[str, float]:
        import torch

        from workbench.core.evaluation.evaluate import compute_metrics

        model = self.model
        model.eval()
        all_logits, all_labels = [], []
        size = self.config.eval_batch_size
        out_of_memory = (f"out of memory validating at eval batch size {size} (max length "
                         f"{self.config.max_length}); try --eval-batch-size {max(1, size // 2)}")
        with torch.no_grad():
            for batch in self.val_loader:
                with out_of_memory_as(out_of_memory):
                    logits = model(**batch).logits.float()
                logits, labels = self.accelerator.gather_for_metrics((logits, batch["labels"]))
                all_logits.append(logits.cpu())
                all_labels.append(labels.cpu())
        model.train()
        logits = torch.cat(all_logits)
        labels = torch.cat(all_labels)
        metrics = compute_metrics(labels.tolist(), logits.argmax(-1).tolist())
        metrics["loss"] = float(torch.nn.functional.cross_entropy(logits, labels))
        return metrics

    def _final_eval(self) -> dict[str, Any]:
        """Score the best model (calibrated) on in_domain_dev and the holdout; writes eval.json."""
        from workbench.core.data.cola import FINAL_SPLITS, load_cola
        from workbench.core.evaluation.evaluate import evaluate_frame, record_report
        from workbench.core.model.loading import load_model

        fault_point("final-eval")  # crash tests: a kill here resumes the evaluation
        if not (self.run_dir / "model").is_dir():
            return {}
        config = self.config
        size = config.eval_batch_size
        with out_of_memory_as(f"out of memory in the final evaluation at eval batch size {size} (max length "
                              f"{config.max_length}); the trained model is kept: free some memory and resume "
                              "the run to evaluate it"):
            model = load_model(str(self.run_dir / "model")).to(self.accelerator.device)
            cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
            reports = {name: evaluate_frame(model, self.tokenizer, cola[name], name, config.max_length, size)
                       for name in FINAL_SPLITS}
        for report in reports.values():
            fsync_file(record_report(self.run_dir, report))  # on the disk before `evaluated` is
        fsync_dir(self.run_dir)
        self._write_neighbor_index(model)
        holdout, dev = reports["holdout"], reports["in_domain_dev"]
        return {"holdout_mcc": holdout.mcc, "holdout_accuracy": holdout.accuracy, "in_domain_dev_mcc": dev.mcc,
                **self.position.calibration}

    def _write_neighbor_index(self, model: Any) -> None:
        """The training sentences' vectors by the final model, in the run folder (neighbors-train.npz), so that
        the first nearest-neighbour query in a face needs no pass over them. A cache: the faces rebuild it when
        it is missing, so a failure here (no memory, a full disk) costs only that."""
        from workbench.core.model.sentence_vectors import INDEX_MAX_LENGTH, write_run_index

        sentences = self.train_sentences
        if not sentences:
            return
        positions = getattr(model.config, "max_position_embeddings", INDEX_MAX_LENGTH)
        try:
            write_run_index(model, self.tokenizer, self.run_dir, sentences, min(INDEX_MAX_LENGTH, positions))
        except (OSError, RuntimeError):
            pass

    def _calibrate(self) -> dict[str, Any]:
        """Fold the validation-best decision threshold into model/ (core/threshold.py), unless turned off."""
        from workbench.core.evaluation.calibration import calibrate_run

        if not (self.run_dir / "model").is_dir():
            return {}
        size = self.config.eval_batch_size
        with out_of_memory_as(f"out of memory calibrating the decision threshold at eval batch size {size} "
                              f"(max length {self.config.max_length}); the trained model is kept: free some "
                              "memory and resume the run to finish it"):
            choice = calibrate_run(self.run_dir, self.config, device=self.accelerator.device)
        if choice is None:
            return {}
        self.emit(LogEvent(kind="log", time=now(), message=(
            f"decision threshold {choice.threshold:.3f} on p(acceptable): validation MCC "
            f"{choice.mcc_at_threshold:.3f} (at 0.5: {choice.mcc_at_half:.3f}); folded into the saved model")))
        return {"decision_threshold": choice.threshold}

    def _fail_nonfinite(self, value: float, what: str = "loss", later: int = 0) -> TrainResult:
        """End the run on a non-finite loss or gradient norm at the next step not yet recorded.
        LATER: steps taken after it before it was read (an accelerator reads every few steps); the
        bad step itself was skipped on the device, so no weight ever held a non-finite number."""
        step = self.position.step
        if later:
            stopped = (f"the step was skipped on the device, and training stopped {later} step(s) later, at the "
                       f"next read of the loss")
        else:
            stopped = "training stopped before the step changed the weights"
        message = (f"{what} became {value} at step {step + 1}; {stopped}. The last good checkpoint and the best "
                   f"model are kept; try a lower learning rate")
        self.emit(EndEvent(kind="end", time=now(), status="failed", error=message, step=step))
        return self._result("failed", error=message)

    def _result(self, status: str, error: str = "", final: dict[str, Any] | None = None) -> TrainResult:
        position = self.position
        return TrainResult(run_dir=self.run_dir, status=status, epochs_done=position.epoch,
                           best_epoch=position.best_epoch, best_val_mcc=position.best_val_mcc,
                           error=error, history=list(position.history), final=final or {})


@contextmanager
def out_of_memory_as(message: str) -> Iterator[None]:
    """Out of memory on any device (torch.OutOfMemoryError, or the CPU allocator's RuntimeError:
    core/errors.py) becomes a TrainingError saying MESSAGE; any other error goes through as it is."""
    try:
        yield
    except Exception as err:
        if not is_out_of_memory(err):
            raise
        raise TrainingError(message) from None


@dataclass
class PendingStep:
    """A step taken whose loss and gradient norm are still on the device."""

    sentences: int
    loss: Any  # a 0-d tensor
    grad_norm: Any  # a 0-d tensor, or None where unknown
    shared_loss: float | None  # several processes: their mean loss, already read (ranks.agree_on_step)
    clock: float  # perf_counter when the step was launched
    lr: float


def read_interval(device_type: str) -> int:
    """How many steps go between host reads of the loss and gradient norm on DEVICE_TYPE.

    A CPU has nothing to wait for: every step. On an accelerator each read waits for the device
    to finish its queued work, so the host reads every READ_EVERY_ON_DEVICE steps (the live
    chart still gets every step's loss, a few steps late); the non-finite check stays on the
    device in between (clip_and_step)."""
    return 1 if device_type == "cpu" else READ_EVERY_ON_DEVICE


def read_steps(pending: list[PendingStep]) -> list[tuple[float, float | None]]:
    """The PENDING steps' losses and gradient norms as numbers, in one read from the device."""
    import torch

    parts = []
    for taken in pending:
        if taken.shared_loss is None:
            parts.append(taken.loss.float().reshape(()))
        if taken.grad_norm is not None:
            parts.append(torch.as_tensor(taken.grad_norm).float().reshape(()))
    if parts:
        device = parts[0].device
        numbers = iter(torch.stack([t.to(device) for t in parts]).tolist())
    else:
        numbers = iter([])
    read = []
    for taken in pending:
        loss_value = taken.shared_loss if taken.shared_loss is not None else next(numbers)
        read.append((loss_value, None if taken.grad_norm is None else next(numbers)))
    return read


def clip_and_step(accelerator: Any, optimizer: Any, params: list[Any], max_norm: float, loss: Any = None) -> Any:
    """Clip the gradients' total norm to MAX_NORM, then take the optimizer step, unless the norm
    (or LOSS, when given) is not finite; the norm before clipping, a tensor (None where unknown).

    A non-finite gradient never reaches the weights. The fused AdamW is told on the device
    (`found_inf`, the hook torch's GradScaler uses: the kernel then leaves the weights, its moments
    and its step count as they were), so no step waits for a read from the GPU; the other paths
    check on the host. A gradient scaler (fp16) skips such steps itself and lowers its scale, a
    routine event: its norm is not returned.

    The fused AdamW also applies the clip inside its kernel as a gradient divisor (`grad_scale`),
    saving a pass that rescales every gradient in memory: the same update as clip_grad_norm_
    (grads x min(1, max_norm / (norm + 1e-6))) up to rounding. Anything else (a gradient scaler,
    sharded or DeepSpeed training, another optimizer) clips the usual way."""
    import torch
    from accelerate.utils import DistributedType

    inner = getattr(optimizer, "optimizer", optimizer)
    if accelerator.scaler is not None:
        accelerator.clip_grad_norm_(params, max_norm)
        optimizer.step()
        return None
    if (not getattr(inner, "defaults", {}).get("fused")
            or accelerator.distributed_type not in (DistributedType.NO, DistributedType.MULTI_GPU,
                                                    DistributedType.MULTI_CPU)):
        norm = accelerator.clip_grad_norm_(params, max_norm)
        finite = norm is None or math.isfinite(float(norm))  # a host read, off the fused path only
        if finite and loss is not None:
            finite = math.isfinite(float(loss.detach()))
        if finite:
            optimizer.step()
        return norm
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    inner.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0)
    bad = ~torch.isfinite(norm)
    if loss is not None:
        bad = bad | ~torch.isfinite(loss.detach().to(norm.device))
    inner.found_inf = bad.float()
    try:
        optimizer.step()
    finally:
        del inner.grad_scale, inner.found_inf
    return norm

