"""Why the model says what it says: token attributions shaded by direction and strength, and minimal pairs.

`ExplainPanel` sits under the Predict pane's probabilities: it asks core `explain` (and, with a pinned
sentence, core `minimal_pair`) in a thread worker for the latest sentence only; the sentence box's own
prediction never waits for it. Colour shades each token (green toward acceptable, red toward
unacceptable, deeper when stronger); with NO_COLOR every token carries one to three marks instead
(▲▲▲ / ▼ ..., by strength against the strongest), and changed words of a pair stand in [brackets].
Every view says how much the attributions explain (core `completeness`) and warns when the integral
has not converged; a pair shows both sentences' attributions on one scale and whether the model
separates them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Static
from textual.worker import Worker, WorkerState, get_current_worker

from workbench.tui.messages import AttributionsReady, PairReady, StatusChanged, WorkerFailed

if TYPE_CHECKING:
    from workbench.tui.app import WorkbenchApp
    from workbench.tui.session import Session

EXPLAIN_DEBOUNCE_S = 0.15  # after the sentence box's own (debounced) prediction
UP, DOWN = "▲", "▼"
NEUTRAL = 0.05  # below this share of the strongest token: no shade, no mark
STRONG = 0.5  # from this share on: bold
# background shades, weakest to strongest (readable with the default light text on a dark theme)
GREENS = ("#1d3b26", "#235a31", "#2a7a3d", "#33a04c")
REDS = ("#47201f", "#6b2624", "#922d29", "#bb352f")


def shown_tokens(
    tokens: list[str], attributions: list[float], special_tokens: Iterable[str] = ()
) -> list[tuple[str, float]]:
    """(token, attribution) pairs without the special tokens ([CLS], [SEP]: always 0)."""
    special = set(special_tokens)
    return [(token, value) for token, value in zip(tokens, attributions, strict=True) if token not in special]


def mark_count(strength: float) -> int:
    """1 to 3 marks for a strength (share of the strongest token's attribution): thirds."""
    return 1 + min(2, int(strength * 3))


def attribution_text(
    tokens: list[str],
    attributions: list[float],
    special_tokens: Iterable[str] = (),
    marks: bool = False,
    scale: float | None = None,
) -> Text:
    """The tokens separated by spaces, each shaded by direction and strength (relative to the strongest,
    or to SCALE); with MARKS (NO_COLOR) each carries 1-3 ▲ (toward acceptable) or ▼ (toward unacceptable)
    by strength, bold when strong."""
    shown = shown_tokens(tokens, attributions, special_tokens)
    scale = scale or max((abs(value) for _, value in shown), default=0.0) or 1.0
    text = Text()
    for position, (token, value) in enumerate(shown):
        if position:
            text.append(" ")
        strength = abs(value) / scale
        if strength < NEUTRAL:
            text.append(token, style="dim")
            continue
        level = min(3, int(strength * 4))
        if marks:
            text.append(
                (UP if value > 0 else DOWN) * mark_count(strength) + token, style="bold" if strength >= STRONG else ""
            )
        else:
            shade = (GREENS if value > 0 else REDS)[level]
            text.append(token, style=Style(bgcolor=shade, color="#ffffff", bold=strength >= STRONG))
    return text


def legend(explanation: Any, marks: bool, trained: bool = True) -> Text:
    """What the shades mean and the method; then how much the attributions explain (the sentence's
    log-odds, the baseline's, their sum and its share of the change); a warning line when the
    convergence error is large against the change."""
    from workbench.core.explore.explain import completeness, convergence_warning, describe_method

    text = Text("why ", style="bold")
    if marks:
        text.append(f"{UP}acceptable {DOWN}unacceptable ({UP * 3} strongest)", style="dim")
    else:
        text.append("acceptable", style=Style(bgcolor=GREENS[2], color="#ffffff"))
        text.append(" ")
        text.append("unacceptable", style=Style(bgcolor=REDS[2], color="#ffffff"))
    text.append(f" · {describe_method(explanation)}", style="dim")
    if explanation.truncated:
        text.append(" · truncated", style="yellow")
    if not trained:
        text.append(" · untrained model", style="yellow")
    text.append("\n")
    text.append(completeness(explanation), style="dim" if explanation.converged else "")
    warning = convergence_warning(explanation)
    if warning:
        text.append("\n")
        text.append(f"⚠ {warning}", style="bold yellow")
    return text


def attributions_of(predictor: Any, sentence: str, trained: bool) -> AttributionsReady:
    """SENTENCE's token attributions by PREDICTOR's model (core `explain`), as the message the views take;
    call it from a worker (it runs the model)."""
    from workbench.core.explore.explain import explain
    from workbench.core.model.predict import InputError

    special = frozenset(predictor.tokenizer.all_special_tokens) - {predictor.tokenizer.unk_token}
    try:
        explanation = explain(predictor.model, predictor.tokenizer, sentence, predictor.max_length)
    except InputError as err:
        return AttributionsReady(sentence, None, error=str(err))
    return AttributionsReady(sentence, explanation, special, trained)


class AttributionView(Static):
    """A sentence's tokens shaded by their attribution, under a one-line legend; or a message. Compact
    (where rows are few): one line, `why` and the tokens, then their sum against the change."""

    DEFAULT_CSS = "AttributionView { height: auto; max-height: 8; }"

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__("", id=id)
        self.explanation: Any = None
        self.message = ""
        self.special_tokens: tuple[str, ...] = ()
        self.trained = True
        self.compact = False

    @property
    def marks(self) -> bool:
        return bool(getattr(self.app, "no_color", False))

    def show(self, explanation: Any, special_tokens: Iterable[str] = (), trained: bool = True) -> None:
        self.explanation, self.message = explanation, ""
        self.special_tokens, self.trained = tuple(special_tokens), trained
        self.update(self.explanation_text(self.compact))

    def explanation_text(self, compact: bool) -> Text:
        explanation = self.explanation
        tokens = attribution_text(explanation.tokens, explanation.attributions, self.special_tokens, self.marks)
        if not compact:
            text = legend(explanation, self.marks, self.trained)
            text.append("\n")
            text.append_text(tokens)
            return text
        from workbench.core.explore.explain import convergence_warning

        text = Text("why ", style="bold")
        text.append_text(tokens)
        text.append(f"  sum {explanation.attribution_sum:+.2f} of the change {explanation.change:+.2f}", style="dim")
        if convergence_warning(explanation):
            text.append(" · ⚠ not converged", style="bold yellow")
        if explanation.truncated:
            text.append(" · truncated", style="yellow")
        if not self.trained:
            text.append(" · untrained model", style="yellow")
        return text

    def rows(self, width: int, compact: bool) -> int:
        """The rows the explanation takes at WIDTH, compact or not."""
        if self.explanation is None:
            return 1
        return len(self.explanation_text(compact).wrap(self.app.console, max(1, width)))

    def set_compact(self, compact: bool) -> None:
        if compact != self.compact:
            self.compact = compact
            if self.explanation is not None:
                self.update(self.explanation_text(compact))

    def show_message(self, message: str, style: str = "dim") -> None:
        self.explanation, self.message = None, message
        self.update(Text(message, style=style))


def marked_words(words: list[tuple[str, bool]], marks: bool) -> Text:
    """Words of one side of a pair, the changed ones underlined (and in [brackets] with MARKS)."""
    text = Text()
    for position, (word, changed) in enumerate(words):
        if position:
            text.append(" ")
        if changed:
            text.append(f"[{word}]" if marks else word, style="bold underline")
        else:
            text.append(word)
    return text


def pair_text(pair: Any, marks: bool, special_tokens: Iterable[str] = ()) -> Text:
    """Both sentences with their label and p(acceptable), the changed words marked, each sentence's
    attributions (on one scale, so that the two compare), the change and whether the model separates them."""
    special = frozenset(special_tokens)
    explained = [e for e in (pair.explanation_a, pair.explanation_b) if e is not None]
    scale = (
        max(
            (abs(v) for e in explained for t, v in zip(e.tokens, e.attributions, strict=True) if t not in special),
            default=0.0,
        )
        or None
    )
    text = Text()
    for name, label, probabilities, words, explanation in (
        ("A pinned", pair.label_a, pair.probabilities_a, pair.words_a, pair.explanation_a),
        ("B typed ", pair.label_b, pair.probabilities_b, pair.words_b, pair.explanation_b),
    ):
        text.append(f"{name} p(ok) {probabilities['acceptable']:.3f} ", style="bold")
        text.append(f"{label:<12} ", style="green" if label == "acceptable" else "red")
        text.append_text(marked_words(words, marks))
        text.append("\n")
        if explanation is not None:
            text.append("  why ", style="dim")
            text.append_text(attribution_text(explanation.tokens, explanation.attributions, special, marks, scale))
            text.append(f"  sum {explanation.attribution_sum:+.2f}", style="dim")
            text.append("\n")
    change = pair.delta_acceptable
    text.append("B − A: ")
    text.append(f"{change:+.3f}", style="bold " + ("green" if change > 0 else "red" if change < 0 else ""))
    text.append(" · ")
    text.append(pair.verdict(), style="yellow" if not pair.separated else "")
    return text


class PairView(Static):
    """The pinned sentence against the typed one; hidden while nothing is pinned."""

    DEFAULT_CSS = "PairView { height: auto; max-height: 9; display: none; }"

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__("", id=id)
        self.pair: Any = None
        self.model_label = ""

    def show_pair(self, pair: Any, model_label: str = "", special_tokens: Iterable[str] = ()) -> None:
        self.pair = pair
        self.model_label = model_label
        text = pair_text(pair, bool(getattr(self.app, "no_color", False)), special_tokens)
        if model_label:
            text.append(f" · by {model_label}", style="dim")
        self.update(text)

    def show_message(self, message: str) -> None:
        self.pair = None
        self.update(Text(message))

    def on_resize(self) -> None:
        panel = self.parent
        if isinstance(panel, ExplainPanel):
            panel.fit()  # the pair's rows changed: what is left for the attributions did


class ExplainPanel(Vertical):
    """Attributions of the latest sentence (and its minimal pair with the pinned one), from a worker."""

    DEFAULT_CSS = "ExplainPanel { height: auto; padding: 0 1; }"

    def __init__(self, id: str | None = None) -> None:  # noqa: A002 (Textual's name)
        super().__init__(id=id)
        self.wanted = ""  # the sentence whose answers are shown; any other answer is stale
        self.pinned: Any = None  # a workbench.core.model.predict.Prediction
        self._debounce: Timer | None = None
        self._asked: tuple[str | None, str, str | None] | None = None
        self._run_id: str | None = None  # the run whose model the latest request asked
        self.room: int | None = None  # the rows it may take (see fit), None: what it needs
        self._max_rows: int | None = None  # the max-height set

    @property
    def session(self) -> Session:
        """The runs folder, the opened run and the models (the app's, as a pane's `session`)."""
        return cast("WorkbenchApp", self.app).session

    def compose(self) -> ComposeResult:
        yield PairView(id="pair-view")
        yield AttributionView(id="attributions")

    @property
    def attributions(self) -> AttributionView:
        return self.query_one(AttributionView)

    def fit_to(self, room: int | None) -> None:
        """Take at most ROOM rows (what the Predict pane's history leaves), the attributions compact
        where they would not fit whole under the pinned pair."""
        self.room = room
        self.fit()

    def on_resize(self) -> None:
        self.fit()  # another width: other rows

    def fit(self) -> None:
        rows = None
        if self.room is None:
            self.attributions.set_compact(False)
        else:
            pair = self.query_one(PairView)
            pair_rows = pair.outer_size.height if pair.display else 0
            full = self.attributions.rows(self.content_size.width, compact=False)
            self.attributions.set_compact(pair_rows + full > self.room)
            rows = max(1, self.room)
        if rows != self._max_rows:
            self._max_rows = rows
            self.styles.max_height = rows

    @property
    def explanation(self) -> Any:
        return self.attributions.explanation

    def request(self, run_id: str | None, sentence: str) -> None:
        """Explain SENTENCE soon (after a short pause in typing); answers for any earlier one are dropped."""
        self._run_id = run_id
        asked = (run_id, sentence, self.pinned_sentence)
        if sentence == self.wanted and asked == self._asked:
            return  # the same sentence again (enter after typing): its answer is shown or on its way
        self.wanted, self._asked = sentence, asked
        if self._debounce is not None:
            self._debounce.stop()
        pinned = self.pinned_sentence
        self._debounce = self.set_timer(EXPLAIN_DEBOUNCE_S, lambda: self.explain_worker(run_id, sentence, pinned))

    def clear(self, message: str = "") -> None:
        """No sentence to explain (an empty box, a refused sentence): say why, drop what is pending."""
        self.wanted, self._asked = "", None
        if self._debounce is not None:
            self._debounce.stop()
        self.attributions.show_message(message, "red" if message else "dim")

    @property
    def pinned_sentence(self) -> str | None:
        return self.pinned.sentence if self.pinned is not None else None

    def pin(self, prediction: Any, model_label: str = "") -> None:
        self.pinned = prediction
        self._asked = None  # the pair is asked again, with this pin
        view = self.query_one(PairView)
        view.display = True
        by = f" by {model_label}" if model_label else ""
        view.show_message(
            f"pinned A: {prediction.sentence}\n  p(ok) {prediction.probabilities['acceptable']:.3f}"
            f"{by} · now type a variant B; ctrl+t unpins"
        )
        if self.wanted and self.wanted != prediction.sentence:  # a variant is typed: its pair, anew
            self.request(self.session.current_run, self.wanted)

    def mark_stale(self, model_label: str) -> None:
        """The opened model changed: the pinned figures are another model's until recomputed."""
        view = self.query_one(PairView)
        if self.pinned is not None:
            view.show_message(
                f"pinned A: {self.pinned.sentence}\n  recomputing with {model_label}… "
                "(the figures shown were another model's)"
            )

    def unpin(self) -> None:
        self.pinned = None
        self.query_one(PairView).display = False
        self.fit()

    @work(thread=True, exclusive=True, exit_on_error=False, group="explain", name="attributions")
    def explain_worker(self, run_id: str | None, sentence: str, pinned: str | None) -> None:
        """With a pinned sentence: the pair and both sentences' attributions (one batched explain_many);
        else the sentence's attributions. A cancelled worker (a newer sentence came: exclusive) posts
        nothing more."""
        from workbench.core.explore.explain import minimal_pair
        from workbench.core.model.predict import InputError

        worker = get_current_worker()
        predictor, model_label, trained = self.session.get_predictor(run_id, on_status=self.post_message)
        special = frozenset(predictor.tokenizer.all_special_tokens) - {predictor.tokenizer.unk_token}
        answer: AttributionsReady | None = None
        if pinned is not None:
            try:
                pair = minimal_pair(
                    predictor.model, predictor.tokenizer, pinned, sentence, predictor.max_length, attributions=True
                )
                result = PairReady(
                    pinned, sentence, pair, model_label=model_label, run_id=run_id, special_tokens=special
                )
                if pair.explanation_b is not None:
                    answer = AttributionsReady(sentence, pair.explanation_b, special, trained)
            except InputError as err:
                result = PairReady(pinned, sentence, None, error=str(err), model_label=model_label, run_id=run_id)
            if worker.is_cancelled:
                return
            self.post_message(result)
        if worker.is_cancelled:
            return
        if answer is None:
            answer = attributions_of(predictor, sentence, trained)
        if not worker.is_cancelled:
            self.post_message(answer)
            self.post_message(StatusChanged("ready"))

    def on_attributions_ready(self, message: AttributionsReady) -> None:
        message.stop()
        if message.sentence != self.wanted:
            return  # an older sentence's answer, arriving after a newer keystroke
        if message.explanation is None:
            self.attributions.show_message(f"no attributions: {message.error}", "red")
        else:
            self.attributions.show(message.explanation, message.special_tokens, message.trained)
            self.fit()

    def on_pair_ready(self, message: PairReady) -> None:
        message.stop()
        if message.sentence != self.wanted or message.pinned != self.pinned_sentence or message.run_id != self._run_id:
            return  # another sentence's, another pin's or another model's pair
        view = self.query_one(PairView)
        if message.pair is None:
            view.show_message(f"pinned A: {message.pinned}\n  B: {message.error}")
        else:
            view.show_pair(message.pair, message.model_label, message.special_tokens)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            from workbench.tui.errors import describe_error

            self.post_message(WorkerFailed(event.worker.name, describe_error(event.worker.error)))
            self.attributions.show_message(f"attributions failed: {describe_error(event.worker.error)}", "red")
