"""Loading CoLA strictly, the seeded split, fetching a release, statistics."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from workbench.core.data.cola import (
    EXPECTED_ROWS,
    DataError,
    describe,
    fetch,
    find_cola_dir,
    load_cola,
    load_table,
    split_train_validation,
)

BUNDLED = Path(__file__).resolve().parents[1] / "data" / "cola"


def write(tmp_path: Path, content: bytes | str, name: str = "data.tsv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_bundled_cola_has_the_release_sizes() -> None:
    cola = load_cola(BUNDLED)
    assert len(cola["train"]) + len(cola["validation"]) == EXPECTED_ROWS["in_domain_train"]
    assert len(cola["validation"]) == 856  # 10% of 8551, rounded up by sklearn
    assert len(cola["in_domain_dev"]) == EXPECTED_ROWS["in_domain_dev"]
    assert len(cola["holdout"]) == EXPECTED_ROWS["holdout"]
    assert set(cola["holdout"]["label"]) == {0, 1}
    assert (BUNDLED / "README").read_text().count("Warstadt") >= 1


def test_quotes_are_literal_text_not_csv_quoting(tmp_path: Path) -> None:
    path = write(tmp_path, 'src\t1\t\t"Quoted," she said.\nsrc\t0\t*\tHe said "yes\n')
    frame = load_table(path)
    assert frame["sentence"].tolist() == ['"Quoted," she said.', 'He said "yes']
    assert frame["mark"].tolist() == ["", "*"]
    assert frame["line"].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ("a\t1\t\tfine\nb\t1\tonly three\n", 2, "expected 4 tab-separated columns"),
        ("a\t1\t\tfine\nb\t2\t\ttwo\n", 2, "label: '2' is not 0 or 1"),
        ("a\tyes\t\tword\n", 1, "label: 'yes' is not 0 or 1"),
        ("a\t1\t\tfine\na\t0\t\t   \n", 2, "sentence: is empty"),
        ("a\t1\t\tfine\n\na\t1\t\tafter blank\n", 2, "blank line"),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path: Path, content: str, line: int, fragment: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(DataError) as err:
        load_table(path)
    assert err.value.line == line
    assert str(err.value).startswith(f"{path}:{line}:")
    assert fragment in str(err.value)


def test_undecodable_bytes_name_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"a\t1\t\tfine\na\t1\t\tcaf\xe9 latin-1\n")
    with pytest.raises(DataError) as err:
        load_table(path)
    assert err.value.line == 2
    assert "not UTF-8" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_file_is_an_error(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(DataError, match="empty"):
        load_table(write(tmp_path, content))


def test_missing_file_and_folder_are_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_table(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match="is a folder"):
        load_table(tmp_path)


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfa\t1\t\tOne.\r\nb\t0\t*\tTwo.\r\n")
    frame = load_table(path)
    assert frame["source"].tolist() == ["a", "b"]
    assert frame["sentence"].tolist() == ["One.", "Two."]


def test_csv_with_header_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, 'label,sentence\n1,"Hello, world."\n0,World hello the.\n', name="mine.csv")
    frame = load_table(path)
    assert frame["label"].tolist() == [1, 0]
    assert frame["sentence"].tolist() == ["Hello, world.", "World hello the."]
    assert frame["line"].tolist() == [2, 3]
    bad = write(tmp_path, "sentence,label\nGood.,1\nBad.,maybe\n", name="bad.csv")
    with pytest.raises(DataError, match=r"bad.csv:3: label"):
        load_table(bad)


def test_split_is_seeded_and_disjoint() -> None:
    frame = load_table(BUNDLED / "in_domain_train.tsv")
    train_a, val_a = split_train_validation(frame, 0.1, 2018)
    train_b, val_b = split_train_validation(frame, 0.1, 2018)
    assert val_a["line"].tolist() == val_b["line"].tolist()
    assert train_a["line"].tolist() == train_b["line"].tolist()
    assert not set(train_a["line"]) & set(val_a["line"])
    _, val_other = split_train_validation(frame, 0.1, 7)
    assert val_other["line"].tolist() != val_a["line"].tolist()


def test_describe_counts_labels_sources_and_lengths() -> None:
    frame = load_table(BUNDLED / "out_of_domain_dev.tsv")
    stats = describe(frame, [3, 5, 7, 9] * 129)
    assert stats["rows"] == 516
    assert stats["acceptable"] + stats["unacceptable"] == 516
    assert sum(stats["sources"].values()) == 516
    assert stats["token_lengths"]["max"] == 9


def test_fetch_from_zip_and_folder(tmp_path: Path) -> None:
    archive = tmp_path / "cola_public_1.1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("in_domain_train.tsv", "in_domain_dev.tsv", "out_of_domain_dev.tsv"):
            zf.write(BUNDLED / name, f"cola_public/raw/{name}")
        zf.write(BUNDLED / "README", "cola_public/README")
    dest = tmp_path / "cola"
    counts = fetch(str(archive), dest)
    assert counts == EXPECTED_ROWS
    assert find_cola_dir(dest) == dest and (dest / "README").is_file()
    again = fetch(str(dest), tmp_path / "copy")
    assert again == EXPECTED_ROWS


def test_fetch_keeps_the_grammatical_annotations_beside_the_tsvs(tmp_path: Path) -> None:
    from workbench.core.data.cola import ANNOTATIONS_FILE

    dest = tmp_path / "cola"
    fetch(str(BUNDLED), dest)  # the bundled folder has it: copied
    assert (dest / ANNOTATIONS_FILE).read_bytes() == (BUNDLED / ANNOTATIONS_FILE).read_bytes()
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("in_domain_train.tsv", "in_domain_dev.tsv", "out_of_domain_dev.tsv"):
        (bare / name).write_bytes((BUNDLED / name).read_bytes())
    fetch(str(bare), dest)  # a release without it (the official zip): the copy already there is kept
    assert (dest / ANNOTATIONS_FILE).is_file()


def test_fetch_refuses_a_bad_release_and_keeps_the_old_copy(tmp_path: Path) -> None:
    dest = tmp_path / "cola"
    fetch(str(BUNDLED), dest)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("in_domain_train.tsv", "in_domain_dev.tsv"):
        (broken / name).write_bytes((BUNDLED / name).read_bytes())
    (broken / "out_of_domain_dev.tsv").write_text("x\t3\t\tbad\n")
    with pytest.raises(DataError, match="out_of_domain_dev.tsv:1: label"):
        fetch(str(broken), dest)
    assert len(load_table(dest / "out_of_domain_dev.tsv")) == 516
    with pytest.raises(DataError, match="not a zip"):
        fetch(str(write(tmp_path, b"not a zip", "fake.zip")), dest)
