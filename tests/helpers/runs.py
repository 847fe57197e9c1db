"""Runs in tests: the session's trained runs (conftest) and their copies, and comparing a run with the
one it must equal (a resumed run with an uninterrupted one)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from workbench.core.runs.metrics import read_metrics


def outcome(run: Path) -> tuple[dict[int, float], dict[int, dict[str, float]], dict[str, Any]]:
    """Loss per step, metrics per epoch (the last record of each: a resume may repeat some), the last event."""
    events = read_metrics(run)
    losses = {e["step"]: e["loss"] for e in events if e["kind"] == "step"}
    epochs = {
        e["epoch"]: {k: e[k] for k in ("train_loss", "val_loss", "val_accuracy", "val_mcc")}
        for e in events
        if e["kind"] == "epoch"
    }
    return losses, epochs, events[-1]


def assert_same_outcome(run: Path, reference: Path, steps: int = 8, abs_tol: float = 1e-5) -> None:
    losses, epochs, end = outcome(run)
    ref_losses, ref_epochs, ref_end = outcome(reference)
    assert sorted(losses) == sorted(ref_losses) == list(range(1, steps + 1))
    assert [losses[s] for s in sorted(losses)] == pytest.approx([ref_losses[s] for s in sorted(losses)], abs=abs_tol)
    assert sorted(epochs) == sorted(ref_epochs) == [1, 2]
    for number in (1, 2):
        assert epochs[number] == pytest.approx(ref_epochs[number], abs=abs_tol)
    assert end["status"] == ref_end["status"] == "done"
    assert end["holdout_mcc"] == pytest.approx(ref_end["holdout_mcc"], abs=abs_tol)


def copy_run(run: Path, runs_dir: Path, name: str | None = None) -> Path:
    """A copy of the shared RUN in RUNS_DIR (under its own name or NAME), the test's to change."""
    target = runs_dir / (name or run.name)
    shutil.copytree(run, target)
    return target


@dataclass
class TrainedRun:
    """A run trained once per session by train(): its folder (copy it before changing anything),
    the events its callback saw, and the result's status, epochs and final scores."""

    path: Path
    events: list[dict[str, Any]]
    status: str
    epochs_done: int
    final: dict[str, Any]


def save_tiny_bert(folder: Path, seed: int = 0, dropout: float = 0.1) -> Path:
    """A 2-layer, 32-wide BertForSequenceClassification with the real WordPiece vocabulary, its weights
    drawn with SEED and its dropout rates DROPOUT, saved as a standard folder."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from workbench.core.model.loading import ID2LABEL, LABEL2ID, load_tokenizer

    tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
        num_labels=2,
        id2label=ID2LABEL,
        label2id=LABEL2ID,
    )
    BertForSequenceClassification(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
