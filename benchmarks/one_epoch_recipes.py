"""1-epoch recipes x seeds 42, 43, 44, one after another on the embedded model and the bundled CoLA; one JSON
line per run: validation MCC at the calibrated threshold (what a choice may use), in_domain_dev and holdout MCC.

    python benchmarks/one_epoch_recipes.py default= head10=head_lr_multiplier=10.0 lr2e-4=learning_rate=2e-4

Each argument is NAME=OVERRIDES (TrainConfig keyword arguments, comma-separated). Output of the run in
benchmarks/recipe_search.md: benchmarks/results/one_epoch_recipes_xeon.jsonl."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.training.train import train


def one_run(overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    logs: list[str] = []
    started = time.time()
    result = train(
        TrainConfig(epochs=1, seed=seed, **overrides),
        tempfile.mkdtemp() + "/run",
        on_event=lambda event: logs.append(event["message"]) if event.get("kind") == "log" else None,
    )
    calibration = [line for line in logs if line.startswith("calibration")]
    validation = calibration[0].split("Validation: MCC ")[1].split(" ")[0] if calibration else "?"
    final = result.final
    dev = round(final.get("in_domain_dev_mcc", float("nan")), 3)
    return {
        "seed": seed,
        "val_mcc_calibrated": validation,
        "dev": dev,
        "holdout": round(final.get("holdout_mcc", float("nan")), 3),
        "s": round(time.time() - started),
    }


def main() -> None:
    recipes = {name: eval("dict(" + spec + ")") for name, spec in (arg.split("=", 1) for arg in sys.argv[1:])}  # noqa: S307
    for name, overrides in recipes.items():
        for seed in (42, 43, 44):
            print(json.dumps({"recipe": name, **one_run(overrides, seed)}), flush=True)


if __name__ == "__main__":
    main()
