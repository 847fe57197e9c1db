"""Loading CoLA strictly (any bytes give rows or an error naming file and line), the seeded split,
parsing an unchanged file once per process, fetching a release, statistics."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

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

BUNDLED = Path(__file__).resolve().parents[2] / "data" / "cola"


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


TOKENS = [
    "label",
    "sentence",
    "source",
    "Label ",
    "\t",
    ",",
    '"',
    "\n",
    "\r",
    "\r\n",
    "\x00",
    "\x0c",
    "\u2028",
    "\x85",
    "\ufeff",
    "0",
    "1",
    "2",
    " ",
    "yes",
    "The cat sat.",
    "café",
    "😺",
    "שלום",
    "*",
    "",
]
texts = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
contents = st.one_of(
    st.binary(max_size=300),
    texts.map(lambda t: t.encode("utf-8")),
    texts.map(lambda t: t.encode("latin-1", errors="replace")),
    st.lists(texts, max_size=6).map(lambda rows: ("sentence,label\n" + "\n".join(rows)).encode("utf-8")),
    st.lists(st.tuples(texts, texts), max_size=6).map(
        lambda rows: "".join(f"src\t{a}\t\t{b}\n" for a, b in rows).encode("utf-8")
    ),
)


def line_count(raw: bytes) -> int:
    """Lines as an editor counts them (\\n, \\r\\n or a lone \\r)."""
    return len(re.split(rb"\r\n|\r|\n", raw))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=contents)
@example(raw=b"label\tx,sentence\n1\tfoo\n")  # a header the first guess and csv split differently (ValueError)
@example(raw=b"a\t1\t\tone\x0ctwo\na\t1\t\tthree\n")  # a form feed is not a line break (line numbers shifted)
@example(raw=b"sentence,label\n" + b"x" * 200_000 + b",1\n")  # over csv's field size limit
@example(raw=b"label,sentence\n")  # a header and nothing else
def test_loader_gives_rows_or_a_data_error_naming_file_and_line(raw: bytes, tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_bytes(raw)
    lines = line_count(raw)
    try:
        frame = load_table(path)
    except DataError as err:
        assert str(err).startswith(f"{path}:")
        assert err.line is None or 1 <= err.line <= lines, (err.line, lines)
        return
    assert len(frame) >= 1 and list(frame.columns) == ["source", "label", "mark", "sentence", "line"]
    assert set(frame["label"]) <= {0, 1}
    for sentence in frame["sentence"]:
        assert sentence and sentence == sentence.strip() and "\x00" not in sentence
    numbers = frame["line"].tolist()
    assert numbers == sorted(set(numbers)) and 1 <= numbers[0] and numbers[-1] <= lines


def test_an_unclosed_quote_in_a_csv_is_an_error_not_a_silent_repair(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('label,sentence\n1,"The cat sat.\n0,Cat the sat.\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"q.csv:\d+: malformed CSV"):
        load_table(path)


# ---------------------------------------------------------------- parsed once per process


def test_an_unchanged_folder_is_parsed_once(tiny_cola_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import workbench.core.data.cola as data

    parsed: list[str] = []
    real = data.load_table

    def counted(path: Path | str) -> object:
        parsed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(data, "load_table", counted)
    first = load_cola(tiny_cola_dir, 0.1, 5)  # a split seed no other test asks for: not cached yet
    assert sorted(parsed) == ["in_domain_dev.tsv", "in_domain_train.tsv", "out_of_domain_dev.tsv"]
    again = load_cola(str(tiny_cola_dir), 0.1, 5)  # the same folder, named another way
    assert len(parsed) == 3
    for name in ("train", "validation", "in_domain_dev", "holdout"):
        assert again[name].equals(first[name]) and again[name] is not first[name]
    load_cola(tiny_cola_dir, 0.1, 6)  # another split: split again (parsing again is allowed, not required)
    assert load_cola(tiny_cola_dir, 0.1, 6)["validation"]["line"].tolist() != first["validation"]["line"].tolist()


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, "src\t1\t\tOne.\nsrc\t0\t*\tTwo.\nsrc\t1\t\tSix.\n")
    assert sorted(load_cola(path)["holdout"]["sentence"]) == ["One.", "Six.", "Two."]
    before = path.stat()
    path.write_text("src\t1\t\tOne.\nsrc\t0\t*\tTwo.\nsrc\t1\t\tTen.\n")  # in place, the same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime (a coarse clock's tick)
    assert sorted(load_cola(path)["holdout"]["sentence"]) == ["One.", "Ten.", "Two."]
    with path.open("a") as handle:
        handle.write("src\t0\t*\tMore the.\n")
    assert len(load_cola(path)["holdout"]) == 4
    path.write_text("src\tyes\t\tBad.\nsrc\t1\t\tFine.\n")  # an error is never served from the cache
    with pytest.raises(DataError, match="label"):
        load_cola(path)
    with pytest.raises(DataError, match="label"):
        load_cola(path)


def test_changing_a_returned_frame_does_not_change_the_next_result(tiny_cola_dir: Path) -> None:
    cola = load_cola(tiny_cola_dir)
    expected = {name: cola[name].copy() for name in ("train", "validation", "in_domain_dev", "holdout")}
    cola["train"].loc[0, "sentence"] = "Changed by a caller."
    cola["train"].loc[1, "mark"] = "?"
    cola["holdout"]["label"] = 1 - cola["holdout"]["label"]
    cola.splits["validation"] = cola["validation"].iloc[:1]
    again = load_cola(tiny_cola_dir)
    for name, frame in expected.items():
        assert again[name].equals(frame), name


@pytest.mark.parametrize(
    ("fraction", "seed", "rows"), [(0.1, 2018, None), (0.1, 7, None), (0.25, 2018, 41), (0.5, 1, 3), (0.1, 2018, 2)]
)
def test_split_is_sklearns_train_test_split_sentence_for_sentence(fraction: float, seed: int, rows: int | None) -> None:
    """Runs recorded before the split stopped importing sklearn validated on the same sentences."""
    from sklearn.model_selection import train_test_split

    frame = load_table(BUNDLED / "in_domain_train.tsv").iloc[:rows]
    train, validation = split_train_validation(frame, fraction, seed)
    want_train, want_validation = train_test_split(frame, test_size=fraction, random_state=seed)
    assert validation["line"].tolist() == want_validation["line"].tolist()
    assert train["line"].tolist() == want_train["line"].tolist()
    assert list(train.index) == list(range(len(train)))  # numbered afresh, as before


def test_word_pieces_without_transformers_are_transformers_tokens_for_every_bundled_sentence(
    tiny_model_dir: Path,
) -> None:
    """The Data pane and `workbench tokenize` count and show tokens with the tokenizers library alone;
    transformers' own tokenizer (what training and Predict use) must give the same ids and pieces."""
    from workbench.core.data.cola import token_lengths
    from workbench.core.model.loading import WordPieces, load_tokenizer, load_word_pieces, tokenize

    cola = load_cola(BUNDLED)
    sentences = [s for split in ("train", "validation", "in_domain_dev", "holdout") for s in cola[split]["sentence"]]
    sentences += ["", "  ", "Ünïcödé naïve café — “quotes”!", "a " * 300, "tab\there", "émigré's 3.5%"]
    for name in ("embedded:all-MiniLM-L6-v2", str(tiny_model_dir)):
        light, full = load_word_pieces(name), load_tokenizer(name)
        assert isinstance(light, WordPieces)
        assert light(sentences)["input_ids"] == full(sentences)["input_ids"]
        assert token_lengths(light, sentences) == token_lengths(full, sentences)
        for sentence in sentences[:200] + sentences[-6:]:
            for max_length in (128, 6):
                assert tokenize(light, sentence, max_length) == tokenize(full, sentence, max_length), sentence
        assert len(tokenize(light, "a " * 300)) == 128 and tokenize(light, "a " * 300)[-1][0] == "[SEP]"


def test_word_pieces_of_a_broken_tokenizer_file_name_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    import shutil

    from workbench.core.model.loading import ModelError, load_word_pieces

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match=r"tokenizer\.json"):
        load_word_pieces(str(folder))
