"""Horizontal probability bars for the two CoLA labels, acceptable first."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from workbench.core.base.config import LABELS
from workbench.tui.style import tone

TONES = {"acceptable": "good", "unacceptable": "bad"}


def bar_order() -> tuple[str, ...]:
    """The labels top to bottom (and the order logits are printed in): acceptable first."""
    return tuple(reversed(LABELS))


def bar_line(label: str, probability: float, width: int, style: str = "") -> Text:
    """`label  ████████░░░░  73.4%`: a bar WIDTH cells wide, filled by PROBABILITY."""
    probability = min(1.0, max(0.0, probability))
    filled = round(probability * width)
    line = Text(f"{label:<13}")
    line.append("█" * filled, style=style)
    line.append("░" * (width - filled), style=tone("muted"))
    line.append(f" {probability:6.1%}")
    return line


class ProbabilityBars(Widget):
    """Softmax probability of each label as a bar, and the predicted label."""

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.probabilities: dict[str, float] = {}
        self.predicted = ""

    def show(self, probabilities: dict[str, float], predicted: str) -> None:
        self.probabilities = dict(probabilities)
        self.predicted = predicted
        self.refresh()

    def clear(self) -> None:
        self.show({}, "")

    def render(self) -> Text:
        width = max(10, self.size.width - 22)
        text = Text()
        for label in bar_order():
            text.append_text(bar_line(label, self.probabilities.get(label, 0.0), width, tone(TONES[label])))
            text.append("\n")
        if self.predicted:
            text.append("prediction: ")
            text.append(self.predicted, style="bold " + tone(TONES.get(self.predicted, "")))
        else:
            text.append("prediction: —", style=tone("muted"))
        return text
