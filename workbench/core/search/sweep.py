"""Recipe sweeps on Optuna: a TPE search over TrainConfig settings, pruned on per-epoch validation MCC.

Every trial is an ordinary run folder `<study>-t<number>` (its name in the trial's user
attribute `run`); the objective is the run's best validation MCC, never the holdout. The
study lives in an Optuna storage: SQLite in the runs folder by default, or a shared
PostgreSQL/MySQL URL that several machines join to sweep together (no scheduler of ours).

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
import re
import shutil
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig, sweepable_fields
from workbench.core.base.durable import write_json_atomic
from workbench.core.base.layout import RunError, check_run_name

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
            return trial.suggest_int(self.name, int(self.low or 0), int(self.high or 0), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.name, float(self.low or 0), float(self.high or 0), step=self.step,
                                   log=self.log)

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
    extra = {k[len(EXTRA_PREFIX):]: v for k, v in values.items() if k.startswith(EXTRA_PREFIX)}
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
        raise fail("this setting is a whole number: use type = \"int\" (or a list of choices)")
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
        raise SweepError(f"{source}: expected a table of parameters, e.g. learning_rate = {{ low = 1e-5, high = "
                         "1e-4, log = true }")
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


# ---------------------------------------------------------------- storage

SWEEP_DATABASE = "sweeps.db"


def sweep_database(runs_dir: Path) -> Path:
    """The SQLite file of RUNS_DIR's sweeps (the default storage); it exists once a sweep has run there."""
    return Path(runs_dir).resolve() / SWEEP_DATABASE


def default_storage(runs_dir: Path) -> str:
    """SQLite in the runs folder: embedded, nothing to start. A folder name holding '?' or '#' is
    percent-encoded, else SQLAlchemy would read it as the URL's query or fragment."""
    from urllib.parse import quote

    return f"sqlite:///{quote(sweep_database(runs_dir).as_posix(), safe='/:')}"


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite:/// URL (percent-decoded, query dropped); None for another URL."""
    from urllib.parse import unquote

    if not url.startswith("sqlite:///"):
        return None
    return Path(unquote(url[len("sqlite:///"):].split("?", 1)[0]))


# user:password@ in anything that looks like a URL, parseable or not; password=... in a query
_USERINFO = re.compile(r"(?P<user>[^\s:/@?#]*):(?P<secret>[^\s@/:]*)@")
_QUERY_SECRET = re.compile(r"(?P<key>(?:password|passwd|pwd|secret|token)=)(?P<secret>[^&\s]*)", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/*")  # "postgresql://", and the malformed "postgresql:/"


def password_span(url: str) -> tuple[int, int] | None:
    """Where URL's password lies, (start, end), as its text has it: from the first ':' after the scheme to
    the LAST '@'. So a password holding an '@' (or ':', '/', '%') it should have percent-encoded stays whole,
    where a parser stopping at the first '@' (SQLAlchemy's) cuts it in two and shows the rest as the host.
    None when the URL has no password. An '@' in the query makes the span too long: more is hidden, never less."""
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    at = url.rfind("@")
    if at <= start:
        return None
    colon = url.find(":", start, at)
    return (colon + 1, at) if colon >= 0 else None


def url_secrets(url: str) -> list[str]:
    """The secrets written in URL, longest first: its password as written and percent-decoded, and any
    password=... of its query."""
    from urllib.parse import unquote

    found = [m.group("secret") for m in _QUERY_SECRET.finditer(url)]
    span = password_span(url)
    if span is not None:
        written = url[span[0]:span[1]]
        found += [written, unquote(written)]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """TEXT with every secret of URL (and any user:password@ or password= in it) masked as ***."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    text = _USERINFO.sub(lambda m: f"{m.group('user')}:***@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}***", text)


def safe_url(url: str) -> str:
    """URL with its password hidden, for messages, whatever the URL looks like (`password_span`)."""
    span = password_span(url)
    shown = url if span is None else f"{url[:span[0]]}***{url[span[1]:]}"
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}***", shown)


def check_storage_url(url: str) -> None:
    """SweepError when URL's password holds an '@' left unencoded: a URL parser would read part of the password
    as the host and put it in its errors; the user is told to percent-encode it."""
    span = password_span(url)
    if span is not None and "@" in url[span[0]:span[1]]:
        raise SweepError(f"storage {safe_url(url)}: its password holds an '@', which a URL must write as %40 "
                         "(percent-encode the password: python -c \"import urllib.parse, getpass; "
                         "print(urllib.parse.quote(getpass.getpass(), safe=''))\")")


DRIVER_HINTS = {"postgresql+psycopg": "psycopg", "postgresql": "psycopg2-binary", "mysql+pymysql": "pymysql",
                "mysql": "mysqlclient (or write mysql+pymysql:// and install pymysql)"}


def open_storage(url: str, create: bool = True) -> Any:
    """An Optuna RDB storage at URL; SweepError in one line if it cannot be reached.

    Heartbeats mark the trial of a machine that died as failed, so a shared study never keeps
    a trial running forever."""
    import optuna

    shown = safe_url(url)
    check_storage_url(url)
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.is_file():
            raise SweepError(f"{path}: no sweeps here yet (run `workbench sweep` first, or pass --storage)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SweepError(f"storage {shown}: cannot make its folder ({err.strerror or err})") from None
    engine_kwargs: dict[str, Any] = {}
    if url.startswith(("postgresql", "mysql")):
        engine_kwargs = {"connect_args": {"connect_timeout": 10}}
    try:
        for attempt in range(SCHEMA_RACE_RETRIES):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
                    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=60,
                                                      grace_period=180)
            except Exception as err:  # noqa: BLE001
                # Two processes creating the schema of a new database at once: the second one's CREATE
                # TABLE or its alembic_version row loses the race; by now the tables exist.
                if not _lost_schema_race(err):
                    raise
                if attempt == SCHEMA_RACE_RETRIES - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")
    except ImportError:
        scheme = url.split(":", 1)[0]
        package = DRIVER_HINTS.get(scheme) or DRIVER_HINTS.get(scheme.split("+")[0], "")
        hint = f": pip install {package}" if package else ""
        raise SweepError(f"storage {shown}: its database driver is not installed{hint}") from None
    except Exception as err:  # SQLAlchemy's errors for a bad URL, a refused connection, a bad password
        raise SweepError(f"storage {shown}: cannot open it ({redact(_first_line(err), url)})") from None


SCHEMA_RACE_RETRIES = 5  # opening a new shared database while another process creates its tables
# What losing that race says: PostgreSQL "duplicate key value violates unique constraint" (pg_type),
# "relation ... already exists"; SQLite "UNIQUE constraint failed: alembic_version.version_num",
# "table ... already exists", "database is locked".
SCHEMA_RACE_SIGNS = ("duplicate key", "already exists", "UNIQUE constraint failed", "database is locked")


def _lost_schema_race(err: BaseException) -> bool:
    return any(sign in str(err) for sign in SCHEMA_RACE_SIGNS)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's own log lines off (we report trials ourselves), restored after."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def fixed_settings(base_config: TrainConfig, space: Space) -> dict[str, Any]:
    """The settings every trial of a study shares (all but the searched ones and MACHINE_SETTINGS), as
    a study records and compares them; the data by content digest, so its path may differ by machine."""
    from workbench.core.data.cola import data_digest

    searched = set(space.names)
    # batch_size 0 picks by the epochs: with the epochs fixed, record the batch it picks, so that a study
    # created with batch 32 and one joined with 0 at 8 epochs compare equal (the trials are the same)
    values = (base_config if "epochs" in searched else base_config.resolved()).to_dict()
    fixed = {k: v for k, v in values.items() if k not in searched and k not in MACHINE_SETTINGS and k != "extra"}
    fixed["extra"] = {k: v for k, v in dict(values.get("extra") or {}).items()
                      if f"{EXTRA_PREFIX}{k}" not in searched}
    fixed["data"] = data_digest(base_config.data or None)
    return json.loads(json.dumps(fixed, default=str))


def _differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))


def open_study(study_name: str, storage: Any, space: Space, base_config: TrainConfig | None = None,
               pruner: Any = None, sampler: Any = None) -> Any:
    """Create STUDY_NAME in STORAGE, or join it when it exists with the same SPACE and fixed settings.

    Exactly one process creates a study (the database's unique study name decides) and records its
    space and fixed settings at once; a process that joins waits up to JOIN_WAIT_S for them, then
    compares: another space or other fixed settings is a SweepError naming what differs."""
    import optuna

    try:
        study = optuna.create_study(study_name=study_name, storage=storage, direction="maximize",
                                    load_if_exists=False, sampler=sampler, pruner=pruner)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        except Exception as err:
            raise SweepError(f"study {study_name!r}: cannot load it ({_first_line(err)})") from None
        created = False
    except Exception as err:
        raise SweepError(f"study {study_name!r}: cannot create or load it ({_first_line(err)})") from None
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise SweepError(f"study {study_name!r} exists and minimizes; it is not a workbench sweep")
    wanted = space.to_dict()
    fixed = fixed_settings(base_config, space) if base_config is not None else None
    recorded, recorded_fixed = (None, None) if created else recorded_study(study)
    deadline = time.monotonic() + JOIN_WAIT_S
    while not created and recorded is None and not study.trials and time.monotonic() < deadline:
        time.sleep(0.2)  # the creator records the space right after creating the study
        recorded, recorded_fixed = recorded_study(study)
    if recorded is None:
        if study.trials:
            raise SweepError(f"study {study_name!r} exists without a recorded space; it is not a workbench sweep")
        study.set_user_attr(STUDY_ATTR, {  # one write: a machine joining sees the space and settings, or neither
            SPACE_ATTR: wanted, FIXED_ATTR: fixed,
            "base_config": base_config.to_dict() if base_config is not None else {}})
        return study
    if recorded != wanted:
        raise SweepError(f"study {study_name!r} exists with another space (differs in: "
                         f"{', '.join(_differences(recorded, wanted))}); use the same space or another --study")
    if fixed is not None and recorded_fixed is not None and recorded_fixed != fixed:
        shown = [f"{k} {_short(recorded_fixed.get(k))} there, {_short(fixed.get(k))} here"
                 for k in _differences(recorded_fixed, fixed)]
        raise SweepError(f"study {study_name!r} was created with other fixed settings ({'; '.join(shown)}); "
                         "give the same ones or another --study")
    return study


def recorded_study(study: Any) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The space and fixed settings STUDY was created with (None, None before its creator recorded them);
    a study made before they were recorded together has them as two attributes."""
    attrs = study.user_attrs
    together = attrs.get(STUDY_ATTR)
    if isinstance(together, dict):
        return together.get(SPACE_ATTR), together.get(FIXED_ATTR)
    return attrs.get(SPACE_ATTR), attrs.get(FIXED_ATTR)


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


# ---------------------------------------------------------------- running a sweep

@dataclass
class TrialStart:
    number: int
    run: str
    params: dict[str, Any]


@dataclass
class TrialEnd:
    number: int
    run: str
    state: str  # complete, pruned, failed, stopped
    value: float | None = None
    epochs_done: int = 0
    error: str = ""


TrialCallback = Callable[[TrialStart | TrialEnd], None]


@dataclass
class SweepRun:
    """What one `run_sweep` call did (the study may hold other machines' trials too)."""

    study: str
    storage: str
    trials: list[TrialEnd] = field(default_factory=list)
    stopped: bool = False


def default_pruner() -> Any:
    """Median pruning on per-epoch validation MCC once 3 trials have finished, from epoch 2 on
    (epoch 1 is often still at MCC 0 for good runs as well as bad ones)."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)


def run_sweep(base_config: TrainConfig, trials: int, study_name: str = DEFAULT_STUDY, storage: str | None = None,
              space: Space | None = None, runs_dir: Path | str = "runs",
              on_event: Callable[[Any], None] | None = None, stop: threading.Event | None = None,
              on_trial: TrialCallback | None = None, pruner: Any = None, keep_checkpoints: bool = False,
              sampler_seed: int | None = None, allow_pickle: bool = False) -> SweepRun:
    """Run TRIALS trials of study STUDY_NAME (created, or joined when it exists with the same space).

    Each trial trains `apply_values(BASE_CONFIG, suggested)` into RUNS_DIR/<study>-t<number>,
    reporting each epoch's validation MCC to the pruner; a pruned trial is stopped after that
    epoch. ON_EVENT gets the training events, ON_TRIAL a TrialStart and a TrialEnd per trial.
    STOP ends the sweep at the next batch. Checkpoints of finished (complete or pruned) trials are
    deleted unless KEEP_CHECKPOINTS (a sweep makes many runs; their model/ folders stay); a trial that
    failed or was stopped keeps its checkpoint, so `workbench train --resume` can finish it."""
    import optuna
    import optuna.samplers

    from workbench.core.base.errors import TrainingError
    from workbench.core.training.prepare import check_data
    from workbench.core.training.train import train

    check_run_name(f"{study_name}-t0")
    if trials < 1:
        raise SweepError(f"--trials {trials}: must be at least 1")
    problems = base_config.validate()
    if problems:
        raise SweepError("; ".join(f"--{k.replace('_', '-')}: {v}" for k, v in problems.items()))
    check_data(base_config)
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    space = space or default_space(base_config)
    if not space.params:
        raise SweepError(f"{space.source}: nothing left to search (every parameter is held fixed)")
    storage = storage or default_storage(runs_dir)
    stop = stop or threading.Event()
    outcome = SweepRun(study=study_name, storage=safe_url(storage))
    failures_in_a_row = [0]

    def objective(trial: optuna.Trial) -> float:
        if stop.is_set():
            raise SweepStopped
        values = space.suggest(trial)
        config = apply_values(base_config, values)
        run_name = f"{study_name}-t{trial.number}"
        run_dir = runs_dir / run_name
        trial.set_user_attr("run", run_name)
        trial.set_user_attr("runs_dir", str(runs_dir.resolve()))
        trial.set_user_attr("host", socket.gethostname())
        if (run_dir / "config.json").exists() or (run_dir / "metrics.jsonl").exists():
            raise SweepError(f"{run_dir}: a run already has trial {trial.number}'s name (a study of the same "
                             "name in another storage?); use another --study or --runs")
        if on_trial:
            on_trial(TrialStart(trial.number, run_name, dict(values)))
        trial_stop = threading.Event()
        pruned_at: list[int] = []

        def on_train_event(event: Any) -> None:
            if stop.is_set():
                trial_stop.set()
            if _kind(event) == "epoch":
                epoch, mcc = int(_get(event, "epoch")), float(_get(event, "val_mcc"))
                trial.report(mcc, epoch)
                if trial.should_prune():
                    pruned_at.append(epoch)
                    trial_stop.set()
            if on_event:
                on_event(event)

        def finish(state: str, value: float | None = None, epochs: int = 0, error: str = "") -> None:
            if not keep_checkpoints and state in ("complete", "pruned"):  # finished: nothing to resume
                shutil.rmtree(run_dir / "checkpoint", ignore_errors=True)
            write_json_atomic(run_dir / TRIAL_FILE, {
                "study": study_name, "trial": trial.number, "storage": safe_url(storage), "state": state,
                "value": value, "params": values, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
            end = TrialEnd(trial.number, run_name, state, value, epochs, error)
            outcome.trials.append(end)
            if on_trial:
                on_trial(end)

        try:
            result = train(config, run_dir, on_event=on_train_event, stop=trial_stop, allow_pickle=allow_pickle)
        except TrainingError as err:  # out of memory at this batch size, and the like: this trial only
            if not run_dir.exists():
                raise
            failures_in_a_row[0] += 1
            finish("failed", error=str(err))
            if failures_in_a_row[0] >= MAX_FAILURES_IN_A_ROW:
                raise SweepError(f"{MAX_FAILURES_IN_A_ROW} trials failed in a row; the last: {err}") from None
            raise TrialFailed(str(err)) from None
        if result.status == "done":
            failures_in_a_row[0] = 0
            finish("complete", result.best_val_mcc, result.epochs_done)
            return float(result.best_val_mcc)
        if result.status == "stopped" and pruned_at:
            failures_in_a_row[0] = 0
            finish("pruned", result.best_val_mcc, result.epochs_done)
            raise optuna.TrialPruned(f"validation MCC behind the others at epoch {pruned_at[0]}")
        if result.status == "stopped":
            trial.set_user_attr("stopped", True)
            finish("stopped", None, result.epochs_done)
            raise SweepStopped
        failures_in_a_row[0] += 1
        finish("failed", None, result.epochs_done, result.error)
        raise TrialFailed(result.error)

    def stop_between_trials(study: optuna.Study, _trial: Any) -> None:
        if stop.is_set():
            outcome.stopped = True
            study.stop()

    with _quiet_optuna():
        study = open_study(study_name, open_storage(storage), space, base_config,
                           pruner=pruner if pruner is not None else default_pruner(),
                           sampler=optuna.samplers.TPESampler(seed=sampler_seed))
        if stop.is_set():
            outcome.stopped = True
            return outcome
        try:
            study.optimize(objective, n_trials=trials, catch=(TrialFailed,), gc_after_trial=True,
                           callbacks=[stop_between_trials])
        except SweepStopped:
            outcome.stopped = True
    return outcome


def _kind(event: Any) -> str:
    return str(event.get("kind") if isinstance(event, dict) else getattr(event, "kind", ""))


def _get(event: Any, key: str) -> Any:
    return event[key] if isinstance(event, dict) else getattr(event, key)


# ---------------------------------------------------------------- reading a study back

@dataclass
class TrialRow:
    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    run: str
    epochs_reported: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SweepSummary:
    study: str
    storage: str
    counts: dict[str, int]
    space: dict[str, Any]
    best: TrialRow | None
    top: list[TrialRow]
    importances: dict[str, float]
    importance_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The summary as text lines: `workbench sweep show` prints them, the TUI shows them."""
        counts = ", ".join(f"{n} {state}" for state, n in sorted(self.counts.items()))
        out = [f"study {self.study} ({self.storage}): {sum(self.counts.values())} trials ({counts or 'none'})"]
        if self.best is None:
            return [*out, "no complete trial yet"]
        best = self.best
        out.append(f"best: trial {best.number}, validation MCC {best.value:.3f}, run {best.run}")
        out += [f"  {name:<24} {short_value(value)}" for name, value in best.params.items()]
        if self.importances:
            out.append("parameter importances (Optuna):")
            out += [f"  {name:<24} {value:.3f}" for name, value in self.importances.items()]
        else:
            out.append(self.importance_note)
        names = list(self.space) or sorted({k for row in self.top for k in row.params})
        out.append(f"top {len(self.top)} trials:")
        out.append(f"  {'trial':>5} {'val MCC':>8}  {'run':<20} " + " ".join(f"{n:>14}" for n in names))
        for row in self.top:
            cells = " ".join(f"{short_value(row.params.get(n, '-')):>14}" for n in names)
            out.append(f"  {row.number:>5} {row.value or 0.0:>8.3f}  {row.run:<20} {cells}")
        return out


def short_value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def study_names(storage: str) -> list[str]:
    import optuna

    with _quiet_optuna():
        return sorted(optuna.get_all_study_names(open_storage(storage, create=False)))


def sweep_summary(study_name: str | None, storage: str, top: int = 5) -> SweepSummary:
    """The best trial, Optuna's parameter importances and the TOP trials of a study.

    With no STUDY_NAME: the storage's only study, or the default one."""
    import optuna

    with _quiet_optuna():
        opened = open_storage(storage, create=False)
        names = sorted(optuna.get_all_study_names(opened))
        if study_name is None:
            if not names:
                raise SweepError(f"storage {safe_url(storage)}: no studies yet")
            if len(names) > 1 and DEFAULT_STUDY not in names:
                raise SweepError(f"storage {safe_url(storage)} holds {len(names)} studies ({', '.join(names)}): "
                                 "pick one with --study")
            study_name = names[0] if len(names) == 1 else DEFAULT_STUDY
        if study_name not in names:
            raise SweepError(f"storage {safe_url(storage)}: no study {study_name!r}"
                             + (f" (studies: {', '.join(names)})" if names else ""))
        study = optuna.load_study(study_name=study_name, storage=opened)
        frozen = study.get_trials(deepcopy=False)
        counts: dict[str, int] = {}
        for t in frozen:
            counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
        rows = [_row(t) for t in frozen]
        complete = sorted((r for r in rows if r.state == "complete" and r.value is not None),
                          key=lambda r: -(r.value or 0.0))
        importances, note = _importances(study, len(complete))
        if len({r.value for r in complete}) == 1 and len(complete) > 1:
            importances, note = {}, "no parameter importances: every complete trial has the same value"
        return SweepSummary(study=study_name, storage=safe_url(storage), counts=counts,
                            space=dict(recorded_study(study)[0] or {}), best=complete[0] if complete else None,
                            top=complete[:top], importances=importances, importance_note=note)


def _row(trial: Any) -> TrialRow:
    return TrialRow(number=trial.number, state=trial.state.name.lower(), value=trial.value,
                    params=dict(trial.params), run=str(trial.user_attrs.get("run", "")),
                    epochs_reported=len(trial.intermediate_values))


def _importances(study: Any, complete: int) -> tuple[dict[str, float], str]:
    import optuna

    if complete < 2:
        return {}, f"parameter importances need at least 2 complete trials ({complete} so far)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "importances will be equal" with few trials
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}, ""
    except (RuntimeError, ValueError) as err:  # e.g. no parameter varied among the complete trials
        return {}, f"no parameter importances: {_first_line(err)}"
