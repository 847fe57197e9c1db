"""Checkpoints: a swap cut short never loses the only whole copy, weights that are not finite are
never saved, each process restores its own random state (and old checkpoints still load)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from workbench.core.base.durable import replace_dir_atomic
from workbench.core.model.loading import load_model, load_tokenizer


def test_a_swap_cut_short_never_deletes_the_only_whole_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first crash left only .checkpoint.old; a second crash in the next swap must not lose it."""
    old = tmp_path / ".checkpoint.old"
    old.mkdir()
    (old / "meta.json").write_text("{}")
    staged = tmp_path / ".checkpoint.tmp"
    staged.mkdir()

    def die(name: str) -> None:
        raise SystemExit(f"killed at {name}")

    monkeypatch.setattr("workbench.core.base.durable.fault_point", die)
    with pytest.raises(SystemExit):
        replace_dir_atomic(staged, tmp_path / "checkpoint")
    assert (old / "meta.json").is_file()


def test_a_kill_after_the_swap_before_its_clean_up_leaves_no_old_copy_once_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the last rename and the removal of the previous copy (found by the random kill of
    tests/e2e/test_interruptions.py: a resume that only had the final evaluation left wrote no checkpoint,
    and .checkpoint.old stayed for good): the resume's recovery removes it and keeps the new one."""
    from workbench.core.training.checkpoint import recover_run

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "meta.json").write_text('{"step": 1}')
    staged = tmp_path / ".checkpoint.tmp"
    staged.mkdir()
    (staged / "meta.json").write_text('{"step": 2}')

    def die_after_the_renames(name: str) -> None:
        if name == "swapped:checkpoint":
            raise SystemExit(f"killed at {name}")

    monkeypatch.setattr("workbench.core.base.durable.fault_point", die_after_the_renames)
    with pytest.raises(SystemExit):
        replace_dir_atomic(staged, checkpoint)
    assert (tmp_path / ".checkpoint.old" / "meta.json").is_file()  # the state a kill leaves there
    recover_run(tmp_path)
    assert not (tmp_path / ".checkpoint.old").exists()
    assert (checkpoint / "meta.json").read_text() == '{"step": 2}'


def test_weights_that_are_not_finite_are_never_saved(tiny_model_dir: Path, tmp_path: Path) -> None:
    from workbench.core.training.checkpoint import CheckpointError, save_checkpoint, save_model

    model, tokenizer = load_model(str(tiny_model_dir)), load_tokenizer(str(tiny_model_dir))
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    save_checkpoint(tmp_path, model, optimizer, scheduler, {"step": 1})
    save_model(tmp_path, model, tokenizer)
    kept = {name: (tmp_path / name).read_bytes() for name in ("checkpoint/state.pt", "model/model.safetensors")}
    with torch.no_grad():
        model.classifier.weight[1, 3] = math.nan
    with pytest.raises(CheckpointError, match=r"NaN or infinity \(first: classifier.weight\)"):
        save_checkpoint(tmp_path, model, optimizer, scheduler, {"step": 2})
    with pytest.raises(CheckpointError, match="classifier.weight"):
        save_model(tmp_path, model, tokenizer)
    assert {name: (tmp_path / name).read_bytes() for name in kept} == kept


def test_each_process_restores_its_own_random_state_and_old_checkpoints_still_load() -> None:
    from workbench.core.training.checkpoint import rank_rng_state, rng_state, rng_states, set_rng_state

    states = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        states.append(rng_state())
    assert rank_rng_state(states, 1) is states[1] and rank_rng_state(states, 0) is states[0]
    assert rank_rng_state(states, 5) is states[0]  # more processes than when it was saved
    assert rank_rng_state(states[1], 0) is states[1]  # a checkpoint from before: one state for all
    set_rng_state(rank_rng_state(states, 1))
    drawn = torch.rand(3)
    torch.manual_seed(2)
    assert torch.equal(drawn, torch.rand(3))
    assert len(rng_states(1)) == 1  # one process: its own state, in a list
