"""One study: created with its space and fixed settings recorded in one write, or joined after checking that
the machine joining asks for the same (like with like)."""

from __future__ import annotations

import json
import time
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.search.space import (
    EXTRA_PREFIX,
    FIXED_ATTR,
    JOIN_WAIT_S,
    MACHINE_SETTINGS,
    SPACE_ATTR,
    STUDY_ATTR,
    Space,
    SweepError,
)
from workbench.core.search.storage import first_line


def fixed_settings(base_config: TrainConfig, space: Space) -> dict[str, Any]:
    """The settings every trial of a study shares (all but the searched ones and MACHINE_SETTINGS), as
    a study records and compares them; the data by content digest, so its path may differ by machine."""
    from workbench.core.data.cola import data_digest

    searched = set(space.names)
    # batch_size 0 picks by the epochs: with the epochs fixed, record the batch it picks, so that a study
    # created with batch 32 and one joined with 0 at 8 epochs compare equal (the trials are the same)
    values = (base_config if "epochs" in searched else base_config.resolved()).to_dict()
    fixed = {k: v for k, v in values.items() if k not in searched and k not in MACHINE_SETTINGS and k != "extra"}
    fixed["extra"] = {k: v for k, v in dict(values.get("extra") or {}).items() if f"{EXTRA_PREFIX}{k}" not in searched}
    fixed["data"] = data_digest(base_config.data or None)
    return json.loads(json.dumps(fixed, default=str))


def _differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))


def open_study(
    study_name: str,
    storage: Any,
    space: Space,
    base_config: TrainConfig | None = None,
    pruner: Any = None,
    sampler: Any = None,
) -> Any:
    """Create STUDY_NAME in STORAGE, or join it when it exists with the same SPACE and fixed settings.

    Exactly one process creates a study (the database's unique study name decides) and records its
    space and fixed settings at once; a process that joins waits up to JOIN_WAIT_S for them, then
    compares: another space or other fixed settings is a SweepError naming what differs."""
    import optuna

    try:
        study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            direction="maximize",
            load_if_exists=False,
            sampler=sampler,
            pruner=pruner,
        )
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        try:
            study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        except Exception as err:
            raise SweepError(f"study {study_name!r}: cannot load it ({first_line(err)})") from None
        created = False
    except Exception as err:
        raise SweepError(f"study {study_name!r}: cannot create or load it ({first_line(err)})") from None
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
        study.set_user_attr(
            STUDY_ATTR,
            {  # one write: a machine joining sees the space and settings, or neither
                SPACE_ATTR: wanted,
                FIXED_ATTR: fixed,
                "base_config": base_config.to_dict() if base_config is not None else {},
            },
        )
        return study
    if recorded != wanted:
        raise SweepError(
            f"study {study_name!r} exists with another space (differs in: "
            f"{', '.join(_differences(recorded, wanted))}); use the same space or another --study"
        )
    if fixed is not None and recorded_fixed is not None and recorded_fixed != fixed:
        shown = [
            f"{k} {_short(recorded_fixed.get(k))} there, {_short(fixed.get(k))} here"
            for k in _differences(recorded_fixed, fixed)
        ]
        raise SweepError(
            f"study {study_name!r} was created with other fixed settings ({'; '.join(shown)}); "
            "give the same ones or another --study"
        )
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
