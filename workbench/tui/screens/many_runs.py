"""Seed groups and sweeps (Runs pane, `G`): what `workbench runs` and `workbench sweep show` print;
`s` makes a greedy soup of the selected group (`n` selects the next), as `workbench soup --greedy`."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from workbench.tui.messages import ManyRunsRead, SoupMade, WorkerFailed


def many_runs_text(runs_dir: Path) -> str:
    """Every seed group's spread and every sweep study's summary in RUNS_DIR (core/groups.py, core/sweep.py)."""
    from workbench.core.base.layout import RunError
    from workbench.core.search.groups import group_summary, list_groups
    from workbench.core.search.storage import default_storage, sweep_database
    from workbench.core.search.summary import study_names, sweep_summary

    parts: list[str] = []
    for group in list_groups(runs_dir):
        parts.append("\n".join(group_summary(runs_dir, group).lines()))
    if sweep_database(runs_dir).is_file():
        storage = default_storage(runs_dir)
        try:
            for study in study_names(storage):
                parts.append("\n".join(sweep_summary(study, storage).lines()))
        except RunError as err:
            parts.append(f"sweeps: {err}")
    if not parts:
        return (
            f"no seed groups or sweeps in {runs_dir}: `workbench train --seeds 42,43,44 --name NAME` makes a "
            "group, `workbench sweep --trials N` a sweep"
        )
    return "\n\n".join(parts)


class ManyRunsScreen(ModalScreen[None]):
    """Seed groups (median, min, max) and sweep studies (best trial, importances, top trials); escape closes."""

    BINDINGS = [
        Binding("escape,q,G", "dismiss", "Close"),
        Binding("s", "soup", "Soup", tooltip="average the selected group's finished members (greedy soup)"),
        Binding("n", "next_group", "Next group"),
    ]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.text = ""
        self.groups: list[str] = []
        self.selected = 0  # index into groups: the group `s` soups

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-box"):
            yield Static("reading groups and sweeps…", id="many-text")

    def on_mount(self) -> None:
        self.query_one("#detail-box").border_title = "seed groups and sweeps · escape closes"
        self.read()

    @work(thread=True, exclusive=True, exit_on_error=False, name="groups and sweeps")
    def read(self) -> None:
        from workbench.core.search.groups import list_groups

        groups: list[str] = []
        try:
            text = many_runs_text(self.runs_dir)
            groups = list_groups(self.runs_dir)
        except Exception as err:  # noqa: BLE001 - a damaged group or study file: say so, keep the app
            text = f"cannot read the groups and sweeps: {type(err).__name__}: {err}"
        self.post_message(ManyRunsRead(text, groups))

    def on_many_runs_read(self, message: ManyRunsRead) -> None:
        self.text = message.text
        self.groups = message.groups
        self.selected = min(self.selected, max(0, len(self.groups) - 1))
        self.query_one("#many-text", Static).update(Text(message.text))  # names and paths: never markup
        self._show_selection()

    def _show_selection(self) -> None:
        box = self.query_one("#detail-box")
        if self.groups:
            box.border_subtitle = f"s: soup of {self.groups[self.selected]} · n: next group"
        else:
            box.border_subtitle = ""

    def action_next_group(self) -> None:
        if self.groups:
            self.selected = (self.selected + 1) % len(self.groups)
            self._show_selection()

    def action_soup(self) -> None:
        if not self.groups:
            self.notify(
                "no seed group to make a soup of: `workbench train --seeds 42,43,44 --head-seed 1 "
                "--name NAME` makes one",
                severity="warning",
            )
            return
        group = self.groups[self.selected]
        self.notify(f"making a greedy soup of {group}…")
        self.make_soup(group)

    @work(thread=True, exclusive=True, exit_on_error=False, name="soup")
    def make_soup(self, group: str) -> None:
        from workbench.core.search.groups import group_summary
        from workbench.core.search.soup import make_soup

        members = [
            m.run
            for m in group_summary(self.runs_dir, group).members
            if m.status == "done" and (m.path / "model").is_dir()
        ]
        name, n = f"{group}-soup", 1
        while (self.runs_dir / name).exists():
            n += 1
            name = f"{group}-soup-{n}"
        result = make_soup(self.runs_dir, members, name, greedy=True)
        self.post_message(SoupMade(name, "\n".join(result.lines())))

    def on_soup_made(self, message: SoupMade) -> None:
        lines = message.text.splitlines()
        scores = [line.strip() for line in lines if line.strip().startswith(("validation", "holdout"))]
        self.notify("\n".join([lines[0], *scores]), title=f"soup {message.run} made", timeout=10)
        self.read()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # StateChanged does not bubble: failures go to the app's one handler (a notification)
        if event.state == WorkerState.ERROR:
            from workbench.tui.errors import describe_error

            self.app.post_message(WorkerFailed(event.worker.name, describe_error(event.worker.error)))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
