"""The map of the training data (dataset cartography): recorded by training, read by core/explore/cartography."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from workbench.core.base.config import TrainConfig


def _learnable_file(folder: Path, n: int = 200, flip_share: float = 0.1, seed: int = 0) -> tuple[Path, set[str]]:
    """Sentences whose label is told by their first word ("good" acceptable, "bad" not), a known 10% of them
    with the label flipped; a CSV with a header. Returns the file and the flipped sentences."""
    rng = random.Random(seed)
    words = "the a cat dog man woman house tree river car saw took ran big small red blue old new".split()
    rows, flipped = [], set()
    for i in range(n):
        label = i % 2
        body = rng.sample(words, 5)
        body.insert(0, "good" if label else "bad")
        sentence = " ".join(body) + f" {i}."
        if rng.random() < flip_share:
            label = 1 - label
            flipped.add(sentence)
        rows.append(f"{sentence},{label}")
    path = folder / "learnable.csv"
    path.write_text("sentence,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path, flipped


@pytest.fixture(scope="module")
def mapped_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, set[str]]:
    from workbench.core.training.train import train

    folder = tmp_path_factory.mktemp("map")
    data, flipped = _learnable_file(folder)
    config = TrainConfig(
        model=str(tiny_model_dir),
        data=str(data),
        epochs=10,  # the tiny model leaves its first plateau after 2 to 5 epochs, by the random stream: 10 leave
        batch_size=16,  # enough after it for the flipped sentences' mean confidence to fall (6 did on 25 of 28 seeds)
        learning_rate=3e-3,
        precision="fp32",
        eval_batch_size=256,
        warmup_ratio=0.0,
    )
    result = train(config, folder / "run")
    assert result.status == "done", result.error
    return folder / "run", flipped


def test_flipped_labels_land_in_the_hard_to_learn_corner(mapped_run: tuple[Path, set[str]]) -> None:
    from workbench.core.explore.cartography import training_map

    run_dir, flipped = mapped_run
    table = training_map(run_dir).table
    flipped_rows = table["sentence"].isin(flipped)
    assert flipped_rows.sum() >= 12  # about 10% of the 180 training rows
    lowest = table.nsmallest(int(round(0.15 * len(table))), "confidence")
    share_caught = lowest["sentence"].isin(flipped).sum() / flipped_rows.sum()
    assert share_caught >= 0.5, share_caught
    hard = table[table["region"] == "hard"]
    assert hard["sentence"].isin(flipped).mean() > 0.3  # 10% of all rows, far more of the hard ones


def test_coordinates_are_the_mean_and_spread_of_the_recorded_probabilities(mapped_run: tuple[Path, set[str]]) -> None:
    from workbench.core.explore.cartography import training_map

    run_dir, _ = mapped_run
    with np.load(run_dir / "training_dynamics.npz") as data:
        p_gold = data["p_gold"]
    assert p_gold.shape[0] == 10 and not np.isnan(p_gold).any()
    table = training_map(run_dir).table
    for row in (0, 7, len(table) - 1):
        assert table["confidence"].iloc[row] == pytest.approx(float(np.mean(p_gold[:, row])), abs=1e-6)
        assert table["variability"].iloc[row] == pytest.approx(float(np.std(p_gold[:, row])), abs=1e-6)
        assert table["correctness"].iloc[row] == pytest.approx(float(np.mean(p_gold[:, row] > 0.5)))


def test_a_one_epoch_map_has_no_ambiguous_sentences() -> None:
    """One epoch: every variability is 0, which is "at or above" its quantile (0); no sentence varied, so
    none is ambiguous, and the regions follow confidence alone (seen: a 1-epoch run called all 7,695 ambiguous)."""
    from workbench.core.explore.cartography import coordinates, regions

    p_gold = np.array([[0.9, 0.2, 0.6, 0.4]])
    confidence, variability, _, _ = coordinates(p_gold)
    assert list(variability) == [0.0, 0.0, 0.0, 0.0]
    assert list(regions(confidence, variability)) == ["easy", "hard", "easy", "hard"]
    # two epochs: the sentence that moved most is ambiguous (its variability |0.9-0.1|/2 = 0.4, the others 0)
    confidence, variability, _, _ = coordinates(np.array([[0.9, 0.2, 0.6, 0.4], [0.1, 0.2, 0.6, 0.4]]))
    assert list(regions(confidence, variability)) == ["ambiguous", "hard", "easy", "hard"]


def test_each_mapped_sentence_names_its_line_in_the_data_file(mapped_run: tuple[Path, set[str]]) -> None:
    """The map's `line` is the sentence's line in the file it came from (what a label override names),
    checked against the file read with csv alone; the training rows are shuffled by the split, so a row
    number would not do."""
    import csv

    from workbench.core.explore.cartography import training_map

    run_dir, _ = mapped_run
    data = Path(TrainConfig.load(run_dir / "config.json").data)
    with data.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["sentence", "label"]
        by_line = {}
        for sentence, label in reader:
            by_line[reader.line_num] = (sentence, int(label))
    mapped = training_map(run_dir)
    table = mapped.table
    assert len(table) == 180 and table["line"].is_unique
    assert list(table["line"]) != sorted(table["line"])  # shuffled: the line is not the row
    for row in table.itertuples():
        assert by_line[row.line] == (row.sentence, row.label)
    assert mapped.to_records(table.head(1))[0]["line"] == int(table["line"].iloc[0])
