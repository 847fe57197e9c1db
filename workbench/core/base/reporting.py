"""Which experiment trackers a config may name, and which of them this Python lacks."""

from __future__ import annotations

import importlib.util

TRACKERS = ("tensorboard", "mlflow", "wandb")


# Either module lets Accelerate's TensorBoard tracker write (the check Accelerate itself makes)
MODULES: dict[str, tuple[str, ...]] = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "mlflow": ("mlflow",),
    "wandb": ("wandb",),
}


def tracker_names(report_to: str) -> list[str]:
    """The trackers REPORT_TO names ("tensorboard, wandb"), lower-cased, each once, in order."""
    return list(dict.fromkeys(name.strip().lower() for name in report_to.split(",") if name.strip()))


def missing_trackers(report_to: str) -> str:
    """What to install for the trackers REPORT_TO names that this Python lacks; "" when none is missing."""
    missing = [
        name
        for name in tracker_names(report_to)
        if name in MODULES and not any(importlib.util.find_spec(module) for module in MODULES[name])
    ]
    if not missing:
        return ""
    verb = "is" if len(missing) == 1 else "are"
    return f"{', '.join(missing)} {verb} not installed: pip install 'cola-workbench[{','.join(missing)}]'"
