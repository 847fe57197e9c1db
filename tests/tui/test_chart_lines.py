"""A chart's lines go from plotext's text straight to strips (charts.AnsiLines): cell for cell what
Textual makes of the same picture read by Rich (`Text.from_ansi`, then `Visual.to_strips`), in colour and
without, with several series, markers, a log scale and a best-epoch star."""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.strip import Strip
from textual.visual import Visual, visualize

from workbench.tui.widgets.charts import Histogram, SeriesChart


def cells(strip: Strip) -> list[tuple[str, Any, Any, Any, Any, Any]]:
    """Each cell's character and look (the offsets Textual adds for the mouse aside)."""
    return [
        (char, seg.style.color, seg.style.bgcolor, seg.style.bold, seg.style.dim, seg.style.reverse)
        for seg in strip
        if seg.style is not None
        for char in seg.text
    ]


class Charts(App[None]):
    def compose(self) -> ComposeResult:
        yield SeriesChart("loss", ["loss", "val"], xlabel="step", smoothed=["loss"], raw_marker="dot", id="loss")
        yield SeriesChart("lr", ["lr"], xlabel="step", scientific=True, legend=False, id="lr")
        yield Histogram("lengths", id="hist")


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light", "no colour"])
async def test_chart_lines_are_what_textual_makes_of_the_same_picture(theme: str) -> None:
    app = Charts()
    async with app.run_test(size=(72, 36)) as pilot:
        if theme == "no colour":
            for chart in app.query(SeriesChart):
                chart.theme = "clear"
        else:
            app.theme = theme
        loss, lr = app.query_one("#loss", SeriesChart), app.query_one("#lr", SeriesChart)
        for step in range(1, 400):
            loss.add("loss", step, 0.7 - step * 1e-3 + (step % 7) * 0.02)
            lr.add("lr", step, 3e-5 * min(step / 40, (400 - step) / 360))
        for epoch in range(1, 5):
            loss.add("val", epoch * 100, 0.6 - epoch * 0.05)
        loss.log_y = True
        loss.highlight = ((300.0, 0.45), "best epoch")
        app.query_one("#hist", Histogram).set_values([3, 5, 5, 6, 8, 8, 8, 9, 12, 20, 31])
        for chart in (loss, lr, app.query_one("#hist", Histogram)):
            chart.mark_dirty()
            chart.redraw_if_dirty()
        await pilot.pause()
        for chart in (loss, lr, app.query_one("#hist", Histogram)):
            width, height = chart.size
            fast = [chart.render_line(y) for y in range(height)]
            textual = Visual.to_strips(chart, visualize(chart, chart.render()), width, height, chart.visual_style)
            assert len(fast) == len(textual) == height
            for y, (ours, theirs) in enumerate(zip(fast, textual, strict=True)):
                assert ours.cell_length == theirs.cell_length == width, (chart.id, y)
                assert cells(ours) == cells(theirs), (chart.id, y)
            assert any(cells(line) != cells(fast[0]) for line in fast)  # a picture, not blank lines


async def test_a_redraw_on_screen_never_reads_the_picture_as_rich_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lever itself: while a chart follows new points, the screen takes its strips without
    `Text.from_ansi` (and Textual's conversion of that text), the larger half of the app's drawing."""
    from rich.text import Text

    reads: list[str] = []
    from_ansi = Text.from_ansi
    monkeypatch.setattr(
        Text, "from_ansi", classmethod(lambda cls, text, **kw: reads.append(text) or from_ansi(text, **kw))
    )
    app = Charts()
    async with app.run_test(size=(72, 36)) as pilot:
        loss = app.query_one("#loss", SeriesChart)
        for step in range(1, 50):
            loss.add("loss", step, 1 / step)
        loss.mark_dirty()
        loss.redraw_if_dirty()
        await pilot.pause()
        assert loss.redraws >= 1
        assert "loss" in "".join(segment.text for segment in loss.render_line(0))
    assert reads == []
