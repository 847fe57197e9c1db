"""Fine-tuning: one plain function, `train(config, run_dir, on_event, stop)`, for CLI and TUI alike.

Long work reports through ON_EVENT (typed records, core/base/events.py: the same objects that go to
metrics.jsonl) and ends at the next batch when STOP is set, leaving a checkpoint.

The module reads top to bottom: small helpers; one optimizer step (`clip_and_step`, and reading
the steps' losses off the device); the checks before a run; the training loop (`_Training`:
prepare the data, build the model and optimizer, restore, train the epochs, end each epoch);
the finish after the loop (`finish_run`: calibrate the decision threshold, evaluate the best
model, both from the model saved on disk); and `train()`, which holds the run folder and calls them.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
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
    StageEvent,
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
from workbench.core.base.layout import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_DIR,
    PID_FILE,
    STOP_FILE,
    RunError,
    check_writable,
    is_run_folder,
)
from workbench.core.runs.dynamics import TrainingDynamics, load_or_start
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

READ_EVERY_ON_DEVICE = 10  # steps between host reads of the loss on an accelerator (read_interval)


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
    step: int = 0  # optimizer steps done
    epoch_step: int = 0  # of them, in the epoch not yet done (a run stopped mid-epoch)

    def stopped_at(self) -> str:
        """Where a stopped run stopped, in words: 'step 430, in epoch 3 (2 done)' or 'after epoch 2'."""
        if self.epoch_step:
            return f"step {self.step}, in epoch {self.epochs_done + 1} ({self.epochs_done} done)"
        return f"step {self.step}, after epoch {self.epochs_done}"


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
    train_seconds: float = 0.0  # training time up to this checkpoint, over every session (resumes included)
    validation_sentences: int = 0  # (for the finish's progress)

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Position:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in meta.items() if k in known})

    def to_meta(self) -> dict[str, Any]:
        return asdict(self)

    def result(self, run_dir: Path, status: str, error: str = "", final: dict[str, Any] | None = None) -> TrainResult:
        """What `train()` returns for a run that ended here with STATUS."""
        return TrainResult(run_dir=run_dir, status=status, epochs_done=self.epoch, best_epoch=self.best_epoch,
                           best_val_mcc=self.best_val_mcc, error=error, history=list(self.history),
                           final=final or {}, step=self.step, epoch_step=self.epoch_step)


# ---------------------------------------------------------------- small helpers

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


def is_head(name: str) -> bool:
    """Whether parameter NAME belongs to the classification head (pooler and classifier), above the encoder."""
    return name.startswith(("classifier.", "pooler.")) or ".pooler." in name or ".classifier." in name


def parameter_groups(model: Any, learning_rate: float, weight_decay: float,
                     layer_lr_decay: float = 1.0, head_lr_multiplier: float = 1.0) -> list[dict[str, Any]]:
    """AdamW groups: decay / no decay, times a learning rate per layer when LAYER_LR_DECAY < 1, and
    the head at HEAD_LR_MULTIPLIER times the peak rate (its own groups, last, only when it is not 1:
    with 1 the groups are those of runs made before the setting, so their checkpoints still resume)."""
    num_layers = int(getattr(model.config, "num_hidden_layers", 0))
    groups: dict[tuple[int, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_index(name, num_layers) if layer_lr_decay < 1.0 else num_layers + 1
        if head_lr_multiplier != 1.0 and is_head(name):
            depth = num_layers + 2
        skip = no_decay(name)
        key = (depth, skip)
        if key not in groups:
            scale = head_lr_multiplier if depth > num_layers + 1 else layer_lr_decay ** (num_layers + 1 - depth)
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


def initial_model(config: TrainConfig, allow_pickle: bool = False) -> Any:
    """CONFIG's model as training starts: loaded (a fresh classifier head drawn from torch's global
    generator), then the recipe's dropout and re-initialised layers (core/training/recipe.py).

    Call it with the generator seeded with CONFIG.seed. With a head_seed of its own, the head is
    drawn from that seed and the generator is seeded with CONFIG.seed again afterwards, so members
    of a seed group with one head seed share the head's init and differ in everything else; without
    one, the draws are exactly those of runs made before the setting existed."""
    from accelerate.utils import set_seed

    from workbench.core.model.loading import load_model
    from workbench.core.training.recipe import apply_recipe

    if config.effective_head_seed != config.seed:
        set_seed(config.effective_head_seed)
        model = load_model(config.model, allow_pickle=allow_pickle)
        set_seed(config.seed)
    else:
        model = load_model(config.model, allow_pickle=allow_pickle)
    apply_recipe(model, config)
    return model


class WeightAverage:
    """An exponential moving average of the trainable weights (--ema-decay), updated after each
    optimizer step: ema <- ema + (1 - decay) (w - ema), one foreach lerp over all of them (torch's
    AveragedModel with get_ema_multi_avg_fn does the same lerp, on a deep copy of the whole model
    and its buffers; here only the trainable tensors are copied, the frozen table is not).

    The average starts at the weights as loaded (step 0), as AveragedModel's does."""

    def __init__(self, params: list[Any], decay: float):
        self.decay = decay
        self.tensors = [p.detach().clone() for p in params]

    def update(self, params: list[Any]) -> None:
        import torch

        with torch.no_grad():
            torch._foreach_lerp_(self.tensors, [p.detach() for p in params], 1.0 - self.decay)

    def load(self, saved: list[Any]) -> None:
        if len(saved) != len(self.tensors) or any(a.shape != b.shape for a, b in zip(saved, self.tensors, strict=True)):
            raise TrainingError("the checkpoint's weight average does not match the model's trainable weights")
        with _no_grad():
            for mine, theirs in zip(self.tensors, saved, strict=True):
                mine.copy_(theirs)

    @contextmanager
    def swapped_in(self, params: list[Any]) -> Iterator[None]:
        """PARAMS hold the average inside the block, and their own values again after it."""
        with _no_grad():
            live = [p.detach().clone() for p in params]
            for param, average in zip(params, self.tensors, strict=True):
                param.copy_(average)
        try:
            yield
        finally:
            with _no_grad():
                for param, value in zip(params, live, strict=True):
                    param.copy_(value)


@contextmanager
def _no_grad() -> Iterator[None]:
    import torch

    with torch.no_grad():
        yield


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


# ---------------------------------------------------------------- one optimizer step

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


def total_norm(grads: list[Any]) -> Any:
    """The 2-norm of all GRADS together, as a tensor on their device (no host read).

    torch.nn.utils.get_total_norm where torch has it (2.6 and later); the same sum of per-tensor norms
    on older torch, which the dependency floor (torch 2.4) allows."""
    import torch

    if hasattr(torch.nn.utils, "get_total_norm"):
        return torch.nn.utils.get_total_norm(grads)
    if not grads:
        return torch.tensor(0.0)
    norms = [torch.linalg.vector_norm(g.detach(), 2.0) for g in grads]
    return torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]), 2.0)


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
    norm = total_norm([p.grad for p in params if p.grad is not None])
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


# ---------------------------------------------------------------- the checks before a run

def prepare_run_dir(config: TrainConfig, run_dir: Path, resume: bool) -> TrainConfig:
    """Check the folder and return the config to use (the saved one when resuming)."""
    problems = config.validate()
    if problems:
        raise TrainingError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    if not resume:
        check_data(config)  # a bad data file stops here, before a run folder is made
        check_model_source(config)  # so does an unreachable hub
    check_writable(run_dir)
    saved = run_dir / CONFIG_FILE
    if resume:
        if not is_run_folder(run_dir):
            raise TrainingError(f"{run_dir}: not a run folder (no config.json)")
        check_resumable(run_dir)  # here, before anything is written to the run
        config = TrainConfig.load(saved)
        check_data(config)
        check_model_source(config)
        return config
    if saved.exists() or (run_dir / METRICS_FILE).exists():
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


# ---------------------------------------------------------------- the training loop

class _Training:
    """One training into a run folder, as its steps. As a context manager it starts the accelerator
    and the metrics file, and on the way out records any failure as the run's end event and closes
    them; `train_epochs` runs the loop. The finish after it is `finish_run`'s."""

    def __init__(self, config: TrainConfig, run_dir: Path, on_event: EventCallback | None,
                 stop: threading.Event, resume: bool, allow_pickle: bool = False):
        self.config = config
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
        self.ema: WeightAverage | None = None  # --ema-decay
        self.steps_per_epoch = 0
        self.total_steps = 0
        self.read_every = 1  # steps between host reads of the loss (read_interval)
        self.train_labels: list[int] = []
        self.dynamics: TrainingDynamics | None = None  # the map being recorded (main process)
        self.gold_pending: list[tuple[int, Any, Any]] = []  # (epoch, rows, p_gold) still on the device
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

    def __enter__(self) -> _Training:
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
        """Close the --report-to trackers. One that fails to close is said in the run's log, never raised
        over the run's own outcome (or its original error): the run's files are what count."""
        try:
            trackers.finish(self.accelerator)
        except Exception as err:  # noqa: BLE001 (a tracker's own failure, reported)
            message = f"warning: an experiment tracker failed to finish ({type(err).__name__}: {err})"
            if self.on_event is not None:  # not in metrics.jsonl: its end event stays its last line
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
                self.emit(LogEvent(kind="log", time=now(), message=f"error: {error}; ending process "
                                   f"{self.accelerator.process_index}"))
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
        train_rows, val_rows = self._prepare_data()
        self._build_model_and_optimizer(train_rows, val_rows)
        self._restore()
        self.position.validation_sentences = len(val_rows)
        self._emit_start(len(train_rows), len(val_rows))
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
        self.accelerator = Accelerator(cpu=not on_gpu, mixed_precision=resolve_precision(
            self.config.precision, "cuda" if on_gpu else "cpu"),
            **trackers.accelerator_kwargs(self.config, self.run_dir))  # --report-to (started in train_epochs)
        self.read_every = read_interval(self.accelerator.device.type)
        self.device_name = device_name(self.accelerator.device)

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
        self.train_labels = [int(label) for label in train_frame["label"]]
        train_rows = encode(self.tokenizer, train_frame["sentence"].tolist(), self.train_labels, config.max_length)
        for index, row in enumerate(train_rows):
            row["row"] = index  # the training row, for the map (core/runs/dynamics.py); not a model input
        val_rows = encode(self.tokenizer, val_frame["sentence"].tolist(), val_frame["label"].tolist(),
                          config.max_length)
        return train_rows, val_rows

    def _build_model_and_optimizer(self, train_rows: list[dict[str, Any]], val_rows: list[dict[str, Any]]) -> None:
        """Model, length-grouped loaders, grouped AdamW and the warmup schedule, prepared by Accelerate."""
        import torch
        from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

        from workbench.core.training.speed import cheap_dropout, cls_only_last_layer, freeze_word_embeddings

        config, accelerator = self.config, self.accelerator
        model = initial_model(config, allow_pickle=self.allow_pickle)  # dropout, reinit_top_layers, head seed
        if config.freeze_embeddings:
            freeze_word_embeddings(model)  # before the optimizer groups: the table gets no gradient, no AdamW state
        cls_only_last_layer(model)  # the head reads only [CLS] of the last layer: skip the rest there (exact)
        if accelerator.device.type == "cpu":
            cheap_dropout(model)  # CPU dropout masks without bernoulli_ (core/training/speed.py)
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
        adamw_kernel: dict[str, Any] = {"fused": True} if fused_adamw_ok(accelerator.device.type) else {"foreach": True}
        groups = parameter_groups(model, config.learning_rate, config.weight_decay, config.layer_lr_decay,
                                  config.head_lr_multiplier)
        optimizer = torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups],
                                      lr=config.learning_rate, eps=config.adam_epsilon, **adamw_kernel)
        (self.model, self.optimizer, self.train_loader,
         self.val_loader) = accelerator.prepare(model, optimizer, train_loader, val_loader)
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, warmup_steps(self.total_steps, config.warmup_ratio), self.total_steps)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        if config.ema_decay > 0:
            self.ema = WeightAverage(self.params, config.ema_decay)

    def _restore(self) -> None:
        """When resuming: weights, optimizer, schedule, random state and position from the checkpoint."""
        from workbench.core.training.checkpoint import set_rng_state

        if self.is_main_process:  # a resume continues the map recorded so far
            self.dynamics = (load_or_start(self.run_dir, self.config.epochs, self.train_labels) if self.resume
                             else TrainingDynamics.empty(self.config.epochs, self.train_labels))
        if not self.resume:
            return
        if checkpoint_meta(self.run_dir) is None:  # killed before its first checkpoint
            self.restarted_from_zero = True
            return
        try:
            meta, state = load_checkpoint(self.run_dir)
        except CheckpointError as err:
            raise TrainingError(str(err)) from None
        self.accelerator.unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            if "ema" not in state:
                raise TrainingError(f"{self.run_dir}: the checkpoint has no weight average (ema_decay is set)")
            self.ema.load(state["ema"])
        set_rng_state(rank_rng_state(state["rng"], self.accelerator.process_index))
        self.position = Position.from_meta(meta)

    def _emit_start(self, train_sentences: int, val_sentences: int) -> None:
        accelerator = self.accelerator
        self.emit(StartEvent(
            kind="start", time=now(), run=self.run_dir.name, model=self.config.model, device=self.device_name,
            precision=accelerator.mixed_precision, processes=accelerator.num_processes,
            train_sentences=train_sentences, validation_sentences=val_sentences,
            steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps, epochs=self.config.epochs,
            resumed_at_step=self.position.step if self.resume else None))
        if self.restarted_from_zero:
            self.emit(LogEvent(kind="log", time=now(), message=(
                "no checkpoint yet (the run was killed before its first one): training restarts from step 0 "
                "with the run's saved config.json")))
        elif self.position.finished:
            self.emit(LogEvent(kind="log", time=now(), message=(
                "the run is trained; resuming its final evaluation")))

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
        out_of_memory = (f"out of memory at batch size {config.batch_size} (max length {config.max_length}) on "
                         f"{self.device_name}; try --batch-size {max(1, config.batch_size // 2)}")
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
                pending.append(PendingStep(int(batch["labels"].shape[0]), loss.detach(), grad_norm, shared_loss,
                                           time.perf_counter(), self.scheduler.get_last_lr()[-1]))
                step = position.step + len(pending)
                in_epoch = position.epoch_step + len(pending) < self.steps_per_epoch  # (the epoch's end checkpoints)
                checkpoint_due = (bool(config.checkpoint_every) and step % config.checkpoint_every == 0) or (
                    in_epoch and (timed if accelerator.num_processes > 1 else self._timed_checkpoint_due()))
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
            output = self.model(**batch)
            self._note_gold(output.logits, batch["labels"], rows)
            return output.loss, None, False, False
        loss, failure, message = None, None, None
        try:
            output = self.model(**batch)
            loss = output.loss
            self._note_gold(output.logits, batch["labels"], rows)
        except Exception as err:
            failure = err
            message = out_of_memory if is_out_of_memory(err) else f"{type(err).__name__}: {err}"
        timed = self.is_main_process and self._timed_checkpoint_due()  # one clock decides for all
        agreed = ranks.agree_on_step(self.accelerator, loss, message, stop=self._stop_requested_here(),
                                     checkpoint=timed)
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
            elapsed_s=self.elapsed_before + clock - self.started, eta_s=per_step * (self.total_steps - position.step)))

    def _fail_nonfinite(self, value: float, what: str = "loss", steps_after: int = 0) -> TrainResult:
        """End the run on a non-finite loss or gradient norm at the next step not yet recorded.
        STEPS_AFTER: steps taken after it before it was read (an accelerator reads every few steps);
        the bad step itself was skipped on the device, so no weight ever held a non-finite number."""
        step = self.position.step
        if steps_after:
            stopped = (f"the step was skipped on the device, and training stopped {steps_after} step(s) later, "
                       f"at the next read of the loss")
        else:
            stopped = "training stopped before the step changed the weights"
        message = (f"{what} became {value} at step {step + 1}; {stopped}. The last good checkpoint and the best "
                   f"model are kept; try a lower learning rate")
        self.emit(EndEvent(kind="end", time=now(), status="failed", error=message, step=step))
        return self.position.result(self.run_dir, "failed", error=message)

    # ------------------------------------------------------------ the end of an epoch

    def _end_epoch(self) -> bool:
        """Validate, keep the model if it is the best so far, record the epoch and checkpoint.
        True when the training should end here (early stop, or stopped at the epoch's end)."""
        position, config = self.position, self.config
        self._record_gold()
        metrics = self._validate()
        averaged: dict[str, float] | None = None
        use_average = False
        if self.ema is not None:
            with self.ema.swapped_in(self.params):
                averaged = self._validate()
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
            kind="epoch", time=now(), epoch=epoch, step=position.step,
            train_loss=position.loss_sum / max(1, position.loss_count), val_n=int(chosen["n"]),
            val_loss=chosen["loss"], val_accuracy=chosen["accuracy"], val_mcc=chosen["mcc"], best=improved,
            elapsed_s=self.elapsed_s())
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
            self.emit(LogEvent(kind="log", time=now(),
                               message=f"early stop: no better validation MCC for {config.patience} epochs"))
            return True
        return self._stop_agreed() and not position.finished

    def _save_best(self) -> None:
        """model/ := the model's weights as they are now (the main process writes it)."""
        if self.is_main_process:
            save_model(self.run_dir, self.accelerator.unwrap_model(self.model), self.tokenizer)

    def _note_gold(self, logits: Any, labels: Any, rows: Any) -> None:
        """Keep the batch's p(gold label) for the map, on the device (no wait for it): taken from this
        training forward pass, dropout on, before the batch's own update, as the cartography authors'
        code does; a separate pass at the epoch's end would cost a third of an epoch."""
        if rows is None:
            return
        import torch

        with torch.no_grad():
            p_gold = torch.softmax(logits.detach().float(), dim=-1).gather(1, labels.view(-1, 1)).view(-1)
        self.gold_pending.append((self.position.epoch, rows.detach(), p_gold))

    def _record_gold(self) -> None:
        """Move the pending p(gold) values into the map (one read from the device; with several
        processes, gathered from all of them: a collective)."""
        import torch

        pending, self.gold_pending = self.gold_pending, []
        parts: dict[int, tuple[list[Any], list[Any]]] = {}
        for epoch, rows, p_gold in pending:
            parts.setdefault(epoch, ([], []))[0].append(rows)
            parts[epoch][1].append(p_gold)
        records = [(epoch, torch.cat(rows).cpu().numpy(), torch.cat(p).cpu().numpy())
                   for epoch, (rows, p) in parts.items()]
        if self.accelerator.num_processes > 1:
            from accelerate.utils import gather_object

            records = gather_object(records)
        if self.dynamics is not None:
            for epoch, rows, p_gold in records:
                self.dynamics.record(epoch, rows, p_gold)

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
        self._record_gold()  # the map covers at least what the checkpoint does (a collective)
        rng = rng_states(self.accelerator.num_processes)  # every process's (a collective)
        if self.is_main_process:
            if self.writer is not None:
                self.writer.sync()  # the steps this checkpoint covers are on the disk before it
            if self.dynamics is not None:
                self.dynamics.save(self.run_dir)
            save_checkpoint(self.run_dir, self.accelerator.unwrap_model(self.model), self.optimizer, self.scheduler,
                            position.to_meta(), rng=rng, ema=self.ema.tensors if self.ema is not None else None)
            self.emit(CheckpointEvent(kind="checkpoint", time=now(), step=position.step, epoch=position.epoch,
                                      epoch_step=position.epoch_step))
        self.accelerator.wait_for_everyone()
        self.last_checkpoint_at = time.perf_counter()

    def _stopped(self) -> TrainResult:
        position = self.position
        self._checkpoint()
        self.emit(EndEvent(kind="end", time=now(), status="stopped", step=position.step, epoch=position.epoch,
                           best_val_mcc=position.best_val_mcc))
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
        if self.accelerator.num_processes == 1:
            return self.stop.is_set()
        import torch

        flag = torch.tensor([1.0 if self.stop.is_set() else 0.0], device=self.accelerator.device)
        agreed = float(self.accelerator.reduce(flag, reduction="sum").item()) > 0
        if agreed:
            self.stop.set()
        return agreed  # the agreed answer, not the flag: a signal arriving after the reduce waits for the next one


# ---------------------------------------------------------------- after the loop: the finish

def calibrate_saved_model(run_dir: Path, config: TrainConfig, device: Any,
                          emit: EventCallback) -> dict[str, Any]:
    """Fold the validation-best decision threshold and temperature into RUN_DIR's model/
    (core/evaluation/calibration.py), unless turned off; its entries for the end event."""
    from workbench.core.evaluation.calibration import calibrate_run

    if not (run_dir / MODEL_DIR).is_dir():
        return {}
    size = config.eval_batch_size
    with out_of_memory_as(f"out of memory calibrating the decision threshold at eval batch size {size} "
                          f"(max length {config.max_length}); the trained model is kept: free some "
                          "memory and resume the run to finish it"):
        choice = calibrate_run(run_dir, config, device=device)
    if choice is None:
        return {}
    emit(LogEvent(kind="log", time=now(), message=(
        f"calibration folded into the saved model: threshold {choice.threshold:.3f} on the trained model's "
        f"p(acceptable), temperature {choice.temperature:.2f}. Validation: MCC {choice.mcc_at_threshold:.3f} "
        f"(the trained model at 0.5, as the epochs were compared: {choice.mcc_at_half:.3f}); ECE "
        f"{choice.ece_before:.3f} -> {choice.ece_after:.3f} on the shipped p(acceptable)")))
    return {"decision_threshold": choice.threshold, "temperature": choice.temperature}


FINISH_STAGES = 4  # calibrating, evaluating in_domain_dev, evaluating holdout, building the neighbour index


def stage_event(stage: str, index: int, sentences: int) -> StageEvent:
    """The finish's INDEX-th stage (of FINISH_STAGES) begins, over SENTENCES sentences."""
    return StageEvent(kind="stage", time=now(), stage=stage, index=index, stages=FINISH_STAGES, sentences=sentences)


def evaluate_saved_model(run_dir: Path, config: TrainConfig, tokenizer: Any, device: Any,
                         emit: EventCallback | None = None) -> dict[str, Any]:
    """Score RUN_DIR's best model (calibrated), loaded from model/, on in_domain_dev and the holdout;
    records them in eval.json and the predictions files, on the disk before it returns. Each stage
    (each split, then the neighbour index) is announced through EMIT as it begins."""
    from workbench.core.data.cola import FINAL_SPLITS, load_cola
    from workbench.core.evaluation.evaluate import evaluate_frame, record_report
    from workbench.core.model.loading import load_model

    fault_point("final-eval")  # crash tests: a kill here resumes the evaluation
    if not (run_dir / MODEL_DIR).is_dir():
        return {}
    size = config.eval_batch_size
    announce = emit or (lambda event: None)
    reports = {}
    with out_of_memory_as(f"out of memory in the final evaluation at eval batch size {size} (max length "
                          f"{config.max_length}); the trained model is kept: free some memory and resume "
                          "the run to evaluate it"):
        model = load_model(str(run_dir / MODEL_DIR)).to(device)
        cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
        for index, name in enumerate(FINAL_SPLITS, start=2):
            announce(stage_event(f"evaluating {name}", index, len(cola[name])))
            reports[name] = evaluate_frame(model, tokenizer, cola[name], name, config.max_length, size)
    for report in reports.values():
        fsync_file(record_report(run_dir, report))  # on the disk before `evaluated` is
    fsync_dir(run_dir)
    train_frame = cola["train"].iloc[: config.train_limit] if config.train_limit else cola["train"]
    announce(stage_event("building the neighbour index", FINISH_STAGES, len(train_frame)))
    write_neighbor_index(run_dir, model, tokenizer, train_frame["sentence"].astype(str).tolist())
    holdout, dev = reports["holdout"], reports["in_domain_dev"]
    warning = {"holdout_warning": holdout.warning()} if holdout.warning() else {}  # worse than the majority class
    return {"holdout_mcc": holdout.mcc, "holdout_accuracy": holdout.accuracy, "in_domain_dev_mcc": dev.mcc,
            **warning}


def write_neighbor_index(run_dir: Path, model: Any, tokenizer: Any, sentences: list[str]) -> None:
    """The training SENTENCES' vectors by the final MODEL, in the run folder (neighbors-train.npz), so that
    the first nearest-neighbour query in a face needs no pass over them. A cache: the faces rebuild it when
    it is missing, so a failure here (no memory, a full disk) costs only that."""
    from workbench.core.model.sentence_vectors import INDEX_MAX_LENGTH, write_run_index

    if not sentences:
        return
    positions = getattr(model.config, "max_position_embeddings", INDEX_MAX_LENGTH)
    try:
        write_run_index(model, tokenizer, run_dir, sentences, min(INDEX_MAX_LENGTH, positions))
    except (OSError, RuntimeError):
        pass


def finish_run(run_dir: Path, config: TrainConfig, position: Position, *, emit: EventCallback,
               main_process: bool, device: Any, tokenizer: Any) -> TrainResult:
    """The end of a trained run: calibrate (once), evaluate, end. Both read the best model from the disk.
    Each part done is recorded in the checkpoint's meta.json, so that a run killed here resumes with
    what is left; the end event comes before `evaluated` (a kill between them evaluates again, which
    changes nothing). Only the main process (MAIN_PROCESS) calibrates, evaluates and writes; every
    process emits the end event."""
    final: dict[str, Any] = {}
    if main_process:
        if not position.calibrated:
            if config.calibrate_threshold and (run_dir / MODEL_DIR).is_dir():
                emit(stage_event("calibrating the decision threshold", 1, position.validation_sentences))
            position.calibration = calibrate_saved_model(run_dir, config, device, emit)
            position.calibrated = True
            update_checkpoint_meta(run_dir, position.to_meta())
        scores = evaluate_saved_model(run_dir, config, tokenizer, device, emit)
        final = {**scores, **position.calibration} if scores else {}
    end = EndEvent(kind="end", time=now(), status="done", step=position.step, epoch=position.epoch,
                   best_epoch=position.best_epoch, best_val_mcc=position.best_val_mcc)
    end.update(final)  # type: ignore[typeddict-item]  # holdout_mcc, holdout_accuracy, in_domain_dev_mcc
    emit(end)
    if main_process:
        position.evaluated = True
        update_checkpoint_meta(run_dir, position.to_meta())
    return position.result(run_dir, "done", final=final)


# ---------------------------------------------------------------- the training function

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


def train(config: TrainConfig, run_dir: Path | str, on_event: EventCallback | None = None,
          stop: threading.Event | None = None, resume: bool = False, allow_pickle: bool = False) -> TrainResult:
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
        if state.is_main_process:
            try:
                config = prepare_run_dir(config, run_dir, resume)
                run_held.enter_context(holding_run(run_dir))
                if not resume:
                    config.save(run_dir / CONFIG_FILE)
            except Exception as err:  # with several processes, the others must hear of it first
                main_failure = err
        if state.num_processes > 1:  # the others wait here for the main process's checks (a broadcast)
            main_error = ranks.main_failure(main_failure)
            if main_error is not None and not state.is_main_process:
                raise TrainingError(f"process 0 failed: {main_error}")
        if main_failure is not None:
            raise main_failure
        if resume and not state.is_main_process:
            config = TrainConfig.load(run_dir / CONFIG_FILE)
        with _Training(config, run_dir, on_event, stop, resume, allow_pickle) as training:
            ended = training.train_epochs()
            if ended is not None:  # stopped or failed
                return ended
            return finish_run(run_dir, config, training.position, emit=training.emit,
                              main_process=training.is_main_process, device=training.accelerator.device,
                              tokenizer=training.tokenizer)
