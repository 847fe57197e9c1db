"""Two runs side by side (core.diff): how many sentences both get right, only A, only B, both wrong,
and the sentences where they disagree, browsable with both probabilities.

Opened from the Runs pane with two runs marked (`v`). It compares the predictions both run folders
recorded for a split (`d` switches it); a run without them is evaluated on that split, recorded
as `workbench eval` does, on `e`. Nothing here raises into the app: every problem is a line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static
from textual.worker import Worker, WorkerState

from workbench.tui.messages import DiffReady, SendToPredict

if TYPE_CHECKING:
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.session import Session

SPLITS = ("holdout", "in_domain_dev", "validation")


def counts_text(diff: Any) -> Text:
    """`both right 300 58.1% · only A 20 3.9% · ...` on one line."""
    text = Text()
    for position, (label, count) in enumerate(
        (
            ("both right", diff.both_right),
            ("only A", diff.only_a),
            ("only B", diff.only_b),
            ("both wrong", diff.both_wrong),
        )
    ):
        if position:
            text.append(" · ", style="dim")
        share = count / diff.n if diff.n else 0.0
        text.append(f"{label} ")
        text.append(str(count), style="bold")
        text.append(f" {share:.0%}", style="dim")
    return text


def grammar_changes(run_a: Path, run_b: Path, split: str) -> tuple[Any, str]:
    """Per grammatical feature, run B against run A on SPLIT (core.evaluation.phenomena), or None and why."""
    from workbench.core.base.layout import RunError
    from workbench.core.data.cola import DataError
    from workbench.core.evaluation.phenomena import compare_phenomena, recorded_phenomena

    if split not in ("in_domain_dev", "holdout"):
        return None, "grammar phenomena: only in_domain_dev and holdout are annotated (d)"
    try:
        return compare_phenomena(recorded_phenomena(run_a, split), recorded_phenomena(run_b, split)), ""
    except (RunError, DataError, ValueError) as err:
        return None, str(err)


class DiffScreen(ModalScreen[None]):
    """Run A against run B on one split; escape closes."""

    BINDINGS = [
        Binding("escape,q,v", "dismiss", "Close"),
        Binding("d", "next_split", "Split"),
        Binding("e", "evaluate_missing", "Evaluate missing"),
        Binding("g", "toggle_grammar", "Grammar", tooltip="per grammatical feature: B better / worse than A"),
    ]

    def __init__(self, runs_dir: Path, run_a: str, run_b: str, split: str = "holdout") -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.run_a, self.run_b = run_a, run_b
        self.split = split
        self.diff: Any = None
        self.missing: list[str] = []

    @property
    def session(self) -> Session:
        """The runs folder, the opened run and the models (the app's, as a pane's `session`)."""
        return cast("WorkbenchApp", self.app).session

    def compose(self) -> ComposeResult:
        with Vertical(id="diff-box"):
            yield Static("", id="diff-title")
            yield Static("", id="diff-counts")
            yield DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
            yield DataTable(id="diff-grammar", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#diff-table", DataTable)
        for label, key in (
            ("right", "right"),
            ("label", "label"),
            ("p_A", "p_a"),
            ("p_B", "p_b"),
            ("source", "source"),
            ("sentence", "sentence"),
        ):
            table.add_column(label, key=key)
        grammar = self.query_one("#diff-grammar", DataTable)
        grammar.add_columns("feature", "n", "A", "B", "B-A", "95%", "verdict")
        grammar.display = False
        table.focus()
        self.compare()

    def show_title(self) -> None:
        self.query_one("#diff-title", Static).update(
            Text.assemble(
                "A ",
                (self.run_a, "bold"),
                "  vs  B ",
                (self.run_b, "bold"),
                " · ",
                (self.split, "bold"),
                " (d) · escape closes",
            )
        )

    def compare(self) -> None:
        self.show_title()
        self.diff = None
        self.query_one("#diff-counts", Static).update(Text("comparing…", style="dim"))
        self.query_one("#diff-table", DataTable).clear()
        self.query_one("#diff-grammar", DataTable).clear()
        self.diff_worker(self.split)

    def action_toggle_grammar(self) -> None:
        """Switch the table between the disagreements and the per-feature comparison."""
        table, grammar = self.query_one("#diff-table", DataTable), self.query_one("#diff-grammar", DataTable)
        table.display, grammar.display = grammar.display, table.display
        (grammar if grammar.display else table).focus()

    def action_next_split(self) -> None:
        self.split = SPLITS[(SPLITS.index(self.split) + 1) % len(SPLITS)] if self.split in SPLITS else SPLITS[0]
        self.compare()

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff", name="diff runs")
    def diff_worker(self, split: str) -> None:
        from workbench.core.base.layout import run_path
        from workbench.core.evaluation.evaluate import predictions_file
        from workbench.core.explore.diff import DiffError, diff_runs

        folders = [run_path(self.runs_dir, self.run_a), run_path(self.runs_dir, self.run_b)]
        missing = [folder.name for folder in folders if not predictions_file(folder, split).is_file()]
        if missing:
            self.post_message(
                DiffReady(
                    split,
                    None,
                    f"no predictions recorded for {split} by {' and '.join(missing)}: e evaluates (and records it)",
                    missing,
                )
            )
            return
        try:
            diff = diff_runs(folders[0], folders[1], split)
        except DiffError as err:
            self.post_message(DiffReady(split, None, str(err)))
            return
        changes, note = grammar_changes(folders[0], folders[1], split)
        self.post_message(DiffReady(split, diff, phenomena=changes, phenomena_note=note))

    @work(thread=True, exclusive=True, exit_on_error=False, group="diff", name="evaluate for diff")
    def evaluate_worker(self, split: str, run_ids: list[str]) -> None:
        """Evaluate each run of RUN_IDS on SPLIT (of its own data and split) and record it, then compare."""
        from workbench.core.base.layout import RunError, model_folder, run_path
        from workbench.core.evaluation.datasets import ScoredData
        from workbench.core.evaluation.evaluate import evaluate_and_record

        for run_id in run_ids:
            folder = run_path(self.runs_dir, run_id)
            try:
                model_folder(folder)
            except RunError as err:
                self.post_message(DiffReady(split, None, str(err), run_ids))
                return
            predictor, _, _ = self.session.get_predictor(run_id)
            frame = self.session.data_for(run_id)[split]
            evaluate_and_record(
                predictor.model, predictor.tokenizer, ScoredData(split, frame, ""), folder, predictor.max_length
            )
        self.app.call_from_thread(self.compare)

    def action_evaluate_missing(self) -> None:
        if not self.missing:
            self.notify("both runs have predictions for this split", severity="information")
            return
        self.query_one("#diff-counts", Static).update(
            Text(f"evaluating {' and '.join(self.missing)} on {self.split}…", style="dim")
        )
        self.evaluate_worker(self.split, list(self.missing))

    def on_diff_ready(self, message: DiffReady) -> None:
        message.stop()
        if message.split != self.split:
            return  # the user switched split meanwhile
        counts = self.query_one("#diff-counts", Static)
        table = self.query_one("#diff-table", DataTable)
        table.clear()
        self.diff, self.missing = message.diff, list(message.missing)
        if message.diff is None:
            counts.update(Text(message.error, style="yellow" if message.missing else "red"))
            table.border_title = ""
            return
        diff = message.diff
        counts.update(counts_text(diff))
        self.show_grammar(message.phenomena, message.phenomena_note)
        for d in diff.disagreements:
            right = Text(d.right.upper(), style="bold")
            table.add_row(right, str(d.label), f"{d.p_a:.3f}", f"{d.p_b:.3f}", Text(d.source[:8]), Text(d.sentence))
        table.border_title = (
            f"they disagree on {len(diff.disagreements)} of {diff.n} (largest gap first); "
            "right: the run that got it right"
            if diff.disagreements
            else f"they agree on all {diff.n} sentences"
        )

    def show_grammar(self, changes: Any, note: str) -> None:
        grammar = self.query_one("#diff-grammar", DataTable)
        grammar.clear()
        if changes is None:
            grammar.add_row(Text(note), "", "", "", "", "", "")
            grammar.border_title = "grammar phenomena (g: back)"
            return
        for kind in ("major", "minor"):
            for c in changes:
                if c.kind == kind:
                    verdict = Text(c.verdict, style="bold" if c.verdict in ("B better", "B worse") else "dim")
                    grammar.add_row(
                        Text(c.feature if kind == "major" else f" {c.feature}"),
                        str(c.n),
                        f"{c.mcc_a:+.2f}",
                        f"{c.mcc_b:+.2f}",
                        f"{c.delta:+.2f}",
                        f"{c.delta_low:+.2f}…{c.delta_high:+.2f}",
                        verdict,
                    )
        grammar.border_title = "MCC per grammatical feature, B - A, paired 95% bootstrap (g: back)"

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a disagreement: try the sentence in Predict."""
        if event.data_table.id != "diff-table":
            return
        if self.diff is None or not 0 <= event.cursor_row < len(self.diff.disagreements):
            return
        sentence = self.diff.disagreements[event.cursor_row].sentence
        self.dismiss(None)
        self.app.post_message(SendToPredict(sentence))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            from workbench.tui.errors import describe_error

            error = describe_error(event.worker.error)
            self.query_one("#diff-counts", Static).update(Text(f"{event.worker.name} failed: {error}", style="red"))
            self.notify(f"{event.worker.name} failed: {error}", severity="error")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
