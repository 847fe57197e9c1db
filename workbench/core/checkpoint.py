"""Checkpoints and saved models in a run folder, each written whole or not at all."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from workbench.core.runs import existing_dir, fault_point, recover_dir, replace_dir_atomic, write_json_atomic

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


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, model: Any, optimizer: Any, scheduler: Any, meta: dict[str, Any]) -> None:
    """Write checkpoint/ whole or not at all: staged, then swapped in (meta.json last)."""
    import torch

    staged = run_dir / ".checkpoint.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "rng": rng_state()}
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


def save_model(run_dir: Path, model: Any, tokenizer: Any) -> None:
    """model/ as a save_pretrained folder (safetensors, with its tokenizer), swapped in whole."""
    staged = run_dir / ".model.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    model.save_pretrained(staged, safe_serialization=True)
    tokenizer.save_pretrained(staged)
    replace_dir_atomic(staged, run_dir / "model")


def recover_run(run_dir: Path) -> None:
    """After a kill in the middle of a swap, put the previous whole checkpoint and model back."""
    recover_dir(run_dir / "checkpoint", CHECKPOINT_MARKER)
    recover_dir(run_dir / "model", MODEL_MARKER)
