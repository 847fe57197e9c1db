"""A sweep's search space: settings and their ranges (from a JSON or TOML file, or the built-in space), and
the errors of sweeps.

A search space is a JSON or TOML file mapping setting names to ranges:

    learning_rate = { low = 2e-5, high = 5e-4, log = true }   # float (the setting's type)
    epochs = { low = 2, high = 10 }                           # int
    batch_size = [16, 32, 64]                                 # categorical
    warmup_ratio = { type = "float", low = 0.0, high = 0.2, step = 0.05 }

Names are TrainConfig fields, or `extra.NAME` for a value passed in TrainConfig.extra.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig, sweepable_fields
from workbench.core.base.layout import RunError

DEFAULT_STUDY = "sweep"
# what a study records once, when it is created: its space and fixed settings together, in one user attribute
# (one write: a machine joining sees both or neither). Studies made before recorded them as two attributes.
STUDY_ATTR = "workbench_study"
SPACE_ATTR = "space"
FIXED_ATTR = "fixed_settings"
# settings that may differ between the machines of one study: they change how fast or where it is logged,
# never what a trial learns
MACHINE_SETTINGS = frozenset({"eval_batch_size", "report_to", "checkpoint_every", "checkpoint_minutes"})
JOIN_WAIT_S = 15.0  # how long a joining process waits for the creator to record the space
PARAM_KINDS = ("float", "int", "categorical")
PARAM_KEYS = {"type", "low", "high", "log", "step", "choices"}
EXTRA_PREFIX = "extra."
TRIAL_FILE = "trial.json"
MAX_FAILURES_IN_A_ROW = 3

# The built-in space, for the embedded MiniLM-L6 and similar small encoders. OPTIONAL_DEFAULTS
# take part once TrainConfig has such settings. (A study made with an older built-in space is
# refused by this one, "another space": give its space as a file to join it.)
DEFAULT_SPACE: dict[str, Any] = {
    "learning_rate": {"type": "float", "low": 2e-5, "high": 5e-4, "log": True},
    "layer_lr_decay": {"type": "float", "low": 0.6, "high": 1.0},
    "epochs": {"type": "int", "low": 2, "high": 10},
    "warmup_ratio": {"type": "float", "low": 0.0, "high": 0.2},
    "weight_decay": {"type": "float", "low": 0.0, "high": 0.1},
    "batch_size": {"type": "categorical", "choices": [16, 32, 64]},
    "dropout": {"type": "float", "low": 0.0, "high": 0.2},
    "freeze_embeddings": {"type": "categorical", "choices": [False, True]},
    "reinit_top_layers": {"type": "int", "low": 0, "high": 2},
    "ema_decay": {"type": "categorical", "choices": [0.0, 0.99, 0.995, 0.999]},  # 0: no average
}
OPTIONAL_DEFAULTS = ("dropout", "freeze_embeddings", "reinit_top_layers")


class SweepError(RunError):
    """A sweep that cannot start or be read: bad space file, unreachable storage, another study's space."""


class TrialFailed(Exception):
    """One trial failed (diverged, out of memory); the sweep goes on with the next."""


class SweepStopped(Exception):
    """The user stopped the sweep during a trial."""


# ---------------------------------------------------------------- the search space


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # float, int, categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out

    def suggest(self, trial: Any) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low or 0), int(self.high or 0), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, float(self.low or 0), float(self.high or 0), step=self.step, log=self.log)

    def bounds(self) -> list[Any]:
        """The values at the edges of the range (every choice of a categorical)."""
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]
    source: str = "the built-in space"

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def to_dict(self) -> dict[str, Any]:
        """Canonical form (sorted by name, JSON types): what a study records and compares."""
        return json.loads(json.dumps({p.name: p.to_dict() for p in sorted(self.params, key=lambda p: p.name)}))

    def without(self, names: Sequence[str]) -> Space:
        """This space less the settings held fixed (given on the command line)."""
        return Space(tuple(p for p in self.params if p.name not in set(names)), self.source)

    def suggest(self, trial: Any) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.params}


def _setting_types() -> dict[str, str]:
    return {f.name: str(f.type) for f in sweepable_fields()}


def apply_values(config: TrainConfig, values: dict[str, Any]) -> TrainConfig:
    """CONFIG with a trial's VALUES: settings by name, `extra.NAME` into config.extra."""
    settings = {k: v for k, v in values.items() if not k.startswith(EXTRA_PREFIX)}
    extra = {k[len(EXTRA_PREFIX) :]: v for k, v in values.items() if k.startswith(EXTRA_PREFIX)}
    return replace(config, **settings, extra={**config.extra, **extra})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fits(setting_type: str | None, value: Any) -> bool:
    """Whether VALUE can be the value of a setting of SETTING_TYPE (None: an extra, any scalar)."""
    if setting_type is None:
        return value is None or isinstance(value, (bool, int, float, str))
    if setting_type == "bool":
        return isinstance(value, bool)
    if setting_type == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if setting_type == "float":
        return _is_number(value)
    return isinstance(value, str)


def parse_param(name: str, spec: Any, source: str) -> Param:
    """One entry of a space file, checked; SweepError names SOURCE and the parameter."""

    def fail(problem: str) -> SweepError:
        return SweepError(f"{source}: {name}: {problem}")

    types = _setting_types()
    if name.startswith(EXTRA_PREFIX) and len(name) > len(EXTRA_PREFIX):
        setting_type: str | None = None
    elif name in types:
        setting_type = types[name]
    else:
        known = ", ".join(sorted(types))
        raise SweepError(f"{source}: unknown parameter {name!r} (settings: {known}; or extra.NAME)")
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict):
        raise fail(f"expected a table like {{ low = ..., high = ... }} or a list of choices, not {spec!r}")
    unknown = sorted(set(spec) - PARAM_KEYS)
    if unknown:
        raise fail(f"unknown key(s) {', '.join(unknown)} (use {', '.join(sorted(PARAM_KEYS))})")
    kind = spec.get("type")
    if kind is None:
        kind = "categorical" if "choices" in spec else ("int" if setting_type == "int" else "float")
    if kind not in PARAM_KINDS:
        raise fail(f"type {kind!r} is not one of {', '.join(PARAM_KINDS)}")
    if kind == "categorical":
        choices = spec.get("choices")
        if set(spec) - {"type", "choices"}:
            raise fail("a categorical parameter takes only choices")
        if not isinstance(choices, list) or not choices:
            raise fail("choices must be a non-empty list")
        bad = [c for c in choices if not _fits(setting_type, c)]
        if bad:
            raise fail(f"choice {bad[0]!r} is not a {setting_type or 'plain value'}")
        if len({json.dumps(c) for c in choices}) < len(choices):
            raise fail("a choice is listed twice")
        return Param(name, "categorical", choices=tuple(choices))
    if setting_type not in (None, "int", "float"):
        raise fail(f"a {setting_type} setting takes a list of choices, not a range")
    if kind == "float" and setting_type == "int":
        raise fail('this setting is a whole number: use type = "int" (or a list of choices)')
    if "low" not in spec or "high" not in spec:
        raise fail("a range needs both low and high")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for key, value in (("low", low), ("high", high)):
        if not _is_number(value):
            raise fail(f"{key} must be a number, not {value!r}")
        if kind == "int" and not isinstance(value, int):
            raise fail(f"{key} must be a whole number for type int, not {value!r}")
    if not isinstance(log, bool):
        raise fail(f"log must be true or false, not {log!r}")
    if low >= high:
        raise fail(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise fail(f"a log range needs low > 0 (got {low})")
    if step is not None:
        if not _is_number(step) or step <= 0 or (kind == "int" and not isinstance(step, int)):
            raise fail(f"step must be a positive {'whole ' if kind == 'int' else ''}number, not {step!r}")
        if log:
            raise fail("a range takes either log or step, not both")
    return Param(name, kind, low=low, high=high, log=log, step=step)


def parse_space(data: Any, source: str, base: TrainConfig | None = None) -> Space:
    """A space from a file's parsed contents; every range is checked against what its setting accepts."""
    if not isinstance(data, dict) or not data:
        raise SweepError(
            f"{source}: expected a table of parameters, e.g. learning_rate = {{ low = 1e-5, high = 1e-4, log = true }}"
        )
    params = tuple(parse_param(str(name), spec, source) for name, spec in data.items())
    base = base or TrainConfig()
    for param in params:
        if param.name.startswith(EXTRA_PREFIX):
            continue
        for value in param.bounds():
            problems = apply_values(base, {param.name: value}).validate()
            if param.name in problems:
                raise SweepError(f"{source}: {param.name}: {value!r} is out of range ({problems[param.name]})")
    return Space(params, source)


def load_space(path: str | Path, base: TrainConfig | None = None) -> Space:
    """A space file (.json, or .toml) read and checked."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SweepError(f"{path}: cannot read the space file ({err.strerror or err})") from None
    if path.suffix.lower() == ".toml":
        import tomllib

        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise SweepError(f"{path}: not valid TOML ({err})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise SweepError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    return parse_space(data, str(path), base)


def default_space(base: TrainConfig | None = None) -> Space:
    """The built-in space, less the settings TrainConfig does not have (yet)."""
    types = _setting_types()
    wanted = {k: v for k, v in DEFAULT_SPACE.items() if k not in OPTIONAL_DEFAULTS or k in types}
    return parse_space(wanted, "the built-in space", base)
