"""One tokenizer shared by threads (the TUI's Predict, attributions and neighbour index at once): a fast
tokenizer sets its padding and truncation on the shared Rust object at every call, so two calls at once
could get each other's settings ("expected sequence of length 5 at dim 1 (got 9)", seen in the suite)."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

from workbench.core.model.loading import load_tokenizer


def test_two_threads_tokenizing_with_different_settings_both_get_their_own() -> None:
    tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
    pair = ["The cat sat.", "Who do you think that left the party early?"]
    long = "The book was written by John quite a long time ago."
    errors: list[str] = []
    shapes: set[tuple[int, ...]] = set()
    lengths: set[int] = set()

    def padded() -> None:
        for _ in range(2000):
            try:
                shapes.add(tuple(tokenizer(pair, padding=True, return_tensors="pt")["input_ids"].shape))
            except Exception as err:  # noqa: BLE001 - reported below
                errors.append(repr(err)[:200])
                return

    def truncated() -> None:
        for _ in range(2000):
            lengths.add(len(tokenizer(long, truncation=True, max_length=8)["input_ids"]))

    threads = [threading.Thread(target=padded), threading.Thread(target=truncated)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []  # before the lock: "Unable to create tensor, you should probably activate truncation..."
    assert shapes == {(2, 12)} and lengths == {8}  # 12: [CLS] who do you think that left the party early ? [SEP]


def test_the_locked_tokenizer_saves_copies_and_loads_as_before(tmp_path: Path) -> None:
    tokenizer = load_tokenizer("embedded:all-MiniLM-L6-v2")
    assert type(tokenizer).__name__ in ("BertTokenizer", "BertTokenizerFast")
    tokenizer.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert saved.get("tokenizer_class", "Bert").startswith("Bert")
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(tmp_path)  # transformers' own loader, no lock
    copied = copy.deepcopy(tokenizer)
    sentence = "Dogs bark loudly."
    assert again(sentence)["input_ids"] == copied(sentence)["input_ids"] == tokenizer(sentence)["input_ids"]
