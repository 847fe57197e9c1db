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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.core import trackers
from workbench.core.checkpoint import (  # noqa: F401 - re-exported for callers of this module
    CHECKPOINT_MARKER,
    CheckpointError,
    load_checkpoint,
    recover_run,
    save_checkpoint,
    save_model,
)
from workbench.core.config import TrainConfig
from workbench.core.events import (
    CheckpointEvent,
    EndEvent,
    EpochEvent,
    Event,
    LogEvent,
    StartEvent,
    StepEvent,
    now,
)
from workbench.core.hardware import (  # noqa: F401 - re-exported
    cpu_has_bf16,
    cuda_available,
    device_memory,
    device_name,
    fused_adamw_ok,
    keep_freed_memory,
    resolve_precision,
)
from workbench.core.runs import PID_FILE, STOP_FILE, MetricsWriter, RunError, RunLock, check_writable

EventCallback = Callable[[Event], None]


class TrainingError(Exception):
    """Training cannot start or go on; the message says why and what to do."""


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
    finished: bool = False

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
    check_writable(run_dir)
    saved = run_dir / "config.json"
    if resume:
        if not saved.is_file():
            raise TrainingError(f"{run_dir}: not a run folder (no config.json)")
        config = TrainConfig.load(saved)
        check_data(config)
        return config
    if saved.exists() or (run_dir / "metrics.jsonl").exists():
        raise TrainingError(f"{run_dir}: a run already exists here; resume it with --resume or pick another name")
    return config


def check_data(config: TrainConfig) -> None:
    """Load CONFIG's data once (DataError names the file and line) so a bad file fails before training."""
    from workbench.core.data import load_cola

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
    if state.is_main_process:
        config = prepare_run_dir(config, run_dir, resume)
        try:
            lock = RunLock(run_dir).__enter__()
        except RunError as err:
            raise TrainingError(str(err)) from None
    try:
        if state.is_main_process:
            if not resume:
                config.save(run_dir / "config.json")
            (run_dir / PID_FILE).write_text(f"{os.getpid()}\n")
            (run_dir / STOP_FILE).unlink(missing_ok=True)
        state.wait_for_everyone()
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
        # set by the steps below
        self.accelerator: Any = None
        self.tokenizer: Any = None
        self.model: Any = None
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.train_loader: Any = None
        self.val_loader: Any = None
        self.params: list[Any] = []
        self.steps_per_epoch = 0
        self.total_steps = 0

    def emit(self, event: Event) -> None:
        if self.writer is not None:
            self.writer.write(dict(event))
        if self.on_event is not None:
            self.on_event(event)
        trackers.log_event(self.accelerator, event)  # --report-to: step loss/lr, epoch metrics, final scores

    def run(self) -> TrainResult:
        self._start_accelerator()
        if self.accelerator.is_main_process:
            self.writer = MetricsWriter(self.run_dir / "metrics.jsonl")
        try:
            if self.resume and self.accelerator.is_main_process:  # under the run lock
                recover_run(self.run_dir)  # after a kill mid-swap
            return self._train()
        except Exception as err:  # the run folder records every failure before it propagates
            self.emit(EndEvent(kind="end", time=now(), status="failed", error=f"{type(err).__name__}: {err}"))
            raise
        finally:
            trackers.finish(self.accelerator)  # --report-to
            if self.writer is not None:
                self.writer.close()

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
        while self.position.epoch < self.config.epochs:
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

    def _prepare_data(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The run's train and validation sentences, tokenized."""
        from workbench.core.data import load_cola
        from workbench.core.model import load_tokenizer

        config = self.config
        cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
        train_frame, val_frame = cola["train"], cola["validation"]
        if config.train_limit:
            train_frame = train_frame.iloc[: config.train_limit]
        self.tokenizer = load_tokenizer(config.model)
        train_rows = encode(self.tokenizer, train_frame["sentence"].tolist(), train_frame["label"].tolist(),
                            config.max_length)
        val_rows = encode(self.tokenizer, val_frame["sentence"].tolist(), val_frame["label"].tolist(),
                          config.max_length)
        return train_rows, val_rows

    def _build_model_and_optimizer(self, train_rows: list[dict[str, Any]], val_rows: list[dict[str, Any]]) -> None:
        """Model, length-grouped loaders, grouped AdamW and the warmup schedule, prepared by Accelerate."""
        import torch
        from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

        from workbench.core.model import load_model
        from workbench.core.recipe import apply_recipe

        config, accelerator = self.config, self.accelerator
        model = load_model(config.model, allow_pickle=self.allow_pickle)
        apply_recipe(model, config)  # dropout, reinit_top_layers (core/recipe.py)
        if config.freeze_embeddings:
            from workbench.core.speed import freeze_word_embeddings

            freeze_word_embeddings(model)  # before the optimizer groups: the table gets no gradient, no AdamW state
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
        try:
            meta, state = load_checkpoint(self.run_dir)
        except CheckpointError as err:
            raise TrainingError(str(err)) from None
        if meta.get("finished"):
            raise TrainingError(f"{self.run_dir}: this run has finished; nothing to resume")
        from workbench.core.checkpoint import set_rng_state

        self.accelerator.unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
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

    def _train_epoch(self) -> TrainResult | None:
        """The optimizer steps of one epoch (from where a resume left it). A TrainResult when the
        run ends here: failed on a non-finite loss, or stopped mid-epoch (with a checkpoint)."""
        import torch

        position, accelerator = self.position, self.accelerator
        self.train_loader.set_epoch(position.epoch)
        loader = self.train_loader
        if position.epoch_step:
            loader = accelerator.skip_first_batches(self.train_loader, position.epoch_step)
        self.model.train()
        for batch in loader:
            if self._should_stop():
                break
            try:
                loss = self.model(**batch).loss
                loss_value = float(loss.detach().float().item())
                if not math.isfinite(loss_value):
                    return self._fail_nonfinite(loss_value)
                accelerator.backward(loss)
                grad_norm = clip_and_step(accelerator, self.optimizer, self.params, self.config.max_grad_norm)
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            except torch.OutOfMemoryError:
                config = self.config
                raise TrainingError(
                    f"out of memory at batch size {config.batch_size} (max length {config.max_length}) on "
                    f"{self.device_name}; try --batch-size {max(1, config.batch_size // 2)}") from None
            self._record_step(int(batch["labels"].shape[0]), loss_value, grad_norm)
            if self.config.checkpoint_every and position.step % self.config.checkpoint_every == 0:
                self._checkpoint()
        if self._should_stop() and position.epoch_step < self.steps_per_epoch:
            return self._stopped()
        return None

    def _record_step(self, batch_sentences: int, loss_value: float, grad_norm: float | None) -> None:
        position = self.position
        position.step += 1
        position.epoch_step += 1
        position.loss_sum += loss_value
        position.loss_count += 1
        self.steps_this_session += 1
        clock = time.perf_counter()
        rate = self.throughput.add(clock, batch_sentences * self.accelerator.num_processes)
        per_step = (clock - self.started) / self.steps_this_session
        self.emit(StepEvent(
            kind="step", time=now(), epoch=position.epoch + 1, step=position.step, epoch_step=position.epoch_step,
            steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps, loss=loss_value,
            lr=self.scheduler.get_last_lr()[-1], grad_norm=grad_norm, sentences_per_s=rate,
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
        if self.accelerator.is_main_process:
            save_checkpoint(self.run_dir, self.accelerator.unwrap_model(self.model), self.optimizer, self.scheduler,
                            position.to_meta())
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
        position = self.position
        final = self._final_eval() if self.accelerator.is_main_process else {}
        end = EndEvent(kind="end", time=now(), status="done", step=position.step, epoch=position.epoch,
                       best_epoch=position.best_epoch, best_val_mcc=position.best_val_mcc)
        end.update(final)  # type: ignore[typeddict-item]  # holdout_mcc, holdout_accuracy, in_domain_dev_mcc
        self.emit(end)
        return self._result("done", final=final)

    # ------------------------------------------------------------ helpers of the steps

    def _should_stop(self) -> bool:
        """The stop flag or a stop request file (`workbench stop`), agreed by all processes."""
        if self.accelerator.is_main_process and (self.run_dir / STOP_FILE).exists():
            self.stop.set()
        if self.accelerator.num_processes == 1:
            return self.stop.is_set()
        import torch

        flag = torch.tensor([1.0 if self.stop.is_set() else 0.0], device=self.accelerator.device)
        if float(self.accelerator.reduce(flag, reduction="sum").item()) > 0:
            self.stop.set()
        return self.stop.is_set()

    def _validate(self) -> dict[str, float]:
        import torch

        from workbench.core.evaluate import compute_metrics

        model = self.model
        model.eval()
        all_logits, all_labels = [], []
        with torch.no_grad():
            for batch in self.val_loader:
                try:
                    logits = model(**batch).logits.float()
                except torch.OutOfMemoryError:
                    size = self.config.eval_batch_size
                    raise TrainingError(f"out of memory validating at eval batch size {size} (max length "
                                        f"{self.config.max_length}); try --eval-batch-size {max(1, size // 2)}"
                                        ) from None
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
        """Score the best model on in_domain_dev and the holdout; writes eval.json."""
        from workbench.core.data import FINAL_SPLITS, load_cola
        from workbench.core.evaluate import evaluate_frame, record_report
        from workbench.core.model import load_model

        if not (self.run_dir / "model").is_dir():
            return {}
        config = self.config
        calibration = self._calibrate()
        model = load_model(str(self.run_dir / "model")).to(self.accelerator.device)
        cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
        reports = {name: evaluate_frame(model, self.tokenizer, cola[name], name, config.max_length,
                                        config.eval_batch_size) for name in FINAL_SPLITS}
        for report in reports.values():
            record_report(self.run_dir, report)
        holdout, dev = reports["holdout"], reports["in_domain_dev"]
        return {"holdout_mcc": holdout.mcc, "holdout_accuracy": holdout.accuracy, "in_domain_dev_mcc": dev.mcc,
                **calibration}

    def _calibrate(self) -> dict[str, Any]:
        """Fold the validation-best decision threshold into model/ (core/threshold.py), unless turned off."""
        from workbench.core.threshold import calibrate_run

        choice = calibrate_run(self.run_dir, self.config, device=self.accelerator.device)
        if choice is None:
            return {}
        self.emit(LogEvent(kind="log", time=now(), message=(
            f"decision threshold {choice.threshold:.3f} on p(acceptable): validation MCC "
            f"{choice.mcc_at_threshold:.3f} (at 0.5: {choice.mcc_at_half:.3f}); folded into the saved model")))
        return {"decision_threshold": choice.threshold}

    def _fail_nonfinite(self, loss_value: float) -> TrainResult:
        step = self.position.step
        message = (f"loss became {loss_value} at step {step + 1}; training stopped. The last good "
                   f"checkpoint and the best model are kept; try a lower learning rate")
        self.emit(EndEvent(kind="end", time=now(), status="failed", error=message, step=step))
        return self._result("failed", error=message)

    def _result(self, status: str, error: str = "", final: dict[str, Any] | None = None) -> TrainResult:
        position = self.position
        return TrainResult(run_dir=self.run_dir, status=status, epochs_done=position.epoch,
                           best_epoch=position.best_epoch, best_val_mcc=position.best_val_mcc,
                           error=error, history=list(position.history), final=final or {})


def clip_and_step(accelerator: Any, optimizer: Any, params: list[Any], max_norm: float) -> float | None:
    """Clip the gradients' total norm to MAX_NORM, then take the optimizer step; the norm before clipping.

    A fused AdamW applies the clip inside its kernel as a gradient divisor (`grad_scale`, the
    hook torch's GradScaler uses), saving a pass that rescales every gradient in memory: the
    same update as clip_grad_norm_ (grads x min(1, max_norm / (norm + 1e-6))) up to rounding.
    Anything else (a gradient scaler, sharded or DeepSpeed training, another optimizer) clips
    the usual way."""
    import torch
    from accelerate.utils import DistributedType

    inner = getattr(optimizer, "optimizer", optimizer)
    if (not getattr(inner, "defaults", {}).get("fused") or accelerator.scaler is not None
            or accelerator.distributed_type not in (DistributedType.NO, DistributedType.MULTI_GPU,
                                                    DistributedType.MULTI_CPU)):
        norm = accelerator.clip_grad_norm_(params, max_norm)
        optimizer.step()
        return None if norm is None else float(norm)
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    inner.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0)
    try:
        optimizer.step()
    finally:
        del inner.grad_scale
    return float(norm)
