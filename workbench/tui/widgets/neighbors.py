"""The training sentences nearest to a sentence by the opened run's model (core/explore/neighbors.py), found by
a worker once the sentence is chosen; the index of a model's training sentences is built (or read from beside
its model) once and kept for the app's life."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.widgets import Static
from textual.worker import get_current_worker

from workbench.core.base.config import LABELS
from workbench.tui.messages import NeighborsReady, StatusChanged
from workbench.tui.style import tone, toned

NEIGHBORS = 5


class NeighborsView(Static):
    """The nearest training sentences of one sentence: `pending` says they are coming, `look_up` finds them
    (a worker: an answer for another sentence than the latest is dropped), `clear` empties the view."""

    def __init__(self, session: Any, *, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__("", id=id)
        self.session = session  # the app's Session: the models and the opened run
        self.sentence = ""  # the sentence shown or coming
        self.neighbors: list[Any] = []  # core Neighbor, nearest first
        self._indexes: dict[str, Any] = {}  # neighbour indexes by model folder and weights
        self._index_lock = threading.Lock()

    def clear(self, text: str | Text = "") -> None:
        self.sentence = ""
        self.neighbors = []
        self.update(text)

    def pending(self, sentence: str) -> None:
        self.sentence = sentence
        self.neighbors = []
        self.update(toned("nearest training sentences…", "muted"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="eval-neighbors", name="nearest sentences")
    def look_up(self, run_id: str | None, sentence: str) -> None:
        """The training sentences nearest to SENTENCE by the run's model; the index of its training sentences
        is built once per model (and kept beside a run's model)."""
        from workbench.core.explore.neighbors import index_file, run_index
        from workbench.core.model.loading import model_version

        source = self.session.model_source(run_id)
        model_dir = Path(source.source)
        if not source.finetuned or not model_dir.is_dir():
            error = "open a trained run to see the training sentences nearest to this one"
            self.post_message(NeighborsReady(sentence, [], error=error))
            return
        predictor, _, _ = self.session.get_predictor(run_id, on_status=self.post_message)
        key = model_version(model_dir)
        with self._index_lock:  # one build at a time: a second worker waits and reuses it
            index = self._indexes.get(key)
            if index is None:
                kept = index_file(model_dir)
                reading = kept is not None and kept.is_file()
                self.post_message(
                    StatusChanged(
                        "reading the index of the training sentences…"
                        if reading
                        else "indexing the training sentences (once per model)…"
                    )
                )
                index = run_index(predictor.model, predictor.tokenizer, model_dir, predictor.max_length)
                self._indexes[key] = index
                self.post_message(StatusChanged("ready"))
        if get_current_worker().is_cancelled:
            return
        found = index.query(predictor.model, predictor.tokenizer, sentence, NEIGHBORS)
        self.post_message(NeighborsReady(sentence, found, index.kind))

    def on_neighbors_ready(self, message: NeighborsReady) -> None:
        if message.sentence != self.sentence:
            message.stop()
            return
        self.neighbors = list(message.neighbors)
        if message.error:
            self.update(toned(message.error, "muted"))
            return
        text = Text("nearest in training (cosine, label)", style="bold")
        for neighbor in message.neighbors:
            text.append(f"\n{neighbor.similarity:.2f} ")
            text.append(f"{LABELS[neighbor.label]} ", style=tone("good" if neighbor.label else "bad"))
            text.append(neighbor.sentence)  # data, never markup
        self.update(text)
        message.stop()
