"""Two runs' maps of the training data side by side (`workbench diff A B --map`): how the sentences both
trained on moved between regions, and which moved most. A run trained with label overrides or on part of
the map keeps its own map of what it trained on; sentences are matched by their line in the data file and
their text, so a dropped sentence counts as A's only, and a flipped one is compared with the label each run
trained it with (its confidence is p(that label))."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.core.explore.cartography import TrainingMap
from workbench.core.runs.dynamics import REGIONS


@dataclass
class MapMove:
    """A sentence of both maps: its line and text, the label each run trained it with, its region and
    confidence in each."""

    line: int
    sentence: str
    label_a: int
    label_b: int
    region_a: str
    region_b: str
    confidence_a: float
    confidence_b: float

    @property
    def change(self) -> float:
        return self.confidence_b - self.confidence_a

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "change": self.change}


@dataclass
class MapDiff:
    """The maps of runs A and B over the sentences both recorded (`shared`); `moves[a][b]`: how many went from
    region a in A to region b in B; `only_a`, `only_b`: recorded sentences of one map only (dropped, or another
    subset); `moved`: the shared sentences, the largest change of confidence first."""

    a: str
    b: str
    epochs_a: int
    epochs_b: int
    shared: int
    only_a: int
    only_b: int
    relabelled: int  # shared sentences that the two runs trained with different labels
    moves: dict[str, dict[str, int]]
    mean_confidence_a: float
    mean_confidence_b: float
    moved: list[MapMove] = field(default_factory=list)

    def counts_a(self) -> dict[str, int]:
        return {region: sum(self.moves[region].values()) for region in REGIONS}

    def counts_b(self) -> dict[str, int]:
        return {region: sum(self.moves[a][region] for a in REGIONS) for region in REGIONS}

    def to_dict(self, limit: int = 0) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "epochs_a": self.epochs_a,
            "epochs_b": self.epochs_b,
            "shared": self.shared,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "relabelled": self.relabelled,
            "moves": self.moves,
            "mean_confidence_a": self.mean_confidence_a,
            "mean_confidence_b": self.mean_confidence_b,
            "moved": [m.to_dict() for m in (self.moved[:limit] if limit else self.moved)],
        }


def _recorded(training_map: TrainingMap) -> pd.DataFrame:
    table = training_map.table
    return table[table["epochs"] > 0][["line", "sentence", "label", "confidence", "region"]]


def compare_maps(map_a: TrainingMap, map_b: TrainingMap) -> MapDiff:
    """A's map against B's over the sentences both recorded (same line, same text). ValueError when they share
    none (other data)."""
    a, b = _recorded(map_a), _recorded(map_b)
    both = a.merge(b, on=["line", "sentence"], suffixes=("_a", "_b"))
    if both.empty:
        raise ValueError("the two maps share no training sentence (another data file?)")
    moves = {
        ra: {rb: int(((both["region_a"] == ra) & (both["region_b"] == rb)).sum()) for rb in REGIONS} for ra in REGIONS
    }
    change = both["confidence_b"] - both["confidence_a"]
    order = np.argsort(-np.abs(change.to_numpy()), kind="stable")
    moved = [
        MapMove(
            line=int(r.line),
            sentence=str(r.sentence),
            label_a=int(r.label_a),
            label_b=int(r.label_b),
            region_a=str(r.region_a),
            region_b=str(r.region_b),
            confidence_a=float(r.confidence_a),
            confidence_b=float(r.confidence_b),
        )
        for r in both.iloc[order].itertuples()
    ]
    return MapDiff(
        a=map_a.run_dir.name,
        b=map_b.run_dir.name,
        epochs_a=map_a.epochs,
        epochs_b=map_b.epochs,
        shared=len(both),
        only_a=len(a) - len(both),
        only_b=len(b) - len(both),
        relabelled=int((both["label_a"] != both["label_b"]).sum()),
        moves=moves,
        mean_confidence_a=float(both["confidence_a"].mean()),
        mean_confidence_b=float(both["confidence_b"].mean()),
        moved=moved,
    )


def format_map_diff(diff: MapDiff, limit: int) -> list[str]:
    """The diff in at most 80 columns: the counts, the table of moves, the sentences that moved most."""
    lines = [
        f"maps of the training data: {diff.a} ({diff.epochs_a} epochs) → {diff.b} ({diff.epochs_b} epochs)",
        f"{diff.shared} sentences in both; {diff.only_a} in {diff.a}'s only, {diff.only_b} in {diff.b}'s only"
        + (f"; {diff.relabelled} trained with another label" if diff.relabelled else ""),
        f"mean confidence over them: {diff.mean_confidence_a:.3f} → {diff.mean_confidence_b:.3f}",
        "",
        f"{'region in A ↓ / in B →':<24}" + "".join(f"{region:>10}" for region in REGIONS) + f"{'in A':>10}",
    ]
    counts_a = diff.counts_a()
    for ra in REGIONS:
        lines.append(f"  {ra:<22}" + "".join(f"{diff.moves[ra][rb]:>10}" for rb in REGIONS) + f"{counts_a[ra]:>10}")
    counts_b = diff.counts_b()
    lines.append(f"  {'in B':<22}" + "".join(f"{counts_b[rb]:>10}" for rb in REGIONS))
    shown = diff.moved[:limit] if limit else diff.moved
    if shown:
        lines += [
            "",
            "the largest changes of confidence (A → B):",
            "   line  label  A → B regions        conf A→B   sentence",
        ]
        for m in shown:
            label = f"{m.label_a}" if m.label_a == m.label_b else f"{m.label_a}→{m.label_b}"
            regions = f"{m.region_a} → {m.region_b}"
            text = f"  {m.line:>5}  {label:<5}  {regions:<20} {m.confidence_a:.2f}→{m.confidence_b:.2f}  {m.sentence}"
            lines.append(text if len(text) <= 80 else text[:79] + "…")
    return lines
