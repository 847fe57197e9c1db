"""Runs side by side: the settings that differ and their validation curves."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig, format_setting
from workbench.core.base.layout import RunError, is_run_folder
from workbench.core.runs.metrics import RunCurves, run_curves
from workbench.core.runs.status import RunInfo, run_info


def differing_settings(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The config keys whose values are not the same in all CONFIGS, sorted."""
    keys = sorted({key for config in configs for key in config})
    return [key for key in keys if len({json.dumps(c.get(key), sort_keys=True) for c in configs}) > 1]


@dataclass
class RunComparison:
    """Runs side by side: the settings that differ, validation MCC per epoch, the scores."""

    runs: list[RunInfo]
    differing: list[str]
    curves: list[RunCurves]

    def warnings(self) -> list[str]:
        """What makes the figures side by side not comparable: validation MCCs measured on
        different validation splits (another data, split seed or validation fraction)."""
        defaults = TrainConfig()
        splits = {
            info.id: tuple(
                info.config.get(key, getattr(defaults, key)) for key in ("data", "split_seed", "validation_fraction")
            )
            for info in self.runs
        }
        if len(set(splits.values())) < 2:
            return []
        which = ", ".join(
            f"{run_id}: split_seed {split[1]}, validation {format_setting(split[2])}"
            + (f", data {split[0]}" if split[0] else "")
            for run_id, split in splits.items()
        )
        return [
            f"WARNING: validation MCCs come from different validation sets ({which}): they are not "
            "comparable side by side; compare the holdout MCC (the same sentences for every split seed)"
        ]

    def rows(self) -> list[tuple[str, list[str]]]:
        """(label, one cell per run) for a table: differing settings, val MCC per epoch, scores."""
        rows = [(key, [format_setting(info.config.get(key, "-")) for info in self.runs]) for key in self.differing]
        for epoch in range(max((len(c.epochs) for c in self.curves), default=0)):
            rows.append(
                (
                    f"val MCC epoch {epoch + 1}",
                    [f"{c.epochs[epoch]['val_mcc']:.3f}" if epoch < len(c.epochs) else "-" for c in self.curves],
                )
            )
        for label, attr in (("best val MCC", "best_val_mcc"), ("holdout MCC", "holdout_mcc")):
            values = [getattr(info, attr) for info in self.runs]
            rows.append((label, [f"{v:.3f}" if v is not None else "-" for v in values]))
        return rows


def compare_runs(run_dirs: Sequence[Path]) -> RunComparison:
    for run_dir in run_dirs:
        if not is_run_folder(run_dir):
            raise RunError(f"{run_dir}: no such run")
    infos = [run_info(run_dir) for run_dir in run_dirs]
    return RunComparison(infos, differing_settings([i.config for i in infos]), [run_curves(d) for d in run_dirs])
