"""`workbench explain`, `diff` and `neighbors`: why the model says what it says, from the shell.

A thin face over core/explain.py, core/diff.py and core/neighbors.py. Output is plain text legible
at 80 columns, direction shown by signs (never by colour alone), or JSON lines with --json."""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path
from typing import Any

from workbench.cli import learned
from workbench.cli.common import (
    EXIT_USAGE,
    CliError,
    allow_pickle_flag,
    count_limit,
    json_text,
    model_dir_of,
    whole_number,
)
from workbench.core.base.layout import RunError, is_run_folder
from workbench.core.explore.explain import STEP_SCHEDULE, explain_many, minimal_pair
from workbench.core.model.loading import load_model, load_tokenizer
from workbench.core.model.predict import InputError, clean_sentence
from workbench.core.runs.lookup import existing_run

WIDTH = 80
TOKEN_WIDTH = 16
BAR_WIDTH = 40


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add explain, diff and neighbors to SUBPARSERS."""
    explain_cmd = subparsers.add_parser(
        "explain", parents=[common], help="which tokens push a prediction, and how much"
    )
    explain_cmd.add_argument("run", help="run id or folder (or a saved model folder)")
    explain_cmd.add_argument("sentences", nargs="*")
    explain_cmd.add_argument("--versus", metavar="B", help="compare the sentence with a variant B (a minimal pair)")
    explain_cmd.add_argument("--json", action="store_true", help="one JSON object per sentence")
    explain_cmd.add_argument(
        "--steps",
        type=whole_number(2, 512),
        default=None,
        help="integration steps of Integrated Gradients (default: "
        f"{STEP_SCHEDULE[0]}, {' then '.join(map(str, STEP_SCHEDULE[1:]))} where the "
        "convergence error is large)",
    )
    explain_cmd.add_argument(
        "--max-length",
        type=whole_number(3, 8192),
        default=128,
        help="tokens read of each sentence (at least 3: [CLS], a token, [SEP]; default 128)",
    )
    allow_pickle_flag(explain_cmd)
    explain_cmd.set_defaults(func=cmd_explain)

    diff = subparsers.add_parser("diff", parents=[common], help="where two runs' predictions disagree")
    diff.add_argument("run_a", metavar="RUN_A")
    diff.add_argument("run_b", metavar="RUN_B")
    diff.add_argument(
        "--split",
        default="holdout",
        help="dataset both runs were evaluated on (default holdout; see `workbench eval --split`)",
    )
    diff.add_argument(
        "--limit", type=count_limit("disagreements"), default=20, help="disagreements to list (0: all; JSON lists all)"
    )
    diff.add_argument("--json", action="store_true")
    diff.add_argument(
        "--phenomena",
        action="store_true",
        help="per grammatical feature: where B is better or worse "
        "than A, with paired bootstrap intervals (--split in_domain_dev, holdout or both)",
    )
    diff.add_argument(
        "--map",
        action="store_true",
        help="the two runs' maps of the training data: how the sentences both trained on moved between "
        "regions, and those whose confidence changed most (--limit of them)",
    )
    diff.set_defaults(func=cmd_diff)

    neighbors = subparsers.add_parser(
        "neighbors", parents=[common], help="the training sentences nearest to a sentence, as the model sees them"
    )
    neighbors.add_argument("run", help="run id or folder (or a saved model folder)")
    neighbors.add_argument("sentences", nargs="*")
    neighbors.add_argument("--k", type=whole_number(1, 10_000), default=5, help="how many (default 5)")
    neighbors.add_argument("--json", action="store_true")
    allow_pickle_flag(neighbors)
    neighbors.set_defaults(func=cmd_neighbors)


def _load(args: argparse.Namespace) -> tuple[Any, Any, Path]:
    folder = model_dir_of(args)
    return load_model(str(folder), allow_pickle=args.allow_pickle), load_tokenizer(str(folder)), folder


# ---------------------------------------------------------------- explain


def format_explanation(explanation: Any, special_tokens: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Lines of text: the sentence, the prediction, then one line per token with its signed attribution
    and a bar of '+' (toward acceptable) or '-' (toward unacceptable) scaled to the largest; at most 80
    columns. Special tokens ([CLS], [SEP]: always 0) are left out."""
    probs = explanation.probabilities
    lines = textwrap.wrap(explanation.sentence, WIDTH, max_lines=3, placeholder=" ...") or [""]
    note = f"  (truncated to {len(explanation.tokens)} tokens)" if explanation.truncated else ""
    lines.append(f"  {explanation.label:<12}  p(acceptable) {probs['acceptable']:.3f}{note}")
    from workbench.core.explore.explain import completeness, convergence_warning, describe_method

    lines.append(f"  {describe_method(explanation)}")
    lines.append(f"  {completeness(explanation)}")
    warning = convergence_warning(explanation)
    if warning:
        lines.extend(textwrap.wrap(f"warning: {warning}", WIDTH - 2, initial_indent="  ", subsequent_indent="  "))
    shown = [
        (t, a) for t, a in zip(explanation.tokens, explanation.attributions, strict=True) if t not in special_tokens
    ]
    largest = max((abs(a) for _, a in shown), default=0.0)
    scale = largest or 1.0
    for token, value in shown:
        bar = ("+" if value > 0 else "-") * round(abs(value) / scale * BAR_WIDTH)
        name = token if len(token) <= TOKEN_WIDTH else token[: TOKEN_WIDTH - 1] + "~"
        number = f"{value:+9.3f}" if largest >= 0.01 else f"{value:+9.2e}"  # tiny values stay readable
        lines.append(f" {number}  {name:<{TOKEN_WIDTH}} {bar}".rstrip())
    return lines


def _clip(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _marked(words: list[tuple[str, bool]]) -> str:
    """Words with the changed ones in [brackets]."""
    return " ".join(f"[{w}]" if changed else w for w, changed in words)


def format_pair(pair: Any) -> list[str]:
    lines = []
    for name, label, probs, words in (
        ("A", pair.label_a, pair.probabilities_a, pair.words_a),
        ("B", pair.label_b, pair.probabilities_b, pair.words_b),
    ):
        lines.append(f"{name}  {label:<12}  p(acceptable) {probs['acceptable']:.3f}")
        lines.extend(textwrap.wrap(_marked(words), WIDTH - 4, initial_indent="    ", subsequent_indent="    "))
    lines.append(f"change in p(acceptable), B - A: {pair.delta_acceptable:+.3f}   ([words] differ)")
    lines.extend(textwrap.wrap(pair.verdict(), WIDTH))
    return lines


def cmd_explain(args: argparse.Namespace) -> int:
    steps = args.steps
    if not args.sentences:
        raise CliError("no sentence: pass one or more as arguments")
    if args.versus is not None and len(args.sentences) != 1:
        raise CliError("--versus compares one sentence with another: pass exactly one sentence before it")
    model, tokenizer, _ = _load(args)
    if args.versus is not None:
        pair = minimal_pair(
            model,
            tokenizer,
            args.sentences[0],
            args.versus,
            max_length=args.max_length,
            attributions=True,
            n_steps=steps,
        )
        if args.json:
            print(json_text(pair.to_dict(), ensure_ascii=False))
        else:
            special = set(tokenizer.all_special_tokens) - {tokenizer.unk_token}
            print("\n".join(format_pair(pair)))
            for name, explanation in (("A", pair.explanation_a), ("B", pair.explanation_b)):
                if explanation is not None:
                    print(f"\n{name}: " + "\n".join(format_explanation(explanation, special)))
        return 0
    special = set(tokenizer.all_special_tokens) - {tokenizer.unk_token}
    status = 0
    explained = explain_many(model, tokenizer, args.sentences, max_length=args.max_length, n_steps=steps)
    for number, answer in enumerate(explained):  # all in batches of similar length
        if isinstance(answer, InputError):
            print(f"error: {answer}", file=sys.stderr)
            status = EXIT_USAGE
            continue
        if args.json:
            print(json_text(answer.to_dict(), ensure_ascii=False))
        else:
            if number:
                print()
            print("\n".join(format_explanation(answer, special)))
    return status


# ---------------------------------------------------------------- diff


def format_diff(result: Any, name_a: str, name_b: str, split: str, limit: int = 20) -> list[str]:
    lines = [_clip(f"A {name_a}  vs  B {name_b}: {split}, {result.n} sentences")]
    for label, count in (
        ("both right", result.both_right),
        ("only A right", result.only_a),
        ("only B right", result.only_b),
        ("both wrong", result.both_wrong),
    ):
        share = count / result.n if result.n else 0.0
        lines.append(f"  {label:<13} {count:>6}  {share:6.1%}")
    shown = result.disagreements if limit <= 0 else result.disagreements[:limit]
    if not result.disagreements:
        lines.append("they agree on every sentence")
        return lines
    more = f", the first {len(shown)}" if len(shown) < len(result.disagreements) else ""
    lines.append(f"they disagree on {len(result.disagreements)} sentences (largest gap first{more}):")
    lines.append("  right label  p_A    p_B    source  sentence")
    for d in shown:
        lines.append(
            _clip(f"  {d.right.upper():<5} {d.label:<5}  {d.p_a:.3f}  {d.p_b:.3f}  {d.source[:6]:<6}  {d.sentence}")
        )
    return lines


def cmd_diff(args: argparse.Namespace) -> int:
    if args.phenomena and args.map:
        raise CliError("--phenomena and --map: one at a time")
    if args.phenomena:
        return learned.cmd_diff_phenomena(args)
    if args.map:
        return learned.cmd_diff_map(args)
    runs_dir = Path(args.runs)
    folders = [existing_run(runs_dir, name) for name in (args.run_a, args.run_b)]
    for folder in folders:
        if not is_run_folder(folder):
            raise RunError(f"{folder}: not a run (a folder of a run's predictions)")
    from workbench.core.explore.diff import diff_runs  # pandas, when a diff is asked for

    result = diff_runs(folders[0], folders[1], args.split)
    if args.json:
        print(
            json_text(
                {"a": folders[0].name, "b": folders[1].name, "split": args.split, **result.to_dict()},
                ensure_ascii=False,
            )
        )
    else:
        print("\n".join(format_diff(result, folders[0].name, folders[1].name, args.split, args.limit)))
    return 0


# ---------------------------------------------------------------- neighbors


def cmd_neighbors(args: argparse.Namespace) -> int:
    if not args.sentences:
        raise CliError("no sentence: pass one or more as arguments")
    cleaned: list[str | None] = []
    status = 0
    for sentence in args.sentences:  # refuse bad input before the (slow) index is built
        try:
            cleaned.append(clean_sentence(sentence))
        except InputError as err:
            print(f"error: {err}", file=sys.stderr)
            cleaned.append(None)
            status = EXIT_USAGE
    if not any(cleaned):
        return status
    model, tokenizer, folder = _load(args)
    from workbench.core.explore.neighbors import run_index  # numpy and pandas, when asked for

    index = run_index(model, tokenizer, folder)  # kept beside a run's model
    for number, sentence in enumerate(cleaned):
        if sentence is None:
            continue
        found = index.query(model, tokenizer, sentence, args.k)
        if args.json:
            print(
                json_text(
                    {"sentence": sentence, "representation": index.kind, "neighbors": [n.to_dict() for n in found]},
                    ensure_ascii=False,
                )
            )
            continue
        if number:
            print()
        print(_clip(f"nearest training sentences ({index.kind}, cosine) to: {sentence}"))
        for n in found:
            print(_clip(f"  {n.similarity:.3f}  label {n.label}  {n.source[:6]:<6}  {n.sentence}"))
    return status
