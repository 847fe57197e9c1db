"""Checkpoints and saved models in a run folder, each written whole or not at all."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from workbench.core.base.durable import existing_dir, fault_point, recover_dir, replace_dir_atomic, write_json_atomic

CHECKPOINT_MARKER = "meta.json"
MODEL_MARKER = "config.json"


class CheckpointError(Exception):
    """No checkpoint to resume from, or one that cannot be read."""


def rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def rng_states(num_processes: int = 1) -> list[dict[str, Any]] | None:
    """Every process's random state, in rank order, on the main process (None on the others).

    Each process draws its own dropout masks from its own generator (their batches differ in
    shape), so a checkpoint keeps one state per process. A collective: all processes call it."""
    state = rng_state()
    if num_processes == 1:
        return [state]
    import torch.distributed as dist

    gathered: list[Any] | None = [None] * num_processes if dist.get_rank() == 0 else None
    dist.gather_object(state, gathered, dst=0)
    return gathered


def rank_rng_state(saved: list[dict[str, Any]] | dict[str, Any], rank: int) -> dict[str, Any]:
    """Process RANK's random state in a checkpoint: one per process, or one for all (a dict: older
    checkpoints). A process the checkpoint has no state for (more processes now) takes rank 0's."""
    if isinstance(saved, dict):
        return saved
    return saved[rank] if rank < len(saved) else saved[0]


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        # one state per GPU visible when saved; resumed with fewer (or more) visible, each GPU there
        # now gets its saved state, and the others keep theirs (set_rng_state_all would fail)
        for index, device_state in enumerate(list(state["cuda"])[: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, index)


def nonfinite_weights(model: Any) -> list[str]:
    """Names of MODEL's floating-point weights that hold a NaN or an infinity (one read from the device)."""
    import torch

    named = [(name, tensor) for name, tensor in model.state_dict().items() if tensor.is_floating_point()]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(tensor).all() for _, tensor in named]).tolist()
    return [name for (name, _), ok in zip(named, finite, strict=True) if not ok]


def check_finite(model: Any, what: str) -> None:
    """The last guard against saving a broken training: CheckpointError if MODEL has a non-finite weight."""
    bad = nonfinite_weights(model)
    if bad:
        raise CheckpointError(
            f"not saving the {what}: {len(bad)} weight tensors hold NaN or infinity (first: "
            f"{bad[0]}); the last good one is kept"
        )


def save_checkpoint(
    run_dir: Path,
    model: Any,
    optimizer: Any,
    scheduler: Any,
    meta: dict[str, Any],
    rng: list[dict[str, Any]] | None = None,
    ema: list[Any] | None = None,
) -> None:
    """Write checkpoint/ whole or not at all: staged, then swapped in (meta.json last).

    RNG: every process's random state (`rng_states`); this process's alone when not given.
    EMA: the moving average of the trainable weights (--ema-decay), in the order of their parameters.
    Refuses weights that are not finite (CheckpointError)."""
    import torch

    check_finite(model, "checkpoint")
    staged = run_dir / ".checkpoint.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng or [rng_state()],
    }
    if ema is not None:
        state["ema"] = [tensor.detach().cpu() for tensor in ema]
    with (staged / "state.pt").open("wb") as handle:
        torch.save(state, handle)
        handle.flush()
        os.fsync(handle.fileno())
    fault_point("checkpoint:write")  # crash tests: a kill here leaves the previous checkpoint in place
    write_json_atomic(staged / CHECKPOINT_MARKER, meta)
    replace_dir_atomic(staged, run_dir / "checkpoint")


def load_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, state) of RUN_DIR's last whole checkpoint; CheckpointError if there is none."""
    import torch

    folder = existing_dir(run_dir / "checkpoint", CHECKPOINT_MARKER)
    if folder is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to resume from")
    meta = json.loads((folder / CHECKPOINT_MARKER).read_text(encoding="utf-8"))
    state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    return meta, state


def restore_checkpoint(
    run_dir: Path, model: Any, optimizer: Any, scheduler: Any, ema: Any, process_index: int
) -> dict[str, Any]:
    """Load RUN_DIR's last checkpoint into MODEL (unwrapped), OPTIMIZER, SCHEDULER and EMA (a WeightAverage or
    None) and this process's random state; its meta (the position). CheckpointError if it cannot."""
    meta, state = load_checkpoint(run_dir)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if ema is not None:
        if "ema" not in state:
            raise CheckpointError(f"{run_dir}: the checkpoint has no weight average (ema_decay is set)")
        ema.load(state["ema"])
    set_rng_state(rank_rng_state(state["rng"], process_index))
    return meta


def resume_note(restarted_from_zero: bool, finished: bool) -> str:
    """What a resume says in the run's log before its first step ("": nothing to say)."""
    if restarted_from_zero:
        return (
            "no checkpoint yet (the run was killed before its first one): training restarts from step 0 "
            "with the run's saved config.json"
        )
    if finished:
        return "the run is trained; resuming its final evaluation"
    return ""


def checkpoint_meta(run_dir: Path) -> dict[str, Any] | None:
    """The position in RUN_DIR's last whole checkpoint (its meta.json), None when there is none."""
    folder = existing_dir(run_dir / "checkpoint", CHECKPOINT_MARKER)
    if folder is None:
        return None
    meta: dict[str, Any] = json.loads((folder / CHECKPOINT_MARKER).read_text(encoding="utf-8"))
    return meta


def update_checkpoint_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    """Replace the last checkpoint's meta.json (atomically, durably), its weights as they are: the
    finish step records there that the threshold is calibrated and the final evaluation done."""
    folder = existing_dir(run_dir / "checkpoint", CHECKPOINT_MARKER)
    if folder is None:
        raise CheckpointError(f"{run_dir}: no checkpoint to update")
    write_json_atomic(folder / CHECKPOINT_MARKER, meta)


def save_model(run_dir: Path, model: Any, tokenizer: Any) -> None:
    """model/ as a save_pretrained folder (safetensors, with its tokenizer), swapped in whole.
    Refuses weights that are not finite (CheckpointError)."""
    check_finite(model, "model")
    staged = run_dir / ".model.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    model.save_pretrained(staged, safe_serialization=True)
    tokenizer.save_pretrained(staged)
    replace_dir_atomic(staged, run_dir / "model")


def recover_run(run_dir: Path) -> None:
    """After a kill in the middle of a swap, put the previous whole checkpoint and model back."""
    recover_dir(run_dir / "checkpoint", CHECKPOINT_MARKER)
    recover_dir(run_dir / "model", MODEL_MARKER)
