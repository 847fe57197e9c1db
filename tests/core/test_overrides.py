"""The label-overrides file: written and read back exactly, every bad file stopped with its file and line,
and its decisions applied to the training split of a tiny frame (counts worked out by hand)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from workbench.core.data.cola import COLUMNS, DataError
from workbench.core.data.overrides import (
    DECISIONS,
    Override,
    OverrideCounts,
    apply_overrides,
    read_overrides,
    remove_override,
    set_override,
    write_overrides,
)

HEADER = "line\tsentence\told_label\tdecision\tnote\n"


def frame(rows: list[tuple[int, int, str]]) -> pd.DataFrame:
    """A split as load_cola makes it from (line, label, sentence) rows."""
    return pd.DataFrame([("src", label, "", sentence, line) for line, label, sentence in rows], columns=COLUMNS)


# The training file's lines 1-6: lines 2 and 5 drawn into validation, the rest training (in this order).
TRAIN = frame([(4, 1, "Dogs bark."), (1, 0, "Cat ate the spider."), (3, 1, "She hit the ball."), (6, 0, "Him left.")])
VALIDATION = frame([(2, 1, "Megan loves Jason."), (5, 0, "Books the read.")])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "overrides.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_decisions_are_the_three_agreed() -> None:
    assert DECISIONS == ("flip", "drop", "keep")


def test_written_then_read_gives_the_same_decisions_sorted_by_line(tmp_path: Path) -> None:
    path = tmp_path / "overrides.tsv"
    decisions = [
        Override(6, "Him left.", 0, "keep", "ungrammatical, as labelled"),
        Override(1, "Cat ate the spider.", 0, "flip", "fine in a\theadline\nstyle \\ note"),
        Override(3, "She hit the ball.", 1, "drop"),
    ]
    write_overrides(path, decisions)
    text = path.read_text(encoding="utf-8")
    assert text == (
        HEADER + "1\tCat ate the spider.\t0\tflip\tfine in a\\theadline\\nstyle \\\\ note\n"
        "3\tShe hit the ball.\t1\tdrop\t\n"
        "6\tHim left.\t0\tkeep\tungrammatical, as labelled\n"
    )
    back = read_overrides(path)
    assert back == sorted(decisions, key=lambda o: o.line)
    assert [o.file_line for o in back] == [2, 3, 4]
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed in


def test_a_file_edited_by_hand_without_notes_or_with_blank_lines_reads(tmp_path: Path) -> None:
    path = write(tmp_path, "line\tsentence\told_label\tdecision\n\n3\tShe hit the ball.\t1\tFLIP\n\n")
    assert read_overrides(path) == [Override(3, "She hit the ball.", 1, "flip")]
    assert read_overrides(write(tmp_path, "")) == []
    assert read_overrides(write(tmp_path, HEADER)) == []


def test_writing_two_decisions_for_one_line_or_a_bad_label_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "overrides.tsv"
    with pytest.raises(ValueError, match="two decisions for line 3"):
        write_overrides(path, [Override(3, "a", 1, "flip"), Override(3, "a", 1, "drop")])
    with pytest.raises(ValueError, match="old_label 2 is not 0 or 1"):
        write_overrides(path, [Override(3, "a", 2, "flip")])
    with pytest.raises(ValueError, match="decision 'swap'"):
        set_override(path, Override(3, "a", 1, "swap"))
    assert not path.exists()


def test_set_adds_or_replaces_and_remove_undoes(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "overrides.tsv"
    path.parent.mkdir()
    assert set_override(path, Override(3, "She hit the ball.", 1, "flip")) == [
        Override(3, "She hit the ball.", 1, "flip")
    ]
    set_override(path, Override(1, "Cat ate the spider.", 0, "drop", "noise"))
    after = set_override(path, Override(3, "She hit the ball.", 1, "keep", "on second thought"))
    assert [(o.line, o.decision) for o in after] == [(1, "drop"), (3, "keep")]
    assert read_overrides(path) == after
    assert [o.line for o in remove_override(path, 1)] == [3]
    assert [o.line for o in read_overrides(path)] == [3]
    assert [o.line for o in remove_override(path, 99)] == [3]  # nothing decided for it: unchanged
    assert remove_override(path, 3) == []
    assert path.read_text(encoding="utf-8") == HEADER  # the file stays, with its header


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("line\tsentence\tlabel\tdecision\tnote\n", 1, "the first line must be the header"),
        ("3\tShe hit the ball.\t1\tflip\t\n", 1, "the first line must be the header"),
        (HEADER + "3\tShe hit the ball.\t1\n", 2, "expected 5 tab-separated columns"),
        (HEADER + "3\tShe hit the ball.\t1\tflip\tnote\textra\n", 2, "found 6"),
        (HEADER + "1\tCat ate the spider.\t0\tdrop\t\nthree\tShe hit the ball.\t1\tflip\t\n", 3, "line: 'three'"),
        (HEADER + "0\tShe hit the ball.\t1\tflip\t\n", 2, "line: '0' is not a line number"),
        (HEADER + "-3\tShe hit the ball.\t1\tflip\t\n", 2, "line: '-3' is not a line number"),
        (HEADER + "3\t \t1\tflip\t\n", 2, "sentence: is empty"),
        (HEADER + "3\tShe hit the ball.\t2\tflip\t\n", 2, "old_label: '2' is not 0 or 1"),
        (HEADER + "3\tShe hit the ball.\tyes\tflip\t\n", 2, "old_label: 'yes' is not 0 or 1"),
        (HEADER + "3\tShe hit the ball.\t1\trelabel\t\n", 2, "decision: 'relabel' is not one of flip, drop, keep"),
        (
            HEADER
            + "3\tShe hit the ball.\t1\tflip\t\n1\tCat ate the spider.\t0\tdrop\t\n3\tShe hit the ball.\t1\tdrop\t\n",
            4,
            "line 3 is decided twice (also on line 2)",
        ),
    ],
)
def test_a_bad_line_is_named_with_its_file(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError) as caught:
        read_overrides(path)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")
    assert fragment in str(caught.value)


def test_missing_folder_and_non_utf8_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such overrides file"):
        read_overrides(tmp_path / "none.tsv")
    with pytest.raises(DataError, match="is a folder"):
        read_overrides(tmp_path)
    path = tmp_path / "latin1.tsv"
    path.write_bytes(HEADER.encode() + b"3\tcaf\xe9\t1\tflip\t\n")
    with pytest.raises(DataError, match=r"latin1.tsv:2: bytes .* are not UTF-8"):
        read_overrides(path)


@pytest.mark.parametrize(
    ("line_text", "fragment"),
    [
        ("9\tNine.\t1\tflip\t", "line: the training file has no line 9"),
        ("3\tShe hit a ball.\t1\tflip\t", "sentence: 'She hit a ball.' is not the sentence on line 3"),
        ("3\tShe hit the ball.\t0\tflip\t", "old_label: 0 is not the label of line 3 in the training file (1)"),
        ("2\tMegan loves Jason.\t0\tflip\t", "old_label: 0 is not the label of line 2"),  # a validation row too
    ],
)
def test_a_decision_that_does_not_match_the_data_stops_before_anything_applies(
    tmp_path: Path, line_text: str, fragment: str
) -> None:
    path = write(tmp_path, HEADER + "1\tCat ate the spider.\t0\tflip\t\n" + line_text + "\n")
    with pytest.raises(DataError) as caught:
        apply_overrides(TRAIN, read_overrides(path), path, VALIDATION)
    assert str(caught.value).startswith(f"{path}:3: ")
    assert fragment in str(caught.value)


def test_apply_flips_drops_keeps_and_leaves_validation_alone(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEADER
        + "1\tCat ate the spider.\t0\tflip\tnoise\n"
        + "2\tMegan loves Jason.\t1\tdrop\tin validation\n"
        + "3\tShe hit the ball.\t1\tkeep\t\n"
        + "5\tBooks the read.\t0\tflip\tin validation\n"
        + "6\tHim left.\t0\tdrop\t\n",
    )
    trained, counts = apply_overrides(TRAIN, read_overrides(path), path, VALIDATION)
    # TRAIN's order (4, 1, 3, 6): line 1 flipped 0 -> 1, line 6 dropped, lines 4 and 3 as they were
    assert trained["line"].tolist() == [4, 1, 3]
    assert trained["label"].tolist() == [1, 1, 1]
    assert trained["sentence"].tolist() == ["Dogs bark.", "Cat ate the spider.", "She hit the ball."]
    assert trained.index.tolist() == [0, 1, 2]
    assert counts == OverrideCounts(flipped=1, dropped=1, kept=1, in_validation=2)
    assert counts.describe() == "1 flipped, 1 dropped, 1 kept; 2 fall in the validation split and are not applied"
    assert TRAIN["label"].tolist() == [1, 0, 1, 0]  # the frame passed in is unchanged


def test_without_the_validation_frame_a_validation_line_is_unknown(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + "2\tMegan loves Jason.\t1\tdrop\t\n")
    with pytest.raises(DataError, match=r"overrides.tsv:2: line: the training file has no line 2"):
        apply_overrides(TRAIN, read_overrides(path), path)


def test_no_decisions_change_nothing(tmp_path: Path) -> None:
    trained, counts = apply_overrides(TRAIN, [], tmp_path / "overrides.tsv", VALIDATION)
    assert trained.equals(TRAIN)
    assert counts == OverrideCounts()
    assert counts.describe() == "0 flipped, 0 dropped, 0 kept"
