"""The Train pane's settings form: a label and a field for each setting of `TrainConfig` the form shows,
and the line that says whether they make a valid training. Composed the first time the form is shown."""

from __future__ import annotations

from rich.text import Text
from textual.containers import Horizontal
from textual.widgets import Input, Label
from textual.widgets.input import Selection

from workbench.core.base.config import TrainConfig, form_fields, format_setting
from workbench.tui.keys import Field
from workbench.tui.style import tone, toned

FORM_FIELDS = [f.name for f in form_fields()]


def default_form_text() -> dict[str, str]:
    """Every setting of the form as text, at its default."""
    defaults = TrainConfig().to_dict()
    return {name: format_setting(defaults[name]) for name in FORM_FIELDS}


def form_rows(texts: dict[str, str], problems: dict[str, str]) -> list[Horizontal]:
    """The form's rows holding TEXTS, the fields with PROBLEMS marked."""
    rows = []
    for name in FORM_FIELDS:
        field = Field(
            texts[name],
            id=f"field-{name}",
            compact=True,
            classes="form-input -invalid" if name in problems else "form-input",
            select_on_focus=False,
            cursor_to_end=True,  # a digit typed is added, never replaces the value
        )
        field.set_reactive(Input.selection, Selection.cursor(0))  # the start of long values (model paths) shown
        rows.append(Horizontal(Label(name, classes="form-label"), field, classes="form-row"))
    return rows


def problems_text(problems: dict[str, str], config: TrainConfig | None) -> Text:
    """The form's verdict: each setting's problem, or valid (with the batch size 0 picks)."""
    if problems:
        text = Text()
        for name, problem in problems.items():
            text.append(f"✗ {name}", style=tone("bad"))
            text.append(f": {problem}\n")
        text.rstrip()
        return text
    text = toned("✓ valid: enter starts", "good")
    if config is not None and not config.batch_size:  # 0: the run picks it by the epochs; say which
        text.append(f" · batch {config.effective_batch_size}")
    return text
