"""The likely label errors of the training data, opened from the Data pane (`i`): the newest
label_issues.tsv in the runs folder, as `workbench data issues` wrote it (cleanlab's ranking of the
out-of-fold probabilities, the map's region beside each sentence), most likely first.

Each sentence's labels are reviewed here as in the map (screens/review.py: f flip, d drop, k keep, n note,
u undo, t train with the decisions); the detail line says why the sentence is ranked where it is. Read by a
worker; a runs folder without issues gets the command that makes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from workbench.tui.messages import LabelIssuesRead, SentenceHighlighted
from workbench.tui.screens.review import Reviewed, ReviewScreen
from workbench.tui.widgets.sentence_table import SentenceTable, decision_cell, decision_text


class IssuesTable(SentenceTable):
    """The issues: rank, the out-of-fold p(given label) (`p(y)`), the label (as a review decided it: `1→0`, `1 drop`,
    `1 keep`) and the map's region, the sentence taking the rest of the width. A row: a core LabelIssue."""

    COLUMNS = (("#", 5), ("p(y)", 5), ("label", 7), ("region", 10))

    def cells(self, row: Any) -> list[Text]:
        decided = self.decision_of(row.line, row.sentence)
        label = Text(str(row.label)) if decided is None else decision_cell(row.label, decided.decision)
        return [
            Text(str(row.rank)),
            Text(f"{row.p_label:.2f}"),
            label,
            Text(row.region or "—"),
            Text(row.sentence),
        ]


def agreement_text(folder: Path) -> str:
    """The agreement line of FOLDER's label_issues.json (cleanlab against the map's hard region), or ""."""
    from workbench.core.explore.label_issues import REPORT_FILE

    try:
        report = json.loads((folder / REPORT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    agreement = report.get("agreement") if isinstance(report, dict) else None
    if not isinstance(agreement, dict):
        return ""
    try:
        return (
            f" · {int(agreement['issues_in_hard'])} of {int(agreement['issues_mapped'])} in the hard region of"
            f" {agreement['map_run']}'s map (by chance {float(agreement['expected_in_hard']):.1f})"
        )
    except (KeyError, TypeError, ValueError):
        return ""


class LabelIssuesScreen(ReviewScreen):
    """The runs folder's newest likely label errors; escape closes."""

    BINDINGS = [Binding("escape,q,i", "dismiss", "Close")]
    TABLE, TITLE, WHAT = "issues-table", "issues-title", "label issues"

    def __init__(self, runs_dir: Path, overrides_file: Path) -> None:
        super().__init__(overrides_file)
        self.runs_dir = runs_dir
        self.issues: list[Any] | None = None  # core LabelIssue, most likely first

    def compose(self) -> ComposeResult:
        with Vertical(id="issues-box"):
            yield Static("", id="issues-title")
            yield IssuesTable(id="issues-table")
            yield Static("", id="issues-detail")
            yield from self.review_widgets()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#issues-title", Static).update(Text("reading the likely label errors…", style="dim"))
        self.query_one("#issues-table", IssuesTable).focus()
        self.read_decisions()
        self.read_worker()

    @work(thread=True, exclusive=True, exit_on_error=False, group="issues", name="label issues")
    def read_worker(self) -> None:
        from workbench.core.explore.label_issues import LabelIssuesError, issues_file, read_label_issues

        try:
            path = issues_file(self.runs_dir)
            issues = read_label_issues(path)
            self.post_message(LabelIssuesRead(str(path), issues, agreement=agreement_text(path.parent)))
        except LabelIssuesError as err:
            self.post_message(LabelIssuesRead("", None, error=str(err)))
        except OSError as err:
            self.post_message(LabelIssuesRead("", None, error=f"{self.runs_dir}: {err.strerror or err}"))

    def on_label_issues_read(self, message: LabelIssuesRead) -> None:
        message.stop()
        title = self.query_one("#issues-title", Static)
        if message.issues is None:
            title.update(
                Text.assemble(
                    (message.error, "red"),
                    "\nworkbench data issues ranks them (K short fold trainings; its --help says the cost)",
                )
            )
            return
        self.issues = message.issues
        path = Path(message.path)
        title.update(
            Text.assemble(
                (path.parent.name, "bold"),
                f" · {len(self.issues)} likely label errors{message.agreement}",
            )
        )
        table = self.query_one("#issues-table", IssuesTable)
        table.set_rows(self.issues)
        table.border_title = "most likely first: lowest out-of-fold p(given label)"
        self.show_highlighted()

    def on_sentence_highlighted(self, message: SentenceHighlighted) -> None:
        message.stop()
        self.show_highlighted()

    def show_highlighted(self) -> None:
        """The highlighted issue: its figures, its decision, its sentence."""
        view = self.query_one("#issues-detail", Static)
        issue = self.current()
        if issue is None:
            view.update("")
            return
        label = "acceptable" if issue.label else "unacceptable"
        text = Text.assemble(
            (f"#{issue.rank}", "bold"),
            f" labelled {label}, p({label}) {issue.p_label:.2f} out of fold {issue.fold}",
            f" · map: {issue.region}, confidence {issue.map_confidence:.2f}"
            if issue.map_confidence is not None
            else "",
            "\n",
        )
        decided = self.decision_for(self.reviewed(issue))
        if decided is not None:
            text.append_text(decision_text(decided))
            text.append(" · ")
        text.append(issue.sentence)
        view.update(text)

    def current(self) -> Any:
        row = self.query_one("#issues-table", IssuesTable).cursor_row
        if self.issues is None or not 0 <= row < len(self.issues):
            return None
        return self.issues[row]

    # ------------------------------------------------------------ the review (screens/review.py)

    @staticmethod
    def reviewed(issue: Any) -> Reviewed:
        return Reviewed(issue.line, issue.sentence, issue.label)

    def highlighted(self) -> Reviewed | None:
        issue = self.current()
        return None if issue is None else self.reviewed(issue)
