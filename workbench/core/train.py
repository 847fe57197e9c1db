"""Fine-tuning: one plain function, `train(config, run_dir, on_event, stop)`, for CLI and TUI alike.

Long work reports through ON_EVENT (a dict per event, the same objects that go to
metrics.jsonl) and ends at the next batch when STOP is set, leaving a checkpoint.
"""

from __future__ import annotations

import math
import os
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.core.config import TrainConfig
from workbench.core.runs import (
    PID_FILE,
    STOP_FILE,
    MetricsWriter,
    RunError,
    RunLock,
    check_writable,
    existing_dir,
    replace_dir_atomic,
    write_json_atomic,
)

EventCallback = Callable[[dict[str, Any]], None]
CHECKPOINT_MARKER = "meta.json"


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
    history: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] = field(default_factory=dict)


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


def resolve_precision(precision: str, device_type: str) -> str:
    """'bf16' or 'no' for Accelerate: auto picks bf16 on a GPU that has it and on
    CPUs with native bf16 matmuls (AVX-512 BF16 / AMX), else fp32."""
    import torch

    if precision == "fp32":
        return "no"
    if precision == "bf16":
        return "bf16"
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if cpu_has_bf16() else "no"


def cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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


# ---------------------------------------------------------------- checkpoints

def _rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, model: Any, optimizer: Any, scheduler: Any, meta: dict[str, Any]) -> None:
    """Write checkpoint/ whole or not at all: staged, then swapped in (meta.json last)."""
    import torch

    staged = run_dir / ".checkpoint.tmp"
    import shutil

    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "rng": _rng_state()}
    with (staged / "state.pt").open("wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    from workbench.core.runs import fault_point

    fault_point("checkpoint:write")  # crash tests: a kill here leaves the previous checkpoint in place
    write_json_atomic(staged / CHECKPOINT_MARKER, meta)
    replace_dir_atomic(staged, run_dir / "checkpoint")


def load_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    import json

    import torch

    folder = existing_dir(run_dir / "checkpoint", CHECKPOINT_MARKER)
    if folder is None:
        raise TrainingError(f"{run_dir}: no checkpoint to resume from")
    meta = json.loads((folder / CHECKPOINT_MARKER).read_text(encoding="utf-8"))
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    return meta, state


def save_model(run_dir: Path, model: Any, tokenizer: Any) -> None:
    staged = run_dir / ".model.tmp"
    import shutil

    shutil.rmtree(staged, ignore_errors=True)
    model.save_pretrained(staged, safe_serialization=True)
    tokenizer.save_pretrained(staged)
    replace_dir_atomic(staged, run_dir / "model")


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
    state = PartialState(cpu=not _cuda_available())
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
    def __init__(self, config: TrainConfig, run_dir: Path, on_event: EventCallback | None,
                 stop: threading.Event, resume: bool, allow_pickle: bool = False):
        self.config = config
        self.run_dir = run_dir
        self.on_event = on_event
        self.stop = stop
        self.resume = resume
        self.allow_pickle = allow_pickle  # the user's opt-in to pickle weights for CONFIG.model
        self.writer: MetricsWriter | None = None
        self.history: list[dict[str, Any]] = []

    def emit(self, kind: str, **values: Any) -> None:
        record = {"kind": kind, "time": time.strftime("%Y-%m-%dT%H:%M:%S"), **values}
        if self.writer is not None:
            self.writer.write(record)
        if self.on_event is not None:
            self.on_event(record)

    def run(self) -> TrainResult:
        from accelerate import Accelerator
        from accelerate.state import AcceleratorState, GradientState

        if not _cuda_available():
            keep_freed_memory()
        # Accelerate keeps its state per process; a second training in the same process (the
        # TUI, tests) may want another precision, so that state is rebuilt for every run. The
        # launcher's process group (PartialState) is kept.
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()
        self.accelerator = Accelerator(cpu=not _cuda_available(),
                                       mixed_precision=resolve_precision(self.config.precision,
                                                                         "cuda" if _cuda_available() else "cpu"))
        if self.accelerator.is_main_process:
            self.writer = MetricsWriter(self.run_dir / "metrics.jsonl")
        try:
            if self.resume and self.accelerator.is_main_process:  # under the run lock
                from workbench.core.runs import recover_dir

                recover_dir(self.run_dir / "checkpoint", CHECKPOINT_MARKER)  # after a kill mid-swap
                recover_dir(self.run_dir / "model", "config.json")
            return self._run()
        except Exception as err:  # the run folder records every failure before it propagates
            self.emit("end", status="failed", error=f"{type(err).__name__}: {err}")
            raise
        finally:
            if self.writer is not None:
                self.writer.close()

    def _run(self) -> TrainResult:
        import torch
        from accelerate.utils import set_seed
        from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

        from workbench.core.data import load_cola
        from workbench.core.model import load_model, load_tokenizer

        config, accelerator = self.config, self.accelerator
        set_seed(config.seed)
        cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
        train_frame, val_frame = cola["train"], cola["validation"]
        if config.train_limit:
            train_frame = train_frame.iloc[: config.train_limit]
        tokenizer = load_tokenizer(config.model)
        model = load_model(config.model, allow_pickle=self.allow_pickle)
        train_rows = encode(tokenizer, train_frame["sentence"].tolist(), train_frame["label"].tolist(),
                            config.max_length)
        val_rows = encode(tokenizer, val_frame["sentence"].tolist(), val_frame["label"].tolist(),
                          config.max_length)
        collator = DataCollatorWithPadding(tokenizer)
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

        fused: dict[str, Any] = {"fused": True} if _fused_adamw_ok(accelerator.device.type) else {"foreach": True}
        groups = parameter_groups(model, config.learning_rate, config.weight_decay, config.layer_lr_decay)
        optimizer = torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups],
                                      lr=config.learning_rate, eps=config.adam_epsilon, **fused)
        model, optimizer, train_loader, val_loader = accelerator.prepare(model, optimizer, train_loader, val_loader)
        steps_per_epoch = len(train_loader)
        total_steps = steps_per_epoch * config.epochs
        scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps(total_steps, config.warmup_ratio),
                                                    total_steps)

        position: dict[str, Any] = {"epoch": 0, "epoch_step": 0, "step": 0, "best_val_mcc": -2.0, "best_epoch": 0,
                    "stale_epochs": 0, "loss_sum": 0.0, "loss_count": 0, "history": []}
        if self.resume:
            meta, state = load_checkpoint(self.run_dir)
            if meta.get("finished"):
                raise TrainingError(f"{self.run_dir}: this run has finished; nothing to resume")
            accelerator.unwrap_model(model).load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(state["rng"])
            position.update(meta)
        self.history = list(position["history"])
        device_name = _device_name(accelerator.device)
        self.emit("start", run=self.run_dir.name, model=config.model, device=device_name,
                  precision=accelerator.mixed_precision, processes=accelerator.num_processes,
                  train_sentences=len(train_rows), validation_sentences=len(val_rows),
                  steps_per_epoch=steps_per_epoch, total_steps=total_steps, epochs=config.epochs,
                  resumed_at_step=position["step"] if self.resume else None)

        def checkpoint(finished: bool = False) -> None:
            if accelerator.is_main_process:
                save_checkpoint(self.run_dir, accelerator.unwrap_model(model), optimizer, scheduler,
                                {**position, "history": self.history, "finished": finished})
                self.emit("checkpoint", step=position["step"], epoch=position["epoch"],
                          epoch_step=position["epoch_step"])
            accelerator.wait_for_everyone()

        started = time.perf_counter()
        steps_this_session = 0
        throughput = Throughput()
        params = [p for p in model.parameters() if p.requires_grad]
        status = "done"
        while position["epoch"] < config.epochs:
            epoch = position["epoch"]
            train_loader.set_epoch(epoch)
            loader = train_loader
            if position["epoch_step"]:
                loader = accelerator.skip_first_batches(train_loader, position["epoch_step"])
            model.train()
            for batch in loader:
                if self._should_stop():
                    break
                try:
                    loss = model(**batch).loss
                    loss_value = float(loss.detach().float().item())
                    if not math.isfinite(loss_value):
                        return self._fail_nonfinite(loss_value, position)
                    accelerator.backward(loss)
                    clip_and_step(accelerator, optimizer, params, config.max_grad_norm)
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                except torch.OutOfMemoryError:
                    raise TrainingError(
                        f"out of memory at batch size {config.batch_size} (max length {config.max_length}) on "
                        f"{device_name}; try --batch-size {max(1, config.batch_size // 2)}") from None
                position["step"] += 1
                position["epoch_step"] += 1
                position["loss_sum"] += loss_value
                position["loss_count"] += 1
                steps_this_session += 1
                now = time.perf_counter()
                sentences = int(batch["labels"].shape[0]) * accelerator.num_processes
                rate = throughput.add(now, sentences)
                per_step = (now - started) / steps_this_session
                self.emit("step", epoch=epoch + 1, step=position["step"], epoch_step=position["epoch_step"],
                          steps_per_epoch=steps_per_epoch, total_steps=total_steps, loss=loss_value,
                          lr=scheduler.get_last_lr()[-1], sentences_per_s=rate, elapsed_s=now - started,
                          eta_s=per_step * (total_steps - position["step"]))
                if config.checkpoint_every and position["step"] % config.checkpoint_every == 0:
                    checkpoint()
            if self._should_stop() and position["epoch_step"] < steps_per_epoch:
                status = "stopped"
                break
            metrics = self._validate(model, val_loader)
            train_loss = position["loss_sum"] / max(1, position["loss_count"])
            improved = metrics["mcc"] > position["best_val_mcc"]
            if improved:
                position.update(best_val_mcc=metrics["mcc"], best_epoch=epoch + 1, stale_epochs=0)
                if accelerator.is_main_process:
                    save_model(self.run_dir, accelerator.unwrap_model(model), tokenizer)
            else:
                position["stale_epochs"] += 1
            record = {"epoch": epoch + 1, "step": position["step"], "train_loss": train_loss, "val_n": metrics["n"],
                      "val_loss": metrics["loss"], "val_accuracy": metrics["accuracy"],
                      "val_mcc": metrics["mcc"], "best": improved, "elapsed_s": time.perf_counter() - started}
            self.history.append(record)
            self.emit("epoch", **record)
            position.update(epoch=epoch + 1, epoch_step=0, loss_sum=0.0, loss_count=0)
            early_stop = bool(config.patience) and position["stale_epochs"] >= config.patience
            finished = position["epoch"] >= config.epochs or early_stop
            checkpoint(finished=finished)
            if early_stop:
                self.emit("log", message=f"early stop: no better validation MCC for {config.patience} epochs")
                break
            if self._should_stop() and not finished:
                status = "stopped"
                break
        if status == "stopped":
            checkpoint()
            self.emit("end", status="stopped", step=position["step"], epoch=position["epoch"],
                      best_val_mcc=position["best_val_mcc"])
            return self._result("stopped", position)
        final = self._final_eval(tokenizer) if accelerator.is_main_process else {}
        self.emit("end", status="done", step=position["step"], epoch=position["epoch"],
                  best_epoch=position["best_epoch"], best_val_mcc=position["best_val_mcc"], **final)
        return self._result("done", position, final=final)

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

    def _validate(self, model: Any, val_loader: Any) -> dict[str, float]:
        import torch

        from workbench.core.evaluate import compute_metrics

        model.eval()
        all_logits, all_labels = [], []
        with torch.no_grad():
            for batch in val_loader:
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

    def _final_eval(self, tokenizer: Any) -> dict[str, Any]:
        """Score the best model on in_domain_dev and the holdout; writes eval.json."""
        from workbench.core.data import load_cola
        from workbench.core.evaluate import evaluate_frame, record_report
        from workbench.core.model import load_model

        if not (self.run_dir / "model").is_dir():
            return {}
        model = load_model(str(self.run_dir / "model")).to(self.accelerator.device)
        cola = load_cola(self.config.data or None, self.config.validation_fraction, self.config.split_seed)
        dev, holdout = (evaluate_frame(model, tokenizer, cola[name], name, self.config.max_length,
                                       self.config.eval_batch_size) for name in ("in_domain_dev", "holdout"))
        for result in (dev, holdout):
            record_report(self.run_dir, result)
        return {"holdout_mcc": holdout.mcc, "holdout_accuracy": holdout.accuracy, "in_domain_dev_mcc": dev.mcc}

    def _fail_nonfinite(self, loss_value: float, position: dict[str, Any]) -> TrainResult:
        message = (f"loss became {loss_value} at step {position['step'] + 1}; training stopped. The last good "
                   f"checkpoint and the best model are kept; try a lower learning rate")
        self.emit("end", status="failed", error=message, step=position["step"])
        return self._result("failed", position, error=message)

    def _result(self, status: str, position: dict[str, Any], error: str = "",
                final: dict[str, Any] | None = None) -> TrainResult:
        return TrainResult(run_dir=self.run_dir, status=status, epochs_done=position["epoch"],
                           best_epoch=position["best_epoch"], best_val_mcc=position["best_val_mcc"],
                           error=error, history=list(self.history), final=final or {})


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("WORKBENCH_CPU", "") != "1"


def clip_and_step(accelerator: Any, optimizer: Any, params: list[Any], max_norm: float) -> None:
    """Clip the gradients' total norm to MAX_NORM, then take the optimizer step.

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
        accelerator.clip_grad_norm_(params, max_norm)
        optimizer.step()
        return
    norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
    inner.grad_scale = torch.clamp((norm + 1e-6) / max_norm, min=1.0)
    try:
        optimizer.step()
    finally:
        del inner.grad_scale


def keep_freed_memory() -> None:
    """Let glibc keep freed blocks under 32 MB for reuse instead of handing them back to the OS.

    Every CPU training step allocates and frees the same activations and bf16 weight copies;
    returned to the OS, each one page-faults back in on the next step (about 10% of a step on
    the 2-core machine; benchmarks/README.md). Process-wide; a no-op off glibc."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 256 << 20)
    except (OSError, AttributeError):
        pass


def _fused_adamw_ok(device_type: str) -> bool:
    return device_type in ("cpu", "cuda")


def _device_name(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def device_memory() -> str:
    """Current memory use of the training device, for progress displays."""
    import torch

    if torch.cuda.is_available():
        used = torch.cuda.memory_allocated() / 2**30
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        return f"{used:.1f}/{total:.0f} GiB"
    try:
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        return f"peak RSS {rss:.2f} GiB"
    except (ImportError, OSError):
        return ""
