"""Training configuration: every default in one visible place."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

LABELS: tuple[str, str] = ("unacceptable", "acceptable")
DEFAULT_MODEL = "embedded:all-MiniLM-L6-v2"
COLA_URL = "https://nyu-mll.github.io/CoLA/cola_public_1.1.zip"
PRECISIONS = ("auto", "fp32", "bf16")


def project_data_dir() -> Path:
    """The bundled CoLA folder (`data/cola/` of the repository), or $WORKBENCH_DATA."""
    env = os.environ.get("WORKBENCH_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data" / "cola"


def default_runs_dir() -> Path:
    """Where runs are written: $WORKBENCH_RUNS or ./runs."""
    return Path(os.environ.get("WORKBENCH_RUNS", "runs"))


@dataclass
class TrainConfig:
    """The recipe of one fine-tuning run.

    The seed notebook's recipe (batch 32, max length 128, AdamW eps 1e-8,
    linear warmup/decay, clip 1.0, seeded 10% validation split) with the
    learning rate, epochs and layer-wise decay chosen by measurement on the
    embedded model (see README, "Default recipe", and benchmarks/recipe_search.md,
    where batch 16, higher peak rates with stronger layer decay and weight
    averaging did not beat it; 8 epochs beat 6 once the step got faster).
    """

    model: str = DEFAULT_MODEL
    data: str = ""  # CoLA folder; "" means the bundled copy
    epochs: int = 8
    batch_size: int = 32
    max_length: int = 128
    learning_rate: float = 1e-4
    layer_lr_decay: float = 0.85  # 1.0 turns layer-wise decay off
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    seed: int = 42
    split_seed: int = 2018
    validation_fraction: float = 0.1
    patience: int = 0  # epochs without a better validation MCC before stopping; 0 = never
    precision: str = "auto"  # auto: bf16 where the hardware has it, else fp32
    train_limit: int = 0  # use only the first N training sentences (0 = all); for quick tries
    eval_batch_size: int = 128
    checkpoint_every: int = 0  # also checkpoint every N optimizer steps (0 = each epoch only)
    # Keep the pretrained word-embedding table as it is: no dense 30,522-row gradient, half the
    # AdamW work (workbench/core/speed.py). Off until 3 seeds show quality holds.
    freeze_embeddings: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> dict[str, str]:
        """Problems by field name; empty when the config can run."""
        problems: dict[str, str] = {}
        if not self.model.strip():
            problems["model"] = "must name a model id or folder"
        if self.epochs < 1 or self.epochs > 1000:
            problems["epochs"] = "must be between 1 and 1000"
        if self.batch_size < 1 or self.batch_size > 4096:
            problems["batch_size"] = "must be between 1 and 4096"
        if self.max_length < 8 or self.max_length > 8192:
            problems["max_length"] = "must be between 8 and 8192"
        if not 0 < self.learning_rate <= 1:
            problems["learning_rate"] = "must be > 0 and <= 1"
        if not 0 < self.layer_lr_decay <= 1:
            problems["layer_lr_decay"] = "must be > 0 and <= 1"
        if not 0 <= self.weight_decay < 1:
            problems["weight_decay"] = "must be >= 0 and < 1"
        if not 0 <= self.warmup_ratio < 1:
            problems["warmup_ratio"] = "must be >= 0 and < 1"
        if not 0 < self.adam_epsilon < 1:
            problems["adam_epsilon"] = "must be > 0 and < 1"
        if self.max_grad_norm <= 0:
            problems["max_grad_norm"] = "must be > 0"
        if not 0 < self.validation_fraction < 1:
            problems["validation_fraction"] = "must be > 0 and < 1"
        if self.patience < 0:
            problems["patience"] = "must be >= 0"
        if self.precision not in PRECISIONS:
            problems["precision"] = f"must be one of {', '.join(PRECISIONS)}"
        if self.train_limit < 0:
            problems["train_limit"] = "must be >= 0"
        if self.eval_batch_size < 1:
            problems["eval_batch_size"] = "must be >= 1"
        if self.checkpoint_every < 0:
            problems["checkpoint_every"] = "must be >= 0"
        if not isinstance(self.freeze_embeddings, bool):
            problems["freeze_embeddings"] = "must be true or false"
        return problems

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (older or newer run folders)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


TRUE_WORDS = ("true", "yes", "on", "1")
FALSE_WORDS = ("false", "no", "off", "0")


def parse_bool(text: str) -> bool:
    """'true'/'yes'/'on'/'1' or 'false'/'no'/'off'/'0' (any case); ValueError otherwise.

    For command-line flags of bool settings: argparse's type=bool would read 'false' as True."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{text!r} is not true or false")


def parse_field(name: str, text: str) -> Any:
    """Convert the text of one config field to its type; ValueError names the field."""
    kinds = {f.name: f.type for f in fields(TrainConfig)}
    if name not in kinds or name == "extra":
        raise ValueError(f"{name}: no such setting")
    kind = str(kinds[name])
    text = text.strip()
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            return parse_bool(text)
    except ValueError:
        what = {"int": "an integer", "float": "a number", "bool": "true or false"}[kind]
        raise ValueError(f"{name}: {text!r} is not {what}") from None
    return text
