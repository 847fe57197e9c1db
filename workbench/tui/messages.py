"""Every message the workbench posts, as dataclasses.

Workers post these from their threads (post_message is thread-safe); panes and the
app handle them on the event loop, which is the only place widgets are touched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from workbench.core.base.events import Event


@dataclass
class StatusChanged(Message):
    """A line for the status bar: loading states, errors, hints."""

    text: str
    severity: str = "information"  # information, warning, error


@dataclass
class DataLoaded(Message):
    """CoLA (or a user file) is loaded: a `workbench.core.data.cola.CoLA`."""

    cola: Any
    source: str


@dataclass
class TokenizerLoaded(Message):
    """The tokenizer of the chosen model, for token lengths and WordPiece views."""

    tokenizer: Any
    model: str


@dataclass
class TokenLengths(Message):
    """Token lengths of every sentence of one split, for the histogram."""

    split: str
    lengths: list[int]


@dataclass
class TrainProgress(Message):
    """Events of the run the Train pane follows, read from its metrics.jsonl (the history first, then as
    the training process writes them). High rate: a newer one absorbs an older one still queued, so the
    queue never backs up and no point is lost."""

    run_id: str
    events: list[Event]

    def can_replace(self, message: Message) -> bool:
        # Called on the queued (older) message with the next one; merging keeps every point.
        if isinstance(message, TrainProgress) and message.run_id == self.run_id:
            message.events[:0] = self.events
            return True
        return False


@dataclass
class TrainLaunched(Message):
    """A training process started (or resumed) a run and holds it: the Train pane follows it."""

    run_id: str
    pid: int
    resumed: bool = False


@dataclass
class TrainFollowEnded(Message):
    """The Train pane's follower stopped: the run's process ended (CANCELLED: the pane let it go)."""

    run_id: str
    cancelled: bool = False


@dataclass
class TrainFinished(Message):
    """The run the Train pane followed ended (done, stopped or failed): the app announces it."""

    run_id: str
    status: str
    error: str = ""


@dataclass
class RunChosen(Message):
    """The user picked a run: the panes show it."""

    run_id: str | None


@dataclass
class EvalDone(Message):
    """An evaluation finished: a `workbench.core.evaluation.evaluate.EvalReport`."""

    run_id: str | None
    dataset: str
    report: Any
    model_label: str
    trained: bool


@dataclass
class PredictionReady(Message):
    """The model's answer for one sentence typed in the sentence box."""

    sentence: str
    prediction: Any  # workbench.core.model.predict.Prediction, or None with an error
    model_label: str
    trained: bool
    error: str = ""
    remember: bool = False  # add to the history (the user pressed Enter)
    run_id: str | None = None  # the run whose model answered (None: the base model)
    pin: bool = False  # the pinned sentence, recomputed by another model


@dataclass
class SendToPredict(Message):
    """Put a sentence into the sentence box (Enter on a misclassified sentence), with its true
    label when it comes from a dataset (0 unacceptable, 1 acceptable)."""

    sentence: str
    label: int | None = None
    pinned: Any = None  # a core Prediction to pin as sentence A first: SENTENCE is then its variant B


@dataclass
class SystemSampled(Message):
    """A `workbench.core.base.system.SystemSample` of the machine (CPU, RAM, GPU), at most once a second."""

    sample: Any


@dataclass
class SentenceHighlighted(Message):
    """The cursor of a sentence table moved to ROW (an index into its rows)."""

    row: int


@dataclass
class SentenceChosen(Message):
    """Enter on ROW of a sentence table."""

    row: int


@dataclass
class RunsRefreshed(Message):
    """A fresh listing of the runs folder (`workbench.core.runs.status.RunInfo` objects)."""

    runs: list[Any] = field(default_factory=list)


@dataclass
class RunFollowed(Message):
    """Events read from a followed run's metrics.jsonl (the history first, then as they come).
    High rate: a newer one absorbs an older one still queued, keeping every event."""

    run_id: str
    events: list[Event]

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, RunFollowed) and message.run_id == self.run_id:
            message.events[:0] = self.events
            return True
        return False


@dataclass
class FollowEnded(Message):
    """Following a run ended: it finished (or died), or the user chose another run."""

    run_id: str
    cancelled: bool = False
    was_live: bool = False  # it was training when following began (its end is news: announce it)


@dataclass
class WorkerFailed(Message):
    """A worker raised: the app shows a notification and an error line, and keeps running."""

    worker_name: str
    error: str


@dataclass
class AttributionsReady(Message):
    """Token attributions of one sentence (a `workbench.core.explore.explain.Explanation`), or why there are none."""

    sentence: str  # as asked for (the sentence box's text, or a sentence of an evaluation)
    explanation: Any  # None with an error
    special_tokens: frozenset[str] = frozenset()  # [CLS], [SEP]...: always 0, not shown
    trained: bool = True
    error: str = ""


@dataclass
class PairReady(Message):
    """A minimal pair: the pinned sentence against the typed one (`workbench.core.explore.explain.PairComparison`)."""

    pinned: str
    sentence: str
    pair: Any  # None with an error
    error: str = ""
    model_label: str = ""  # the model that computed both sides
    run_id: str | None = None
    special_tokens: frozenset[str] = frozenset()  # [CLS], [SEP]...: not shown among the attributions


@dataclass
class EvaluationLoaded(Message):
    """An evaluation to show in the Evaluate pane: recorded in the run folder, or just made (and recorded)."""

    run_id: str | None
    dataset: str
    datasets: list[str]  # every dataset the run has recorded
    evaluation: Any  # workbench.core.evaluation.recorded.RecordedEvaluation, or None: not evaluated on DATASET yet
    slices: Any = None  # workbench.core.evaluation.slices.Slices, on the shipped (calibrated) p(acceptable)
    recorded: bool = True  # kept in the run folder (False: the base model, no run to keep it in)
    error: str = ""
    slices_before: Any = None  # the same slices on the model as trained (before calibration)
    phenomena: Any = None  # workbench.core.evaluation.phenomena.PhenomenaReport (annotated dev sets only)
    phenomena_note: str = ""  # why there is none


@dataclass
class TrainingMapRead(Message):
    """A run's map of its training data (core.explore.cartography.TrainingMap), or why there is none; with
    each line's label in the run's data file (what a label override names as its old label: the map's label is
    the one trained with, flipped where the run applied an override)."""

    run_dir: str
    training_map: Any
    error: str = ""
    data_labels: dict[int, int] = field(default_factory=dict)


@dataclass
class LabelIssuesRead(Message):
    """The likely label errors of the runs folder (core LabelIssue, most likely first) from the file at PATH,
    with the agreement with the map in words; or why there are none (ISSUES None, ERROR)."""

    path: str
    issues: list[Any] | None
    error: str = ""
    agreement: str = ""


@dataclass
class PairsScored(Message):
    """A minimal-pair suite scored by a run's model (core.explore.pairs.PairsReport), or why not."""

    run_id: str | None
    dataset: str  # pairs:<file name>
    report: Any
    error: str = ""


@dataclass
class NeighborsReady(Message):
    """The training sentences nearest to a sentence (`workbench.core.explore.neighbors.Neighbor` list)."""

    sentence: str
    neighbors: list[Any]
    kind: str = ""
    error: str = ""


@dataclass
class DiffReady(Message):
    """Two runs compared on one split (`workbench.core.explore.diff.RunDiff`), or why they cannot be."""

    split: str
    diff: Any  # None with an error
    error: str = ""
    missing: list[str] = field(default_factory=list)  # runs without predictions for SPLIT
    phenomena: Any = None  # per grammatical feature (core.evaluation.phenomena.PhenomenonChange list)
    phenomena_note: str = ""  # why there are none


@dataclass
class ManyRunsRead(Message):
    """The seed groups' and sweeps' summaries, read in a worker (screens/many_runs.py)."""

    text: str
    groups: list[str] = field(default_factory=list)


@dataclass
class SoupMade(Message):
    """A soup of a seed group was written as a new run (screens/many_runs.py, core/search/soup.py)."""

    run: str
    text: str


@dataclass
class OverridesChanged(Message):
    """The label-overrides file PATH changed (a decision made, a note or an undo in a review screen): its
    decisions now (core `Override` list). The Data pane shows them in its table."""

    path: str
    overrides: list[Any]


@dataclass
class TrainWithOverrides(Message):
    """Put the label-overrides file PATH into the Train form's overrides setting and show the form."""

    path: str
