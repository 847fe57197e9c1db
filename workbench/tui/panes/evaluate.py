"""3 Evaluate: MCC, accuracy, confusion, per-source table, misclassified sentences by confidence."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static
from textual.worker import Worker, WorkerState

from workbench.core.config import LABELS
from workbench.tui.messages import EvalDone, SendToPredict, StatusChanged
from workbench.tui.panes.base import Pane
from workbench.tui.style import tone, toned

DATASETS = ("holdout", "in_domain_dev", "validation", "train")


def confusion_text(confusion: list[list[int]]) -> str:
    (tn, fp), (fn, tp) = confusion
    return ("confusion   pred 0  pred 1\n"
            f"  true 0    {tn:>6}  {fp:>6}\n"
            f"  true 1    {fn:>6}  {tp:>6}")


class EvaluatePane(Pane):
    """Score a run's best model on a dataset and read its mistakes."""

    HELP = "↑↓ misclassified sentences (most confident first); enter sends one to Predict with its true label"

    BINDINGS = [
        Binding("e", "evaluate", "Evaluate", tooltip="evaluate the chosen run's best model on the dataset"),
        Binding("d", "next_dataset", "Dataset", tooltip="next dataset: holdout, in_domain_dev, validation, train"),
    ]

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.dataset = "holdout"
        self.report: Any = None
        self.wrong: Any = None  # misclassified DataFrame, most confident first
        self.result_run: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="eval-header")
        with Horizontal():
            with Vertical(id="eval-left"):
                yield Static("press e to evaluate", id="eval-metrics")
                yield DataTable(id="eval-sources", cursor_type="row", zebra_stripes=True)
            with Vertical(id="eval-right"):
                yield DataTable(id="eval-wrong", cursor_type="row", zebra_stripes=True)
                yield Static("", id="eval-detail")

    def on_mount(self) -> None:
        self.query_one("#eval-sources", DataTable).add_columns("source", "n", "MCC", "acc")
        wrong = self.query_one("#eval-wrong", DataTable)
        wrong.add_column("conf", key="conf")
        wrong.add_column("true", key="true")
        wrong.add_column("sentence", key="sentence")
        self.show_header()

    def focus_default(self, leaving_field: bool = False) -> None:
        self.show_header()
        self.focus_on(self.query_one("#eval-wrong"))

    def show_run(self, run_id: str | None) -> None:
        self.show_header()

    def show_header(self) -> None:
        model_label = self.workbench.model_source(self.workbench.current_run).label
        self.query_one("#eval-header", Static).update(
            f"model [b]{escape(model_label)}[/b] · dataset [b]{self.dataset}[/b] (d) · e evaluates")

    def action_next_dataset(self) -> None:
        self.dataset = DATASETS[(DATASETS.index(self.dataset) + 1) % len(DATASETS)]
        self.show_header()

    def action_evaluate(self, dataset: str | None = None) -> None:
        if dataset:
            self.dataset = dataset
        self.show_header()
        self.query_one("#eval-metrics", Static).update(f"evaluating on {self.dataset}…")
        self.query_one("#eval-wrong").loading = True
        self.evaluate(self.workbench.current_run, self.dataset)

    @work(thread=True, exclusive=True, exit_on_error=False, group="evaluate", name="evaluation")
    def evaluate(self, run_id: str | None, dataset: str) -> None:
        self.post_message(StatusChanged(f"evaluating {run_id or 'the base model'} on {dataset}…"))
        from workbench.core.evaluate import evaluate_frame

        predictor, model_label, trained = self.workbench.get_predictor(run_id)
        cola = self.workbench.data_for(run_id)
        report = evaluate_frame(predictor.model, predictor.tokenizer, cola[dataset], dataset,
                                predictor.max_length)
        self.post_message(EvalDone(run_id, dataset, report, model_label, trained))
        self.post_message(StatusChanged(f"evaluated {model_label} on {dataset}: MCC {report.mcc:.3f}"))

    def worker_state_changed(self, worker: Worker, state: WorkerState) -> None:
        if worker.group == "evaluate" and state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self.query_one("#eval-wrong").loading = False
            if state == WorkerState.ERROR:
                self.query_one("#eval-metrics", Static).update(toned(f"evaluation failed: {worker.error}", "bad"))

    def on_eval_done(self, message: EvalDone) -> None:
        report = message.report
        self.report = report
        self.result_run = message.run_id
        warning = report.warning()
        metrics = Text.assemble((message.dataset, "bold"), f" n={report.n}\n", (f"MCC {report.mcc:.3f}", "bold"),
                                f" · accuracy {report.accuracy:.3f}\n{confusion_text(report.confusion)}")
        if warning:
            metrics.append(f"\n{warning}", style=tone("bad"))
        if not message.trained:
            metrics.append("\nuntrained model: scores are chance level", style=tone("warn"))
        self.query_one("#eval-metrics", Static).update(metrics)
        sources = self.query_one("#eval-sources", DataTable)
        sources.clear()
        for row in report.per_source:
            sources.add_row(Text(row["source"]), str(row["n"]), f"{row['mcc']:.2f}", f"{row['accuracy']:.2f}")
        self.wrong = report.misclassified()
        table = self.query_one("#eval-wrong", DataTable)
        table.clear()
        table.add_rows(
            (f"{conf:.2f}", str(label), Text(sentence))  # a sentence is data, never markup
            for conf, label, sentence in zip(self.wrong["confidence"].tolist(), self.wrong["label"].tolist(),
                                             self.wrong["sentence"].tolist(), strict=True))
        table.border_title = f"{len(self.wrong)} misclassified, most confident first"
        self.show_detail()

    @on(DataTable.RowHighlighted, "#eval-wrong")
    def _row_highlighted(self) -> None:
        self.show_detail()

    def selected(self) -> Any:
        table = self.query_one("#eval-wrong", DataTable)
        if self.wrong is None or not len(self.wrong) or table.cursor_row >= len(self.wrong):
            return None
        return self.wrong.iloc[table.cursor_row]

    def show_detail(self) -> None:
        row = self.selected()
        detail = self.query_one("#eval-detail", Static)
        if row is None:
            detail.update("no misclassified sentences" if self.wrong is not None else "")
            return
        text = Text()
        text.append(f"{row['sentence']}\n", style="bold")
        text.append(f"true {LABELS[int(row['label'])]} · predicted {LABELS[int(row['predicted'])]}\n")
        text.append(f"logits {row['logit_unacceptable']:+.2f} {row['logit_acceptable']:+.2f} · "
                    f"p(unacc.) {row['p_unacceptable']:.3f} · p(acc.) {row['p_acceptable']:.3f}\n")
        text.append("enter: try it in Predict (with its true label)", style=tone("muted"))
        detail.update(text)

    @on(DataTable.RowSelected, "#eval-wrong")
    def _row_selected(self) -> None:
        row = self.selected()
        if row is not None:
            self.post_message(SendToPredict(str(row["sentence"]), int(row["label"])))
