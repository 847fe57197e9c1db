"""3 Evaluate: the place to investigate the opened run's evaluations.

Shows what the run folder has recorded (eval.json and its predictions files: every dataset evaluated,
`workbench eval --data` files too); `d` switches the dataset and the figures with it; `e` evaluates
and records it as `workbench eval` does. Beside the metrics, the per-source table and the slices
(`s`); on the right the misclassified sentences (`f`: all, false positives, false negatives) and,
for the highlighted one, its source, its token attributions and the nearest training sentences.
The fifth slice is MCC per grammatical phenomenon of the annotated dev sets (enter on one filters the
misclassified sentences to it). A minimal-pair suite (data/pairs/, or one opened from the palette) is a
dataset too: its accuracy, per paradigm, and the failed pairs (enter pins one in Predict).
Every answer carries the run it is about: one for another run is never shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.timer import Timer
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState, get_current_worker

from workbench.core.base.layout import run_path
from workbench.core.evaluation.recorded import ERROR_KIND_NAMES, ERROR_KINDS, STANDARD_DATASETS, ordered_names
from workbench.tui.errors import describe_error
from workbench.tui.messages import (
    AttributionsReady,
    EvaluationLoaded,
    PairsScored,
    SendToPredict,
    StatusChanged,
)
from workbench.tui.panes.base import Pane
from workbench.tui.panes.evaluate_text import (
    calibration_text,
    failed_pair_text,
    good_of_pair,
    metrics_text,
    phenomena_of,
    wrong_columns,
    wrong_sentence_text,
)
from workbench.tui.style import tone, toned
from workbench.tui.widgets.attributions import AttributionView, attributions_of
from workbench.tui.widgets.neighbors import NeighborsView
from workbench.tui.widgets.slices import SlicesView

DATASETS = STANDARD_DATASETS
DETAIL_DEBOUNCE_S = 0.25  # browsing the table: explain the row the cursor rests on
SHORT_LABELS = ("unacc", "acc")  # the error list's pred / true columns (0, 1)


class EvaluatePane(Pane):
    """The opened run's evaluations: figures, slices, mistakes, and why."""

    HELP = (
        "↑↓ misclassified sentences (most confident first), with their attributions and nearest training "
        "sentences; enter sends one to Predict with its true label"
    )

    BINDINGS = [
        Binding("e", "evaluate", "Evaluate", tooltip="evaluate the opened run on the dataset (and record it)"),
        Binding("d", "next_dataset", "Dataset", tooltip="next dataset: its recorded evaluation, if any"),
        Binding("f", "next_filter", "FP/FN", tooltip="all errors / false positives / false negatives"),
        Binding(
            "s",
            "next_slice",
            "Slices",
            tooltip="per source / by length / reliability (ECE) / MCC by threshold / grammar phenomena",
        ),
    ]

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.dataset = "holdout"
        self.datasets: list[str] = list(DATASETS)
        self.report: Any = None  # the RecordedEvaluation shown (core.recorded), None: nothing yet
        self.slices: Any = None
        self.recorded = True
        self.result_run: str | None = None  # the run whose figures are shown
        self.error_kind = "all"
        self.phenomena: Any = None  # the PhenomenaReport of the shown evaluation (annotated dev sets)
        self.phenomenon = ""  # the grammatical feature the error list is filtered to ('' for none)
        self.suites: dict[str, Path] = {}  # suites opened from the palette, by dataset name
        self.pairs: Any = None  # the PairsReport shown (a minimal-pair suite), None: an evaluation
        self.wrong: Any = None  # the misclassified rows shown (filtered), most confident first
        self.error_counts = ""  # "12 FP · 7 FN" of the shown evaluation
        self.detail_sentence = ""  # the sentence the detail is about; answers for others are dropped
        self._detail_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="eval-header")
        with Horizontal():
            with Vertical(id="eval-left"):
                yield Static("", id="eval-metrics")
                yield SlicesView(id="eval-slices")
            with Vertical(id="eval-right"):
                yield DataTable(id="eval-wrong", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="eval-detail-box"):
                    yield Static("", id="eval-detail")
                    yield NeighborsView(self.session, id="eval-neighbors")  # above the attributions: in view at 80x24
                    yield AttributionView(id="eval-attributions")

    def on_mount(self) -> None:
        self.label_wrong_columns(self.query_one("#eval-wrong", DataTable), pairs=False)
        self.show_evaluation(None)

    @staticmethod
    def label_wrong_columns(table: DataTable[Any], pairs: bool) -> None:
        """The error list's columns (evaluate_text.wrong_columns)."""
        table.clear(columns=True)
        for label, key in wrong_columns(pairs):
            table.add_column(label, key=key)

    @property
    def neighbors(self) -> list[Any]:
        """The nearest training sentences shown for the highlighted sentence (core Neighbor)."""
        return self.query_one(NeighborsView).neighbors

    def focus_default(self, leaving_field: bool = False) -> None:
        self.show_header()
        self.focus_on(self.query_one("#eval-wrong"))

    # ------------------------------------------------------------ which run, which dataset

    @property
    def run_dir(self) -> Path | None:
        return self.session.run_dir(self.session.current_run)

    def data_file_name(self) -> str | None:
        """The dataset name of the app's --data file (core `data_file_name`, as `workbench eval --data`)."""
        from workbench.core.evaluation.datasets import data_file_name

        return data_file_name(self.session.data)

    def known_datasets(self, recorded: list[str]) -> list[str]:
        """What `d` cycles through: the standard datasets, those RECORDED, the app's --data file, then the
        minimal-pair suites of data/pairs/ (pairs:<file>) and any suite opened from the palette."""
        from workbench.core.explore.pairs import SUITE_PREFIX, suite_files

        data_file = self.data_file_name()
        names = ordered_names(set(DATASETS) | set(recorded) | ({data_file} if data_file else set()))
        suites = [f"{SUITE_PREFIX}{path.name}" for path in suite_files()]
        suites += [name for name in self.suites if name not in suites]
        return names + suites

    def open_suite(self, path: Path) -> None:
        """Score the minimal-pair suite at PATH with the opened run's model (the palette's `pairs: ...`)."""
        from workbench.core.explore.pairs import SUITE_PREFIX

        name = f"{SUITE_PREFIX}{path.name}"
        self.suites[name] = path
        self.datasets = self.known_datasets(self.datasets)
        self.dataset = name
        self.show_evaluation(None)
        self.load()

    def suite_path(self, dataset: str) -> Path | None:
        """The file of a pairs:<file> dataset (None for an evaluation dataset)."""
        from workbench.core.explore.pairs import SUITE_PREFIX, suites_dir

        if not dataset.startswith(SUITE_PREFIX):
            return None
        return self.suites.get(dataset, suites_dir() / dataset[len(SUITE_PREFIX) :])

    def show_run(self, run_id: str | None) -> None:
        """A run was opened: forget the figures of the one before, now; then read this one's."""
        self.recorded = True
        self.show_evaluation(None)
        self.datasets = self.known_datasets([])
        if self.dataset not in self.datasets:
            self.dataset = "holdout"  # a --data file of the run before: this run is shown on the holdout first
        self.query_one("#eval-metrics", Static).update(f"reading {run_id}'s evaluations…" if run_id else "")
        self.load()

    def show_header(self) -> None:
        model_label = self.session.model_source(self.session.current_run).label
        self.query_one("#eval-header", Static).update(
            f"[b]{escape(model_label)}[/b] · [b]{escape(self.dataset)}[/b] (d) · "
            f"[b]{ERROR_KIND_NAMES[self.error_kind]}[/b] (f)"
            + (f" of {self.error_counts}" if self.error_counts else "")
            + " · e evaluates"
        )

    def action_next_dataset(self) -> None:
        names = self.datasets or list(DATASETS)
        position = names.index(self.dataset) if self.dataset in names else -1
        self.dataset = names[(position + 1) % len(names)]
        self.show_evaluation(None)
        self.load()

    def load(self) -> None:
        """Show the opened run's recorded evaluation on the current dataset (a worker reads it)."""
        self.show_header()
        run_id = self.session.current_run
        suite = self.suite_path(self.dataset)
        if suite is not None:
            self.query_one("#eval-metrics", Static).update(f"scoring the pairs of {suite.name}…")
            self.pairs_worker(run_id, self.dataset, suite)
            return
        if run_id is None:
            self.query_one("#eval-metrics", Static).update(
                f"no run opened: e evaluates the base model on {self.dataset} (nothing is recorded)"
            )
            return
        self.load_worker(run_id, self.dataset)

    @work(thread=True, exclusive=True, exit_on_error=False, group="eval-load", name="recorded evaluations")
    def load_worker(self, run_id: str, dataset: str) -> None:
        from workbench.core.base.layout import RunError
        from workbench.core.evaluation.recorded import load_recorded, recorded_names
        from workbench.core.evaluation.slices import evaluation_slices

        run_dir = run_path(self.session.runs_dir, run_id)
        try:
            names = recorded_names(run_dir)
            evaluation = load_recorded(run_dir, dataset)
            tokenizer = self.tokenizer(run_id) if evaluation else None
            slices = evaluation_slices(evaluation.predictions, tokenizer) if evaluation else None
            before = (
                evaluation_slices(evaluation.predictions, tokenizer, evaluation.summary, before_calibration=True)
                if evaluation
                else None
            )
        except RunError as err:
            self.post_message(EvaluationLoaded(run_id, dataset, [], None, error=str(err)))
            return
        phenomena, note = phenomena_of(dataset, evaluation)
        if not get_current_worker().is_cancelled:  # cancelled: an evaluation started meanwhile
            self.post_message(
                EvaluationLoaded(
                    run_id,
                    dataset,
                    names,
                    evaluation,
                    slices,
                    slices_before=before,
                    phenomena=phenomena,
                    phenomena_note=note,
                )
            )

    @work(thread=True, exclusive=True, exit_on_error=False, group="eval-load", name="minimal pairs")
    def pairs_worker(self, run_id: str | None, dataset: str, path: Path) -> None:
        """Score the suite at PATH with RUN_ID's model (the base model when none is opened)."""
        from workbench.core.data.cola import DataError
        from workbench.core.explore.pairs import load_suite, score_suite

        try:
            suite = load_suite(path)
        except DataError as err:
            self.post_message(PairsScored(run_id, dataset, None, error=str(err)))
            return
        predictor, _, _ = self.session.get_predictor(run_id, on_status=self.post_message)
        report = score_suite(predictor.model, predictor.tokenizer, suite)  # at the model's full length
        if not get_current_worker().is_cancelled:
            self.post_message(PairsScored(run_id, dataset, report))
            self.post_message(StatusChanged(f"{path.name}: {report.right} of {report.n} pairs right"))

    def on_pairs_scored(self, message: PairsScored) -> None:
        message.stop()
        if message.run_id != self.session.current_run or message.dataset != self.dataset:
            return
        self.show_evaluation(None)
        metrics = self.query_one("#eval-metrics", Static)
        if message.report is None:
            metrics.update(toned(message.error, "bad"))
            return
        self.show_pairs(message.report)

    def show_pairs(self, report: Any) -> None:
        """A scored suite: accuracy, per field, per paradigm (in the slices' first table), failed pairs."""
        self.pairs = report
        fields = " · ".join(f"{g.name} {g.accuracy:.2f} ({g.n})" for g in report.groups("field"))
        self.query_one("#eval-metrics", Static).update(
            f"[b]{escape(report.path.name)}[/b] {report.n} pairs\n[b]accuracy {report.accuracy:.3f}[/b] "
            f"({report.right} right: p(ok) of good > of bad)"
            + (
                f"\n[{tone('warn')}]{report.not_separable} not separable (same tokens)[/]"
                if report.not_separable
                else ""
            )
            + f"\n{escape(fields)}"
        )
        self.query_one(SlicesView).show_groups(report.groups("paradigm"))
        self.show_wrong()

    def tokenizer(self, run_id: str | None) -> Any:
        """RUN_ID's word pieces for the length slices: the `tokenizers` library alone where the model folder
        has tokenizer.json (0.05 s; transformers' tokenizer cost 2.5 s of the pane's first load on the AMD)."""
        from workbench.core.model.loading import load_word_pieces

        return load_word_pieces(self.session.model_source(run_id).source)

    # ------------------------------------------------------------ evaluating

    def action_evaluate(self, dataset: str | None = None) -> None:
        if dataset:
            self.dataset = dataset
        if self.suite_path(self.dataset) is not None:  # a minimal-pair suite: score it again
            self.show_evaluation(None)
            self.load()
            return
        self.show_evaluation(None)  # the figures shown until now are about to be replaced
        self.query_one("#eval-metrics", Static).update(f"evaluating on {self.dataset}…")
        self.query_one("#eval-wrong").loading = True
        self.workers.cancel_group(self, "eval-load")  # what it read is about to be replaced
        self.evaluate(self.session.current_run, self.dataset)

    @work(thread=True, exclusive=True, exit_on_error=False, group="evaluate", name="evaluation")
    def evaluate(self, run_id: str | None, dataset: str) -> None:
        """Score the run's model on DATASET (of the data and split it trained on) and record it in the
        run folder (core `record_report`, as `workbench eval` does)."""
        from workbench.core.evaluation.datasets import ScoredData, recording_folder, scored_data
        from workbench.core.evaluation.evaluate import evaluate_and_record
        from workbench.core.evaluation.recorded import from_report, recorded_names
        from workbench.core.evaluation.slices import evaluation_slices

        self.post_message(StatusChanged(f"evaluating {run_id or 'the base model'} on {dataset}…"))
        run_dir = self.session.run_dir(run_id)
        if dataset in DATASETS:  # the run's own split (core `scored_data`); without a run, the app's data
            scored = scored_data(run_dir, None, dataset) if run_dir is not None else None
            frame, data = (scored.frame, scored.data) if scored else (self.session.data_for(None)[dataset], "")
        elif dataset == self.data_file_name():  # the app's --data file, as `workbench eval --data` names it
            scored = scored_data(run_dir, self.session.data, "holdout")
            frame, data = scored.frame, scored.data
        else:
            raise ValueError(
                f"{dataset} was recorded by `workbench eval --data`: evaluate it there again "
                "(or start the app with that --data file)"
            )
        predictor, model_label, _ = self.session.get_predictor(run_id, on_status=self.post_message)
        source = self.session.model_source(run_id)
        recording = recording_folder(source.source) if run_dir is not None and source.finetuned else None
        recorded = recording is not None
        report, _ = evaluate_and_record(
            predictor.model, predictor.tokenizer, ScoredData(dataset, frame, data), recording, predictor.max_length
        )
        names = recorded_names(run_dir) if run_dir is not None else []
        slices = evaluation_slices(report.predictions, predictor.tokenizer)
        before = evaluation_slices(report.predictions, predictor.tokenizer, report.summary(), before_calibration=True)
        evaluation = from_report(report)
        phenomena, note = phenomena_of(dataset, evaluation)
        self.post_message(
            EvaluationLoaded(
                run_id,
                dataset,
                names,
                evaluation,
                slices,
                recorded=recorded,
                slices_before=before,
                phenomena=phenomena,
                phenomena_note=note,
            )
        )
        self.post_message(
            StatusChanged(
                f"evaluated {model_label} on {dataset}: MCC {report.mcc:.3f}"
                + ("" if recorded else " (not recorded: no trained run opened)")
            )
        )

    def worker_state_changed(self, worker: Worker, state: WorkerState) -> None:
        """Say where a worker failed (the app notifies too), and end the loading state of an evaluation."""
        if worker.group == "evaluate" and state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.query_one("#eval-wrong").loading = False
        if state != WorkerState.ERROR:
            return
        failed = toned(f"{worker.name} failed: {describe_error(worker.error)}", "bad")
        if worker.group in ("evaluate", "eval-load"):
            self.query_one("#eval-metrics", Static).update(failed)
        elif worker.group == "eval-explain":
            self.query_one("#eval-attributions", AttributionView).update(failed)
        elif worker.group == "eval-neighbors":
            self.query_one(NeighborsView).update(failed)

    def on_evaluation_loaded(self, message: EvaluationLoaded) -> None:
        if message.run_id != self.session.current_run:
            return  # about a run no longer opened: never shown under another run's name
        self.datasets = self.known_datasets(message.datasets)
        if message.dataset != self.dataset:
            return  # the user switched dataset meanwhile
        if message.error:
            self.show_evaluation(None)
            self.query_one("#eval-metrics", Static).update(toned(message.error, "bad"))
            return
        self.recorded = message.recorded
        self.phenomena = message.phenomena
        self.show_evaluation(message.evaluation, message.slices, message.slices_before)
        self.query_one(SlicesView).show_phenomena(message.phenomena, message.phenomena_note)

    # ------------------------------------------------------------ showing an evaluation

    def show_evaluation(self, evaluation: Any, slices: Any = None, slices_before: Any = None) -> None:
        """Show EVALUATION (a core RecordedEvaluation) of the current run and dataset, or clear it all.
        Every figure is on the shipped (calibrated) p(acceptable); SLICES_BEFORE, the same on the model
        as trained, gives the pre-calibration line."""
        self.report, self.slices = evaluation, slices
        self.pairs = None
        if evaluation is None:
            self.phenomena, self.phenomenon = None, ""
        self.result_run = self.session.current_run if evaluation is not None else None
        self.show_header()
        metrics = self.query_one("#eval-metrics", Static)
        view = self.query_one(SlicesView)
        if evaluation is None:
            view.clear()
            run = self.session.current_run
            metrics.update(
                f"{escape(run)} has no evaluation on {escape(self.dataset)} yet: e evaluates it (and records it)"
                if run
                else "press e to evaluate"
            )
            self.show_wrong()
            return
        summary = evaluation.summary
        untrained = not self.session.model_source(self.session.current_run).finetuned
        metrics.update(
            metrics_text(
                evaluation,
                self.recorded,
                untrained,
                slices_before,
                calibration_text(self.session.run_dir(self.session.current_run)),
            )
        )
        view.show(summary.get("per_source") or [], slices)
        self.show_wrong()

    def action_next_filter(self) -> None:
        self.error_kind = ERROR_KINDS[(ERROR_KINDS.index(self.error_kind) + 1) % len(ERROR_KINDS)]
        self.show_header()
        self.show_wrong()

    def action_next_slice(self) -> None:
        self.query_one(SlicesView).next_view()

    def show_wrong(self) -> None:
        """The misclassified sentences of the shown evaluation, filtered by kind, most confident first."""
        from workbench.core.evaluation.recorded import misclassified

        table = self.query_one("#eval-wrong", DataTable)
        self.label_wrong_columns(table, pairs=self.pairs is not None)
        if self.pairs is not None:
            self.show_failed_pairs(table)
            return
        if self.report is None:
            self.wrong = None
            self.error_counts = ""
            table.border_title = ""
            self.show_detail()
            return
        predictions = self.report.predictions
        if self.phenomenon and self.phenomena is not None:  # only the sentences with that feature
            rows = self.phenomena.table["dev_row"].to_numpy()[self.phenomena.members[self.phenomenon]]
            predictions = predictions.iloc[sorted(set(rows.tolist()))]
        self.wrong = misclassified(predictions, self.error_kind)
        table.add_rows(
            (f"{p:.3f}", SHORT_LABELS[int(predicted)], Text(sentence))  # a sentence is data, never markup
            for p, predicted, sentence in zip(
                self.wrong["p_acceptable"].tolist(),
                self.wrong["predicted"].tolist(),
                self.wrong["sentence"].tolist(),
                strict=True,
            )
        )
        predictions = self.report.predictions
        wrong = predictions["label"] != predictions["predicted"]
        false_positives = int((wrong & (predictions["predicted"] == 1)).sum())
        false_negatives = int((wrong & (predictions["predicted"] == 0)).sum())
        counts = f"{false_positives} FP, {false_negatives} FN"
        self.error_counts = f"{false_positives} FP · {false_negatives} FN"
        self.show_header()
        kind = ERROR_KIND_NAMES[self.error_kind]
        table.border_title = (
            f"{len(self.wrong)} misclassified ({counts}), most confident first"
            if self.error_kind == "all"
            else f"{len(self.wrong)} {kind} ({counts})"
        )
        if self.phenomenon:
            table.border_title = f"{len(self.wrong)} {kind} · {self.phenomenon} (enter on it again: all)"
        self.show_detail()

    def show_failed_pairs(self, table: DataTable) -> None:
        """The suite's wrong pairs, the most wrong first: margin p(good) - p(bad), paradigm, good ≻ bad."""
        failed = self.pairs.failed()
        self.wrong = failed
        for index, row in failed.iterrows():
            good, bad = self.pairs.words(index)
            text = Text()
            for words, style in ((good, "bold"), (bad, "italic")):
                if len(text):
                    text.append("  ≻  ", style="dim")
                for position, (word, changed) in enumerate(words):
                    text.append(
                        (" " if position else "") + (f"[{word}]" if changed else word), style=style if changed else ""
                    )
            table.add_row(f"{row['margin']:+.2f}", str(row["paradigm"])[:5], text)
        table.border_title = f"{len(failed)} pairs wrong of {self.pairs.n}, most wrong first; enter: pin in Predict"
        self.show_detail()

    # ------------------------------------------------------------ the highlighted sentence

    @on(DataTable.RowHighlighted, "#eval-wrong")
    def _row_highlighted(self) -> None:
        self.show_detail()

    def selected(self) -> Any:
        table = self.query_one("#eval-wrong", DataTable)
        if self.wrong is None or not len(self.wrong) or not 0 <= table.cursor_row < len(self.wrong):
            return None
        return self.wrong.iloc[table.cursor_row]

    def show_detail(self) -> None:
        """The highlighted sentence: its labels, probability and source at once; its attributions and
        nearest training sentences from workers, once the cursor rests."""
        row = self.selected()
        detail = self.query_one("#eval-detail", Static)
        attributions = self.query_one("#eval-attributions", AttributionView)
        neighbors = self.query_one(NeighborsView)
        if self._detail_timer is not None:
            self._detail_timer.stop()
        if self.pairs is not None and row is not None:  # a failed minimal pair: both sentences, no attributions
            self.detail_sentence = ""
            detail.update(failed_pair_text(row))
            attributions.show_message("")
            neighbors.clear()
            return
        if row is None:
            self.detail_sentence = ""
            if self.wrong is None:
                detail.update("")
            else:
                detail.update(
                    f"no {ERROR_KIND_NAMES[self.error_kind]} here"
                    if self.error_kind != "all"
                    else "no misclassified sentences"
                )
            attributions.show_message("")
            neighbors.clear()
            return
        sentence = str(row["sentence"])
        self.detail_sentence = sentence
        detail.update(wrong_sentence_text(row))
        attributions.show_message("attributions…")
        neighbors.pending(sentence)
        run_id = self.session.current_run
        self._detail_timer = self.set_timer(DETAIL_DEBOUNCE_S, lambda: self.investigate(run_id, sentence))

    def investigate(self, run_id: str | None, sentence: str) -> None:
        if sentence != self.detail_sentence or run_id != self.session.current_run:
            return
        self.explain_worker(run_id, sentence)
        self.query_one(NeighborsView).look_up(run_id, sentence)

    @work(thread=True, exclusive=True, exit_on_error=False, group="eval-explain", name="attributions")
    def explain_worker(self, run_id: str | None, sentence: str) -> None:

        predictor, _, trained = self.session.get_predictor(run_id, on_status=self.post_message)
        if get_current_worker().is_cancelled:
            return
        answer = attributions_of(predictor, sentence, trained)
        if not get_current_worker().is_cancelled:
            self.post_message(answer)

    def on_attributions_ready(self, message: AttributionsReady) -> None:
        message.stop()
        if message.sentence != self.detail_sentence:
            return
        view = self.query_one("#eval-attributions", AttributionView)
        if message.explanation is None:
            view.show_message(f"no attributions: {message.error}", "red")
        else:
            view.show(message.explanation, message.special_tokens, message.trained)

    @on(DataTable.RowSelected, "#eval-phenomena")
    def _phenomenon_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a grammatical feature: the error list shows only its sentences (again: all of them)."""
        event.stop()
        feature = self.query_one(SlicesView).phenomenon_at(event.cursor_row)
        self.phenomenon = "" if feature == self.phenomenon else feature
        self.show_wrong()

    @on(DataTable.RowSelected, "#eval-wrong")
    def _row_selected(self) -> None:
        row = self.selected()
        if row is not None and self.pairs is not None:
            good = good_of_pair(row)
            self.post_message(SendToPredict(str(row["bad"]), 0, pinned=good))
        elif row is not None:
            self.post_message(SendToPredict(str(row["sentence"]), int(row["label"])))
