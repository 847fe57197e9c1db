"""How a worker's failure reads in a notification: its first line."""

from __future__ import annotations


def describe_error(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0] if "\n" in text else text
