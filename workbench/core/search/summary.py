"""Reading a study back: its trials, the best ones, the settings' importances (`workbench sweep show`)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

from workbench.core.search.space import DEFAULT_STUDY, SweepError
from workbench.core.search.storage import first_line, open_storage, quiet_optuna, safe_url
from workbench.core.search.study import recorded_study


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

    with quiet_optuna():
        return sorted(optuna.get_all_study_names(open_storage(storage, create=False)))


def sweep_summary(study_name: str | None, storage: str, top: int = 5) -> SweepSummary:
    """The best trial, Optuna's parameter importances and the TOP trials of a study.

    With no STUDY_NAME: the storage's only study, or the default one."""
    import optuna

    with quiet_optuna():
        opened = open_storage(storage, create=False)
        names = sorted(optuna.get_all_study_names(opened))
        if study_name is None:
            if not names:
                raise SweepError(f"storage {safe_url(storage)}: no studies yet")
            if len(names) > 1 and DEFAULT_STUDY not in names:
                raise SweepError(
                    f"storage {safe_url(storage)} holds {len(names)} studies ({', '.join(names)}): "
                    "pick one with --study"
                )
            study_name = names[0] if len(names) == 1 else DEFAULT_STUDY
        if study_name not in names:
            raise SweepError(
                f"storage {safe_url(storage)}: no study {study_name!r}"
                + (f" (studies: {', '.join(names)})" if names else "")
            )
        study = optuna.load_study(study_name=study_name, storage=opened)
        frozen = study.get_trials(deepcopy=False)
        counts: dict[str, int] = {}
        for t in frozen:
            counts[t.state.name.lower()] = counts.get(t.state.name.lower(), 0) + 1
        rows = [_row(t) for t in frozen]
        complete = sorted(
            (r for r in rows if r.state == "complete" and r.value is not None), key=lambda r: -(r.value or 0.0)
        )
        importances, note = _importances(study, len(complete))
        if len({r.value for r in complete}) == 1 and len(complete) > 1:
            importances, note = {}, "no parameter importances: every complete trial has the same value"
        return SweepSummary(
            study=study_name,
            storage=safe_url(storage),
            counts=counts,
            space=dict(recorded_study(study)[0] or {}),
            best=complete[0] if complete else None,
            top=complete[:top],
            importances=importances,
            importance_note=note,
        )


def _row(trial: Any) -> TrialRow:
    return TrialRow(
        number=trial.number,
        state=trial.state.name.lower(),
        value=trial.value,
        params=dict(trial.params),
        run=str(trial.user_attrs.get("run", "")),
        epochs_reported=len(trial.intermediate_values),
    )


def _importances(study: Any, complete: int) -> tuple[dict[str, float], str]:
    import optuna

    if complete < 2:
        return {}, f"parameter importances need at least 2 complete trials ({complete} so far)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "importances will be equal" with few trials
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}, ""
    except (RuntimeError, ValueError) as err:  # e.g. no parameter varied among the complete trials
        return {}, f"no parameter importances: {first_line(err)}"
