"""Seed groups: one recipe trained with several seeds, summarised by median, min and max.

A group is `runs/<group>/group.json` naming its members; each member is an ordinary run
folder `runs/<group>-s<seed>`. The group's model is the member best on validation (never
chosen on in_domain_dev or the holdout).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from workbench.core.base.config import SEED_MAX, TrainConfig
from workbench.core.base.durable import write_json_atomic
from workbench.core.base.layout import RunError, check_run_name, is_run_folder
from workbench.core.runs.status import run_info

GROUP_FILE = "group.json"
EventCallback = Callable[[Any], None]  # as train's on_event


class GroupError(RunError):
    """A seed group that cannot be made or read (bad seeds, name taken, no such group)."""


def parse_seeds(text: str) -> list[int]:
    """'42,43,44' as [42, 43, 44]; GroupError names what is wrong."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            seed = int(part)
        except ValueError:
            raise GroupError(f"--seeds {text!r}: {part!r} is not a whole number (write e.g. 42,43,44)") from None
        if not 0 <= seed <= SEED_MAX:
            raise GroupError(f"--seeds {text!r}: seeds must be between 0 and {SEED_MAX} (2**32 - 1)")
        if seed in seeds:
            raise GroupError(f"--seeds {text!r}: seed {seed} is given twice")
        seeds.append(seed)
    if not seeds:
        raise GroupError("--seeds: give at least one seed, e.g. 42,43,44")
    return seeds


def member_name(group: str, seed: int) -> str:
    return f"{group}-s{seed}"


@dataclass
class Spread:
    """Median, min and max of one figure over the members that have it."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float | None]) -> Spread | None:
        present = [float(v) for v in values if v is not None]
        if not present:
            return None
        return cls(median=statistics.median(present), min=min(present), max=max(present), n=len(present))


@dataclass
class MemberSummary:
    run: str
    seed: int
    path: Path
    status: str  # as runs.run_info: new, running, stopped, done, failed (missing: never started)
    best_val_mcc: float | None = None
    in_domain_dev_mcc: float | None = None
    holdout_mcc: float | None = None


@dataclass
class GroupSummary:
    group: str
    path: Path
    config: dict[str, Any]
    members: list[MemberSummary]
    validation: Spread | None = None
    in_domain_dev: Spread | None = None
    holdout: Spread | None = None
    best: MemberSummary | None = None  # the group's model: the member best on validation
    created: str = ""
    kind: str = "seeds"  # or "folds": the fold runs of `data issues` (core/search/out_of_fold.py), no group model

    @property
    def model_dir(self) -> Path | None:
        return self.best.path / "model" if self.best is not None else None

    def lines(self) -> list[str]:
        """The group as text lines: `workbench runs` and `train --seeds` print them, the TUI shows them."""
        done = sum(1 for m in self.members if m.status == "done")
        what = "folds of `data issues`" if self.kind == "folds" else "seeds"
        out = [
            f"group {self.group}: {done}/{len(self.members)} {what} done ({', '.join(m.run for m in self.members)})",
            f"  {'MCC':<14} {'median':>7} {'min':>7} {'max':>7}",
        ]
        for label, spread in (
            ("validation", self.validation),
            ("in_domain_dev", self.in_domain_dev),
            ("holdout", self.holdout),
        ):
            if spread is None:
                out.append(f"  {label:<14} {'-':>7}")
            else:
                out.append(
                    f"  {label:<14} {spread.median:>7.3f} {spread.min:>7.3f} {spread.max:>7.3f}"
                    + (f"  ({spread.n} of {len(self.members)})" if spread.n < len(self.members) else "")
                )
        if self.best is not None:
            out.append(f"group model (best on validation): {self.best.run}: {self.model_dir}")
        return out


def group_dir(runs_dir: Path, group: str) -> Path:
    return Path(runs_dir) / check_run_name(group)


def is_group(folder: Path) -> bool:
    return (folder / GROUP_FILE).is_file()


def list_groups(runs_dir: Path) -> list[str]:
    """Names of the seed groups in RUNS_DIR, sorted."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return sorted(p.name for p in runs_dir.iterdir() if p.is_dir() and is_group(p))


def read_group(runs_dir: Path, group: str) -> dict[str, Any]:
    path = group_dir(runs_dir, group) / GROUP_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GroupError(f"{path.parent}: no such seed group (no {GROUP_FILE})") from None
    except (OSError, json.JSONDecodeError) as err:
        raise GroupError(f"{path}: cannot read it ({err})") from None
    if not isinstance(record, dict) or not isinstance(record.get("members"), list):
        raise GroupError(f"{path}: not a seed group record (no members list)")
    return record


def create_group(runs_dir: Path, group: str, config: TrainConfig, seeds: Sequence[int]) -> Path:
    """Write runs/<group>/group.json for CONFIG trained with SEEDS; refuses names already taken."""
    folder = group_dir(runs_dir, group)
    members = [check_run_name(member_name(group, seed)) for seed in seeds]
    if folder.exists():
        raise GroupError(f"{folder}: already exists; pick another --name")
    taken = [name for name in members if (Path(runs_dir) / name).exists()]
    if taken:
        raise GroupError(f"{Path(runs_dir) / taken[0]}: a run already has this member's name; pick another --name")
    folder.mkdir(parents=True)
    write_json_atomic(
        folder / GROUP_FILE,
        {
            "group": group,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "seeds": list(seeds),
            "members": [{"run": name, "seed": seed} for name, seed in zip(members, seeds, strict=True)],
            "config": {k: v for k, v in config.to_dict().items() if k != "seed"},
        },
    )
    return folder


def _eval_mcc(run_dir: Path, dataset: str) -> float | None:
    try:
        report = json.loads((run_dir / "eval.json").read_text(encoding="utf-8"))
        value = report.get(dataset, {}).get("mcc")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def group_summary(runs_dir: Path, group: str) -> GroupSummary:
    """Median, min and max of best validation, in_domain_dev and holdout MCC over a group's members,
    and its best member on validation."""
    runs_dir = Path(runs_dir)
    record = read_group(runs_dir, group)
    members = []
    for entry in record["members"]:
        path = runs_dir / str(entry["run"])
        if is_run_folder(path):
            info = run_info(path)
            members.append(
                MemberSummary(
                    run=info.id,
                    seed=int(entry["seed"]),
                    path=path,
                    status=info.status,
                    best_val_mcc=info.best_val_mcc,
                    in_domain_dev_mcc=_eval_mcc(path, "in_domain_dev"),
                    holdout_mcc=info.holdout_mcc,
                )
            )
        else:
            members.append(MemberSummary(run=str(entry["run"]), seed=int(entry["seed"]), path=path, status="missing"))
    kind = str(record.get("kind") or "seeds")
    # a fold run trained on part of the data: none is the group's model
    scored = [m for m in members if m.best_val_mcc is not None and (m.path / "model").is_dir() and kind == "seeds"]
    best = max(scored, key=lambda m: m.best_val_mcc or 0.0, default=None)
    return GroupSummary(
        group=group,
        path=group_dir(runs_dir, group),
        config=dict(record.get("config", {})),
        members=members,
        best=best,
        created=str(record.get("created", "")),
        kind=kind,
        validation=Spread.of([m.best_val_mcc for m in members]),
        in_domain_dev=Spread.of([m.in_domain_dev_mcc for m in members]),
        holdout=Spread.of([m.holdout_mcc for m in members]),
    )


def train_seeds(
    config: TrainConfig,
    seeds: Sequence[int],
    runs_dir: Path,
    name: str,
    on_event: EventCallback | None = None,
    stop: threading.Event | None = None,
    allow_pickle: bool = False,
) -> GroupSummary:
    """Train CONFIG once per seed, one after the other, as the members of group NAME.

    Stops after the member that STOP interrupted (its checkpoint is kept; resume it as any run).
    Training problems (TrainingError) propagate as from `train`."""
    from workbench.core.training.prepare import check_data
    from workbench.core.training.train import train

    stop = stop or threading.Event()
    problems = config.validate()
    if problems:
        raise GroupError("; ".join(f"{k}: {v}" for k, v in problems.items()))
    runs_dir = Path(runs_dir)
    check_data(config, runs_dir=runs_dir)  # a bad data file or map stops here, before the group folder is made
    create_group(runs_dir, name, config, seeds)
    for seed in seeds:
        if stop.is_set():
            break
        result = train(
            replace(config, seed=seed),
            runs_dir / member_name(name, seed),
            on_event=on_event,
            stop=stop,
            allow_pickle=allow_pickle,
        )
        if result.status == "stopped":
            break
    return group_summary(runs_dir, name)
