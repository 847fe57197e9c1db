"""Telling the user a run ended when they are looking elsewhere: the terminal bell and a
desktop-notification escape, which terminals forward over SSH.

OSC 777 (`ESC ] 777 ; notify ; TITLE ; BODY BEL`: foot, rxvt-unicode, WezTerm, Ghostty, VTE
terminals) and OSC 9 (`ESC ] 9 ; BODY BEL`: iTerm2, Windows Terminal, WezTerm, kitty). A
terminal that knows neither ignores both: operating-system commands are never printed.
Inside tmux they are wrapped in tmux's passthrough (shown when `allow-passthrough` is on).
WORKBENCH_NOTIFY=0 (or `workbench --no-notify`) turns all of it off.
"""

from __future__ import annotations

import os

BEL = "\x07"
ESC = "\x1b"


def notifications_enabled(flag: bool | None = None) -> bool:
    """FLAG when given (the command line), else WORKBENCH_NOTIFY (on unless 0, no, off, false)."""
    if flag is not None:
        return flag
    return os.environ.get("WORKBENCH_NOTIFY", "1").strip().lower() not in ("0", "no", "off", "false")


def clean(text: str) -> str:
    """No control characters (they would end the sequence early) and no `;` (OSC 777's separator)."""
    return "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text).replace(";", ",").strip()


def terminal_notification(title: str, body: str, in_tmux: bool | None = None) -> str:
    """The OSC 777 and OSC 9 sequences announcing TITLE: BODY (wrapped for tmux inside tmux)."""
    title, body = clean(title), clean(body)
    sequence = f"{ESC}]777;notify;{title};{body}{BEL}{ESC}]9;{title}: {body}{BEL}"
    if in_tmux is None:
        in_tmux = bool(os.environ.get("TMUX"))
    if in_tmux:
        sequence = f"{ESC}Ptmux;{sequence.replace(ESC, ESC + ESC)}{ESC}\\"
    return sequence
