"""Model soups (Wortsman et al. 2022): the weights of several fine-tuned runs averaged into one model.

`make_soup(runs_dir, members, name, greedy=...)` writes an ordinary run folder: config.json (the
first member's recipe, with the soup's members in `extra.soup`), model/ (a save_pretrained
folder that `pipeline()` loads), eval.json with validation, in_domain_dev and holdout like a
trained run's, and a metrics.jsonl whose end event says it is done, so `workbench runs`, `eval`,
`predict` and `open` take it as any run.

Averaging only makes sense between models fine-tuned from one starting point: the same base
model and architecture (every tensor of the same name and shape) and the same classifier head
initialisation (`TrainConfig.head_seed`; train a group with `--head-seed` to share one). Members
that differ are refused with one line.

Each member's saved model carries its calibrated decision threshold folded into the classifier's
bias (core/evaluation/threshold.py); the fold is undone before averaging (the averaged biases
would otherwise average thresholds chosen for other models), and the soup is calibrated afresh
on validation. Uniform: all members. Greedy: members in order of their validation MCC, each kept
only if the soup's validation MCC (at 0.5, before calibration) does not drop.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.core.base.config import TrainConfig
from workbench.core.base.layout import SOUP_KEY, RunError, check_run_name, model_folder, run_path
from workbench.core.runs.status import run_info

Progress = Callable[[str], None]


class SoupError(RunError):
    """Members that cannot be averaged (other architectures or head inits, no model), or a name taken."""


@dataclass
class Member:
    run: str
    path: Path
    model_dir: Path
    config: TrainConfig
    val_mcc: float | None  # the run's best validation MCC, as its epochs recorded it
    threshold: float = 0.5  # folded into its saved model


@dataclass
class SoupResult:
    run_dir: Path
    members: list[str]  # every member considered, best on validation first
    kept: list[str]  # those averaged
    greedy: bool
    val_mcc_steps: list[tuple[str, float, bool]] = field(default_factory=list)  # greedy: (member, soup MCC, kept)
    final: dict[str, Any] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [
            f"soup {self.run_dir.name}: {'greedy' if self.greedy else 'uniform'} average of "
            f"{len(self.kept)} of {len(self.members)} member(s): {', '.join(self.kept)}"
        ]
        for run, mcc, kept in self.val_mcc_steps:
            out.append(f"  + {run}: validation MCC {mcc:.3f} ({'kept' if kept else 'dropped'})")
        for key, label in (("validation", "validation"), ("in_domain_dev", "in_domain_dev"), ("holdout", "holdout")):
            if key in self.final:
                out.append(f"  {label:<14} MCC {self.final[key]:.3f}")
        if "decision_threshold" in self.final:
            out.append(f"  decision threshold {self.final['decision_threshold']:.3f} (chosen on validation)")
        out.append(f"model: {self.run_dir / 'model'}")
        return out


# ---------------------------------------------------------------- members


def read_members(runs_dir: Path, names: Sequence[str]) -> list[Member]:
    """The runs NAMES (ids or folders) as soup members; SoupError names the first that cannot be one."""
    if len(names) < 2:
        raise SoupError("a soup needs at least two runs")
    members, seen = [], set()
    for name in names:
        path = run_path(Path(runs_dir), name)
        if path.resolve() in seen:
            raise SoupError(f"{path}: given twice")
        seen.add(path.resolve())
        if not (path / "config.json").is_file():
            raise SoupError(f"{path}: not a run folder (no config.json)")
        model_dir = model_folder(path)
        info = run_info(path)
        if info.status in ("running", "new"):
            raise SoupError(f"{path}: still {info.status}; a soup takes finished runs")
        config = TrainConfig.load(path / "config.json")
        members.append(Member(run=path.name, path=path, model_dir=model_dir, config=config, val_mcc=info.best_val_mcc))
    return members


def unfolded_model(model_dir: Path) -> tuple[Any, float]:
    """The model saved in MODEL_DIR with its folded calibration (decision threshold and temperature)
    taken out of the classifier (the weights as trained), and that threshold (0.5 when none was folded)."""
    from workbench.core.evaluation.threshold import model_temperature, model_threshold, set_calibration
    from workbench.core.model.loading import load_model

    model = load_model(str(model_dir))
    threshold = model_threshold(model)
    if threshold != 0.5 or model_temperature(model) != 1.0:
        set_calibration(model, 0.5, 1.0)  # z' = z: the classifier as trained
    for name in ("decision_threshold", "calibration_temperature"):
        if hasattr(model.config, name):
            delattr(model.config, name)
    return model, threshold


def check_compatible(members: Sequence[Member], states: Sequence[dict[str, Any]]) -> None:
    """SoupError, one line, unless every member has the first one's tensors (names, shapes, types) and
    its classifier head initialisation (same base model, same head seed)."""
    first, reference = members[0], states[0]
    for member, state in zip(members[1:], states[1:], strict=True):
        missing = sorted(set(reference) ^ set(state))
        if missing:
            raise SoupError(
                f"{member.run}: another architecture than {first.run} (tensor {missing[0]!r} is in "
                "one and not the other); a soup averages models of one architecture"
            )
        for key, tensor in reference.items():
            other = state[key]
            if tuple(other.shape) != tuple(tensor.shape) or other.dtype != tensor.dtype:
                raise SoupError(
                    f"{member.run}: tensor {key!r} is {tuple(other.shape)} {other.dtype}, "
                    f"{tuple(tensor.shape)} {tensor.dtype} in {first.run}; a soup averages models of "
                    "one architecture"
                )
        if member.config.model != first.config.model:
            raise SoupError(
                f"{member.run}: fine-tuned from {member.config.model}, {first.run} from "
                f"{first.config.model}; a soup averages models fine-tuned from one starting point"
            )
        if member.config.effective_head_seed != first.config.effective_head_seed:
            raise SoupError(
                f"{member.run}: its classifier head was initialised with seed "
                f"{member.config.effective_head_seed}, {first.run}'s with "
                f"{first.config.effective_head_seed}; averaging needs one head init (train the "
                "group with --head-seed N)"
            )


def average_states(states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The element-wise mean of STATES' floating-point tensors (in float64, then their own type);
    other tensors (integer buffers such as position ids) must be equal and are taken as they are."""
    import torch

    out: dict[str, Any] = {}
    for key, tensor in states[0].items():
        if tensor.is_floating_point():
            total = torch.zeros(tensor.shape, dtype=torch.float64)
            for state in states:
                total += state[key].to(torch.float64)
            out[key] = (total / len(states)).to(tensor.dtype)
        else:
            if any(not torch.equal(state[key], tensor) for state in states[1:]):
                raise SoupError(f"tensor {key!r} (not floating point) differs between members; cannot average it")
            out[key] = tensor.clone()
    return out


# ---------------------------------------------------------------- the soup


def validation_mcc(model: Any, tokenizer: Any, config: TrainConfig) -> float:
    """MODEL's MCC on CONFIG's validation split, at its argmax."""
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.evaluate import compute_metrics, logits_for

    frame = load_cola(config.data or None, config.validation_fraction, config.split_seed)["validation"]
    logits = logits_for(model, tokenizer, frame["sentence"].tolist(), config.max_length, config.eval_batch_size)
    return float(compute_metrics(frame["label"].tolist(), logits.argmax(-1).tolist())["mcc"])


def make_soup(
    runs_dir: Path | str, names: Sequence[str], name: str, greedy: bool = False, progress: Progress | None = None
) -> SoupResult:
    """Average the models of runs NAMES into a new run folder NAME in RUNS_DIR (see the module's doc)."""
    from workbench.core.model.loading import load_tokenizer

    say = progress or (lambda _text: None)
    runs_dir = Path(runs_dir)
    target = runs_dir / check_run_name(name)
    if target.exists():
        raise SoupError(f"{target}: already exists; pick another --name")
    members = read_members(runs_dir, names)
    if len({(m.config.data, m.config.validation_fraction, m.config.split_seed) for m in members}) > 1:
        raise SoupError(
            f"{members[0].run} and another member were validated on different data or splits; "
            "a soup is chosen and calibrated on one validation split"
        )
    say(f"reading {len(members)} models")
    models = []
    for member in members:
        model, member.threshold = unfolded_model(member.model_dir)
        models.append(model)
    # copies, not views: the soup's model (one of these) is loaded over and over
    states = [{k: v.detach().cpu().clone() for k, v in model.state_dict().items()} for model in models]
    check_compatible(members, states)

    def recorded_mcc(i: int) -> float:
        mcc = members[i].val_mcc
        return mcc if mcc is not None else -2.0

    order = sorted(range(len(members)), key=lambda i: -recorded_mcc(i))
    members = [members[i] for i in order]
    states = [states[i] for i in order]
    soup_model = models[order[0]]
    del models
    config = members[0].config
    tokenizer = load_tokenizer(str(members[0].model_dir))

    steps: list[tuple[str, float, bool]] = []
    if greedy:
        kept = [0]
        soup_model.load_state_dict(states[0])
        best = validation_mcc(soup_model, tokenizer, config)
        steps.append((members[0].run, best, True))
        say(f"{members[0].run}: validation MCC {best:.3f}")
        for index in range(1, len(members)):
            soup_model.load_state_dict(average_states([states[i] for i in [*kept, index]]))
            mcc = validation_mcc(soup_model, tokenizer, config)
            keep = mcc >= best
            steps.append((members[index].run, mcc, keep))
            say(f"+ {members[index].run}: validation MCC {mcc:.3f} ({'kept' if keep else 'dropped'})")
            if keep:
                kept.append(index)
                best = mcc
    else:
        kept = list(range(len(members)))
    soup_model.load_state_dict(average_states([states[i] for i in kept]))
    kept_names = [members[i].run for i in kept]
    record = {
        "members": [m.run for m in members],
        "kept": kept_names,
        "greedy": greedy,
        "member_thresholds": {m.run: m.threshold for m in members},
        "member_val_mcc": {m.run: m.val_mcc for m in members},
        "greedy_steps": [{"run": run, "val_mcc": mcc, "kept": keep} for run, mcc, keep in steps],
    }
    say("writing the soup's folder")
    final = _write_run(target, replace(config, extra={**config.extra, SOUP_KEY: record}), soup_model, tokenizer, say)
    return SoupResult(
        run_dir=target,
        members=[m.run for m in members],
        kept=kept_names,
        greedy=greedy,
        val_mcc_steps=steps,
        final=final,
    )


def _write_run(target: Path, config: TrainConfig, model: Any, tokenizer: Any, say: Progress) -> dict[str, Any]:
    """The soup's run folder, calibrated and evaluated like a trained run's; removed again if any step fails."""
    from workbench.core.base.events import EndEvent, LogEvent, now
    from workbench.core.data.cola import load_cola
    from workbench.core.evaluation.calibration import calibrate_run
    from workbench.core.evaluation.evaluate import evaluate_frame, record_report
    from workbench.core.model.loading import load_model
    from workbench.core.runs.metrics import MetricsWriter
    from workbench.core.training.checkpoint import save_model

    target.mkdir(parents=True)
    try:
        config.save(target / "config.json")
        save_model(target, model, tokenizer)
        choice = calibrate_run(target, config)
        final: dict[str, Any] = {}
        if choice is not None:
            final["decision_threshold"] = choice.threshold
            say(choice.summary())
        calibrated = load_model(str(target / "model"))
        cola = load_cola(config.data or None, config.validation_fraction, config.split_seed)
        for split in ("validation", "in_domain_dev", "holdout"):
            report = evaluate_frame(
                calibrated, tokenizer, cola[split], split, config.max_length, config.eval_batch_size
            )
            record_report(target, report)
            final[split] = report.mcc
            say(f"{split}: MCC {report.mcc:.3f}")
        writer = MetricsWriter(target / "metrics.jsonl")
        try:
            soup = config.extra[SOUP_KEY]
            writer.write(
                dict(
                    LogEvent(
                        kind="log",
                        time=now(),
                        message=(f"soup ({'greedy' if soup['greedy'] else 'uniform'}) of {', '.join(soup['kept'])}"),
                    )
                )
            )
            if choice is not None:
                writer.write(dict(LogEvent(kind="log", time=now(), message=choice.summary())))
            end = EndEvent(
                kind="end",
                time=now(),
                status="done",
                holdout_mcc=final["holdout"],
                in_domain_dev_mcc=final["in_domain_dev"],
            )
            if "decision_threshold" in final:
                end["decision_threshold"] = final["decision_threshold"]
            writer.write(dict(end))
        finally:
            writer.close()
        return final
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # no half-made soup left to be mistaken for a run
        raise
