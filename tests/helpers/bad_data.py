"""Bad data files, each with what the one error line about it must say (the CLI's and the TUI's tests)."""

from __future__ import annotations

from pathlib import Path

BAD_FILES: dict[str, tuple[bytes | None, str]] = {
    # name: (content, or None for "make it specially"; what the one error line must say)
    "columns.tsv": (b"a\t1\t\tfine\nb\t1\tonly three\n", ":2: expected 4 tab-separated columns"),
    "label2.tsv": (b"a\t1\t\tfine\nb\t2\t\ttwo\n", ":2: label: '2' is not 0 or 1"),
    "yes.csv": (b"sentence,label\nGood.,1\nBad.,yes\n", ":3: label: 'yes' is not 0 or 1"),
    "empty_sentence.tsv": (b"a\t1\t\tfine\na\t0\t\t  \n", ":2: sentence: is empty"),
    "nul.tsv": (b"a\t1\t\tfine\na\t0\t\tbad\x00byte\n", ":2: sentence: contains a NUL byte"),
    "latin1.tsv": (b"a\t1\t\tfine\na\t1\t\tcaf\xe9\n", ":2: bytes b'\\xe9\\n' are not UTF-8"),
    "latin1_cr.tsv": (b"a\t1\t\tfine\ra\t1\t\tok\ra\t1\t\tcaf\xe9\r", ":3: bytes b'\\xe9\\r' are not UTF-8"),
    "quote.csv": (b'label,sentence\n1,"unclosed\n', "malformed CSV"),
    "header_only.csv": (b"sentence,label\n", "has a header but no sentences"),
    "one_row.tsv": (b"a\t1\t\tOnly one.\n", "at least 2 are needed"),
    "zero.tsv": (b"", "is empty"),
    "folder": (None, "is not a CoLA folder"),
    "missing.tsv": (None, "no such file or folder"),
}


def bad_file(tmp_path: Path, name: str) -> tuple[Path, str]:
    content, message = BAD_FILES[name]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    elif name == "folder":
        path.mkdir()
    return path, message
