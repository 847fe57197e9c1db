"""Training configuration: every default in one visible place."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.core.base.reporting import TRACKERS, missing_trackers, tracker_names

LABELS: tuple[str, str] = ("unacceptable", "acceptable")
DEFAULT_MODEL = "embedded:all-MiniLM-L6-v2"
COLA_URL = "https://nyu-mll.github.io/CoLA/cola_public_1.1.zip"
PRECISIONS = ("auto", "fp32", "bf16")
# off, or the torch.compile backend of the training step: inductor generates fused kernels; aot_eager and eager
# trace the model without generating code (a check that the model compiles, fast to set up)
COMPILE_BACKENDS = ("off", "inductor", "aot_eager", "eager")
BATCH_SIZE = 32  # the batch of a run of more than one epoch (batch_size 0)
ONE_EPOCH_BATCH_SIZE = 8  # the batch of a 1-epoch run (batch_size 0)
MAP_REGIONS = ("easy", "ambiguous", "hard")  # the training map's regions (core/explore/cartography.py)


def project_data_dir() -> Path:
    """The bundled CoLA folder (`data/cola/` of the repository), or $WORKBENCH_DATA."""
    env = os.environ.get("WORKBENCH_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "data" / "cola"


def default_runs_dir() -> Path:
    """Where runs are written: $WORKBENCH_RUNS or ./runs."""
    return Path(os.environ.get("WORKBENCH_RUNS", "runs"))


# seeds reach numpy's legacy generator (accelerate's set_seed), which takes 0 to 2**32 - 1
SEED_MAX = 2**32 - 1


@dataclass
class TrainConfig:
    """The recipe of one fine-tuning run.

    The seed notebook's recipe (batch 32 — 8 for a 1-epoch run —, max length 128, AdamW eps 1e-8,
    linear warmup/decay, clip 1.0, seeded 10% validation split) with the
    learning rate, epochs and layer-wise decay chosen by measurement on the
    embedded model (see docs/recipe.md and benchmarks/recipe_search.md,
    where batch 16, higher peak rates with stronger layer decay and weight
    averaging did not beat it; 8 epochs beat 6 once the step got faster).

    Each field's metadata is the one place that says where the setting appears: "help" (its
    sentence in --help and the form), "choices", and "flag", "form", "sweep" (each true when
    absent): whether `train`/`sweep` give it a --flag of its own (a name there names the flag:
    --map for subset_map), whether the TUI's form shows it, and whether a sweep's space may
    search it. Read them with flag_fields(), form_fields()
    and sweepable_fields().
    """

    model: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": "Hugging Face model id, local model folder, or embedded:NAME for a model shipped as a package.",
            "flag": False,  # every command's shared --model
            "sweep": False,
        },
    )  # a study searches one model's recipe
    data: str = field(
        default="",
        metadata={
            "help": "CoLA folder, or a CSV/TSV file of sentences and labels; empty means the bundled copy.",
            "flag": False,  # every command's shared --data
            "sweep": False,
        },
    )  # trials are compared on the same data
    epochs: int = field(default=8, metadata={"help": "Passes over the training sentences."})
    batch_size: int = field(
        default=0,
        metadata={
            "help": "Sentences per optimizer step; 0 picks by the epochs: 8 for a 1-epoch run, 32 for longer ones "
            "(measured over 3 seeds, benchmarks/recipe_search.md)."
        },
    )
    max_length: int = field(default=128, metadata={"help": "Longest input in tokens; longer sentences are truncated."})
    learning_rate: float = field(
        default=1e-4,
        metadata={
            "help": "Peak AdamW learning rate (of the top layer), reached after the warmup, then decayed linearly to 0."
        },
    )
    layer_lr_decay: float = field(
        default=0.85,
        metadata={
            "help": "Each layer below the top learns at this fraction of the rate of the layer above; 1 turns it off."
        },
    )
    weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay, on all weights but biases and LayerNorm."}
    )
    warmup_ratio: float = field(
        default=0.1,
        metadata={"help": "Share of all steps over which the learning rate rises linearly from 0 to its peak."},
    )
    adam_epsilon: float = field(
        default=1e-8, metadata={"help": "AdamW epsilon, added to the denominator for numerical stability."}
    )
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "Clip the gradients' total norm to this before each optimizer step."}
    )
    seed: int = field(
        default=42,
        metadata={
            "help": "Seed of dropout, the batch order and (unless --head-seed is given) the classifier head's "
            "initialisation."
        },
    )
    split_seed: int = field(
        default=2018,
        metadata={"help": "Seed of the validation split drawn from the training file; eval reuses the run's split."},
    )
    validation_fraction: float = field(
        default=0.1,
        metadata={"help": "Share of the training file held out for validation, which picks the best epoch."},
    )
    patience: int = field(
        default=0,
        metadata={"help": "Stop after this many epochs without a better validation MCC; 0 never stops early."},
    )
    precision: str = field(
        default="auto",
        metadata={
            "help": "Arithmetic: auto (bf16 where the hardware has it, else fp32), fp32 or bf16.",
            "choices": PRECISIONS,
        },
    )
    train_limit: int = field(
        default=0, metadata={"help": "Train on only the first N training sentences, for quick tries; 0 uses all."}
    )
    eval_batch_size: int = field(default=128, metadata={"help": "Sentences per batch when validating and evaluating."})
    checkpoint_every: int = field(
        default=0, metadata={"help": "Also checkpoint every N optimizer steps; 0 checkpoints at each epoch's end only."}
    )
    checkpoint_minutes: float = field(
        default=3.0,
        metadata={
            "help": "Also checkpoint once this many minutes of training have passed since the last checkpoint, "
            "so a killed or preempted training loses at most that much; 0 checkpoints by steps and "
            "epochs only.",
            "sweep": False,
        },
    )
    report_to: str = field(
        default="",
        metadata={
            "help": "Also log to these experiment trackers, comma-separated: tensorboard, mlflow, wandb "
            "(each an optional pip extra: pip install 'cola-workbench[tensorboard]')."
        },
    )
    calibrate_threshold: bool = field(
        default=True,
        metadata={
            "help": "After training, fold the decision threshold on p(acceptable) that maximises validation MCC "
            "into the saved model's bias, so every consumer of the folder gets the same labels."
        },
    )
    freeze_embeddings: bool = field(
        default=True,
        metadata={
            "help": "Keep the pretrained word-embedding table as it is: no dense gradient over its 30,522 rows, "
            "less AdamW work (core/training/speed.py); over 3 seeds MCC was the same as training it, within seed "
            "noise (benchmarks/README.md). Off trains the table too."
        },
    )
    dropout: float = field(
        default=0.0,
        metadata={
            "help": "Dropout rate of the encoder's hidden states, attention and the classifier head; "
            "0 keeps the model's own (core/training/recipe.py)."
        },
    )
    reinit_top_layers: int = field(
        default=0,
        metadata={
            "help": "Re-initialise the top N encoder layers with the model's own initialiser before training; "
            "0 keeps all pretrained (core/training/recipe.py)."
        },
    )
    head_lr_multiplier: float = field(
        default=1.0,
        metadata={
            "help": "The classification head (pooler and classifier) learns at this multiple of the peak learning "
            "rate; 1 gives it the peak rate, as before the setting existed."
        },
    )
    ema_decay: float = field(
        default=0.0,
        metadata={
            "help": "Keep an exponential moving average of the weights (this decay per optimizer step), validate it "
            "at each epoch's end beside the live weights, and keep it as the epoch's model when its "
            "validation MCC is higher; 0 turns it off."
        },
    )
    head_seed: int = field(
        default=-1,
        metadata={
            "help": "Seed of the classifier head's initialisation alone; -1 uses --seed. A seed group with one "
            "head seed shares its head init, so its members can be averaged (workbench soup)."
        },
    )
    overrides: str = field(
        default="",
        metadata={
            "help": "Label-overrides file (TSV: line, sentence, old_label, decision, note; docs/data.md) whose "
            "flip, drop and keep decisions apply to the training split; empty applies none.",
            "sweep": False,
        },
    )
    subset_map: str = field(
        default="",
        metadata={
            "help": "Train only on the chosen regions of this run's training map (a run name or folder, trained "
            "on the same data and split); empty trains on every training sentence.",
            "flag": "map",  # train --map, beside --regions and --fraction
            "sweep": False,
        },
    )
    subset_regions: str = field(
        default="",
        metadata={
            "help": "The map regions to train on, comma-separated: easy, ambiguous, hard (with --map).",
            "flag": "regions",
            "sweep": False,
        },
    )
    subset_fraction: float = field(
        default=1.0,
        metadata={
            "help": "Of each chosen region, train on this share, the region's most typical first: the most variable "
            "ambiguous, the most confident easy, the least confident hard sentences; 1 keeps them all.",
            "flag": "fraction",
        },
    )
    compile: str = field(
        default="off",
        metadata={
            "help": "Compile the training step's model with torch.compile on this backend (Accelerate's regional "
            "compilation: each repeated encoder layer compiled once, dynamic shapes): inductor generates fused "
            "kernels; the first run of a model on a machine waits for the compile (minutes on a CPU), later runs "
            "read torch's on-disk cache. A compile that fails falls back to eager, saying so; off trains eager.",
            "choices": COMPILE_BACKENDS,
            "sweep": False,
        },
    )
    extra: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "Free-form values kept with the run's config (no flag).",
            "flag": False,
            "form": False,
            "sweep": False,
        },
    )  # a space searches one of its values as extra.NAME, not the whole dict

    def validate(self) -> dict[str, str]:
        """Problems by field name; empty when the config can run."""
        problems: dict[str, str] = {}
        if not self.model.strip():
            problems["model"] = "must name a model id or folder"
        if self.epochs < 1 or self.epochs > 1000:
            problems["epochs"] = "must be between 1 and 1000"
        if self.batch_size < 0 or self.batch_size > 4096:
            problems["batch_size"] = "must be between 1 and 4096, or 0 to pick by the epochs"
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
        if self.compile not in COMPILE_BACKENDS:
            problems["compile"] = f"must be one of {', '.join(COMPILE_BACKENDS)}"
        if self.train_limit < 0:
            problems["train_limit"] = "must be >= 0"
        if self.eval_batch_size < 1:
            problems["eval_batch_size"] = "must be >= 1"
        if self.checkpoint_every < 0:
            problems["checkpoint_every"] = "must be >= 0"
        if not 0 <= self.checkpoint_minutes <= 24 * 60:
            problems["checkpoint_minutes"] = "must be between 0 and 1440 (0: only at epoch ends and every N steps)"
        unknown = [name for name in tracker_names(self.report_to) if name not in TRACKERS]
        if unknown:
            problems["report_to"] = (
                f"unknown tracker {', '.join(map(repr, unknown))}; choose from {', '.join(TRACKERS)} (comma-separated)"
            )
        elif missing_trackers(self.report_to):  # a config that needs a package this Python lacks cannot run here
            problems["report_to"] = missing_trackers(self.report_to)
        if not 0 <= self.dropout < 1:
            problems["dropout"] = "must be >= 0 and < 1 (0 keeps the model's own)"
        if self.reinit_top_layers < 0 or self.reinit_top_layers > 100:
            problems["reinit_top_layers"] = "must be between 0 and 100"
        if not 0 < self.head_lr_multiplier <= 1000:
            problems["head_lr_multiplier"] = "must be > 0 and <= 1000"
        if not 0 <= self.ema_decay < 1:
            problems["ema_decay"] = "must be >= 0 and < 1 (0 turns the average off)"
        for name in ("seed", "split_seed"):
            if not 0 <= getattr(self, name) <= SEED_MAX:
                problems[name] = f"must be between 0 and {SEED_MAX} (2**32 - 1)"
        if not -1 <= self.head_seed <= SEED_MAX:
            problems["head_seed"] = f"must be between 0 and {SEED_MAX} (2**32 - 1), or -1 for the run's --seed"
        if not isinstance(self.freeze_embeddings, bool):
            problems["freeze_embeddings"] = "must be true or false"
        problems.update(self._subset_problems())
        return problems

    def _subset_problems(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        if self.overrides and not self.overrides.strip():
            problems["overrides"] = "must name a file, or be empty for none"
        unknown = [name for name in self.region_names if name not in MAP_REGIONS]
        if unknown:
            choose = ", ".join(MAP_REGIONS)
            problems["subset_regions"] = f"unknown region {', '.join(map(repr, unknown))}; choose from {choose}"
        elif self.subset_map.strip() and not self.region_names:
            problems["subset_regions"] = f"name the map regions to train on: {', '.join(MAP_REGIONS)} (comma-separated)"
        if not 0 < self.subset_fraction <= 1:
            problems["subset_fraction"] = "must be > 0 and <= 1 (1 keeps every sentence of the chosen regions)"
        if not self.subset_map.strip() and (self.region_names or self.subset_fraction != 1):
            problems["subset_map"] = "name the run whose training map gives the regions (a run name or folder)"
        return problems

    @property
    def region_names(self) -> tuple[str, ...]:
        """subset_regions as names, in the order given, each once."""
        names = [name.strip().lower() for name in self.subset_regions.split(",") if name.strip()]
        return tuple(dict.fromkeys(names))

    @property
    def trains_on_subset(self) -> bool:
        """The run trains on a chosen part of its training split (overrides, a map's regions) or with changed labels."""
        return bool(self.overrides.strip() or self.subset_map.strip())

    @property
    def effective_batch_size(self) -> int:
        """batch_size, or when it is 0 the one measured best for the epochs: 8 for one epoch (4x the optimizer
        steps of 32, which one epoch needs to separate the classes), 32 for more (8 epochs at batch 16 were
        no better and 2.4x slower)."""
        if self.batch_size:
            return self.batch_size
        return ONE_EPOCH_BATCH_SIZE if self.epochs == 1 else BATCH_SIZE

    def resolved(self) -> TrainConfig:
        """This config with every value that depends on others made concrete (the batch size): what a run
        trains with and saves, so that its folder says what it did."""
        return dataclasses.replace(self, batch_size=self.effective_batch_size)

    def as_requested(self) -> TrainConfig:
        """A run's saved (resolved) config as a request for another run: the batch size back to 0 when it is
        the one 0 picks for its epochs, so that a form filled from a 1-epoch run and set to 8 epochs trains
        at 32, as a new 8-epoch run would."""
        requested = dataclasses.replace(self, batch_size=0)
        return requested if requested.effective_batch_size == self.batch_size else self

    @property
    def effective_head_seed(self) -> int:
        """The seed the classifier head was initialised with: head_seed, or seed when it is -1."""
        return self.seed if self.head_seed < 0 else self.head_seed

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (older or newer run folders)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def save(self, path: Path) -> None:
        """Write PATH whole, synced to the disk (a resume needs it after a power cut)."""
        from workbench.core.base.durable import replace_durable

        staged = path.with_name(f".{path.name}.tmp")
        staged.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        replace_durable(staged, path)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """A run's saved config. One saved before a setting existed gets what runs did then:
        the word-embedding table trained (freeze_embeddings became the default later)."""
        values = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(values, dict):
            values.setdefault("freeze_embeddings", False)
            values.setdefault("batch_size", BATCH_SIZE)  # before 0 (pick by the epochs) was the default
        return cls.from_dict(values)


def format_setting(value: Any) -> str:
    """A setting as shown to a person: floats to 6 significant digits (a calibrated threshold
    0.6229968965053558 reads 0.622997; 1e-08 and 0.0001 stay as typed), the rest as str."""
    if isinstance(value, float) and not isinstance(value, bool):
        return str(float(f"{value:.6g}"))
    return str(value)


def setting_help(name: str) -> str:
    """The one-sentence help of a TrainConfig field (the CLI's --help and the TUI's form read it)."""
    return str(TrainConfig.__dataclass_fields__[name].metadata.get("help", ""))


def setting_choices(name: str) -> tuple[str, ...] | None:
    """The values a TrainConfig field may take, where they are a fixed few (precision)."""
    return TrainConfig.__dataclass_fields__[name].metadata.get("choices")


def flag_fields(config_class: type[TrainConfig] = TrainConfig) -> list[Field[Any]]:
    """The settings that get a --flag of their own in `train` and `sweep`, in declaration order."""
    return [f for f in fields(config_class) if f.metadata.get("flag", True)]


def flag_name(name: str, config_class: type[TrainConfig] = TrainConfig) -> str:
    """The --flag of setting NAME: its metadata's "flag" when that is a name (--map for subset_map), else
    the setting's own name with dashes (--learning-rate)."""
    flag = (
        config_class.__dataclass_fields__[name].metadata.get("flag", True)
        if name in config_class.__dataclass_fields__
        else True
    )
    return f"--{(flag if isinstance(flag, str) else name).replace('_', '-')}"


def form_fields(config_class: type[TrainConfig] = TrainConfig) -> list[Field[Any]]:
    """The settings the TUI's training form shows (and parse_field reads from text)."""
    return [f for f in fields(config_class) if f.metadata.get("form", True)]


def sweepable_fields(config_class: type[TrainConfig] = TrainConfig) -> list[Field[Any]]:
    """The settings a sweep's search space may vary by name (values of `extra` go as extra.NAME)."""
    return [f for f in fields(config_class) if f.metadata.get("sweep", True)]


def parse_field(name: str, text: str, config_class: type[TrainConfig] = TrainConfig) -> Any:
    """Convert the text of one config field to its type; ValueError names the field."""
    kinds = {f.name: f.type for f in form_fields(config_class)}
    if name not in kinds:
        raise ValueError(f"{name}: no such setting")
    kind = str(kinds[name])
    text = text.strip()
    if kind == "bool":
        return parse_bool(text, name)
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


TRUE_WORDS = ("true", "on", "yes", "1")
FALSE_WORDS = ("false", "off", "no", "0")


def parse_bool(text: str, name: str = "") -> bool:
    """on/off, true/false, yes/no or 1/0 (any case) as a bool; ValueError otherwise."""
    lowered = str(text).strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    prefix = f"{name}: " if name else ""
    raise ValueError(f"{prefix}{text!r} is not on/off (true/false, yes/no, 1/0)")
