"""Where a study lives: an Optuna storage URL (SQLite in the runs folder by default, or a shared
PostgreSQL/MySQL URL several machines join), opened with the race of many creators handled, and shown
with its password hidden whole."""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from workbench.core.search.space import SweepError

SWEEP_DATABASE = "sweeps.db"


def sweep_database(runs_dir: Path) -> Path:
    """The SQLite file of RUNS_DIR's sweeps (the default storage); it exists once a sweep has run there."""
    return Path(runs_dir).resolve() / SWEEP_DATABASE


def default_storage(runs_dir: Path) -> str:
    """SQLite in the runs folder: embedded, nothing to start. A folder name holding '?' or '#' is
    percent-encoded, else SQLAlchemy would read it as the URL's query or fragment."""
    from urllib.parse import quote

    return f"sqlite:///{quote(sweep_database(runs_dir).as_posix(), safe='/:')}"


def sqlite_path(url: str) -> Path | None:
    """The database file of a sqlite:/// URL (percent-decoded, query dropped); None for another URL."""
    from urllib.parse import unquote

    if not url.startswith("sqlite:///"):
        return None
    return Path(unquote(url[len("sqlite:///") :].split("?", 1)[0]))


# user:password@ in anything that looks like a URL, parseable or not; password=... in a query
_USERINFO = re.compile(r"(?P<user>[^\s:/@?#]*):(?P<secret>[^\s@/:]*)@")
_QUERY_SECRET = re.compile(r"(?P<key>(?:password|passwd|pwd|secret|token)=)(?P<secret>[^&\s]*)", re.IGNORECASE)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:/*")  # "postgresql://", and the malformed "postgresql:/"


def password_span(url: str) -> tuple[int, int] | None:
    """Where URL's password lies, (start, end), as its text has it: from the first ':' after the scheme to
    the LAST '@'. So a password holding an '@' (or ':', '/', '%') it should have percent-encoded stays whole,
    where a parser stopping at the first '@' (SQLAlchemy's) cuts it in two and shows the rest as the host.
    None when the URL has no password. An '@' in the query makes the span too long: more is hidden, never less."""
    scheme = _SCHEME.match(url)
    start = scheme.end() if scheme else 0
    at = url.rfind("@")
    if at <= start:
        return None
    colon = url.find(":", start, at)
    return (colon + 1, at) if colon >= 0 else None


def url_secrets(url: str) -> list[str]:
    """The secrets written in URL, longest first: its password as written and percent-decoded, and any
    password=... of its query."""
    from urllib.parse import unquote

    found = [m.group("secret") for m in _QUERY_SECRET.finditer(url)]
    span = password_span(url)
    if span is not None:
        written = url[span[0] : span[1]]
        found += [written, unquote(written)]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """TEXT with every secret of URL (and any user:password@ or password= in it) masked as ***."""
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    text = _USERINFO.sub(lambda m: f"{m.group('user')}:***@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}***", text)


def safe_url(url: str) -> str:
    """URL with its password hidden, for messages, whatever the URL looks like (`password_span`)."""
    span = password_span(url)
    shown = url if span is None else f"{url[: span[0]]}***{url[span[1] :]}"
    return _QUERY_SECRET.sub(lambda m: f"{m.group('key')}***", shown)


def check_storage_url(url: str) -> None:
    """SweepError when URL's password holds an '@' left unencoded: a URL parser would read part of the password
    as the host and put it in its errors; the user is told to percent-encode it."""
    span = password_span(url)
    if span is not None and "@" in url[span[0] : span[1]]:
        raise SweepError(
            f"storage {safe_url(url)}: its password holds an '@', which a URL must write as %40 "
            '(percent-encode the password: python -c "import urllib.parse, getpass; '
            "print(urllib.parse.quote(getpass.getpass(), safe=''))\")"
        )


DRIVER_HINTS = {
    "postgresql+psycopg": "psycopg",
    "postgresql": "psycopg2-binary",
    "mysql+pymysql": "pymysql",
    "mysql": "mysqlclient (or write mysql+pymysql:// and install pymysql)",
}


def open_storage(url: str, create: bool = True) -> Any:
    """An Optuna RDB storage at URL; SweepError in one line if it cannot be reached.

    Heartbeats mark the trial of a machine that died as failed, so a shared study never keeps
    a trial running forever."""
    import optuna

    shown = safe_url(url)
    check_storage_url(url)
    path = sqlite_path(url)
    if path is not None:
        if not create and not path.is_file():
            raise SweepError(f"{path}: no sweeps here yet (run `workbench sweep` first, or pass --storage)")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SweepError(f"storage {shown}: cannot make its folder ({err.strerror or err})") from None
    engine_kwargs: dict[str, Any] = {}
    if url.startswith(("postgresql", "mysql")):
        engine_kwargs = {"connect_args": {"connect_timeout": 10}}
    try:
        for attempt in range(SCHEMA_RACE_RETRIES):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
                    return optuna.storages.RDBStorage(
                        url, engine_kwargs=engine_kwargs, heartbeat_interval=60, grace_period=180
                    )
            except Exception as err:  # noqa: BLE001
                # Two processes creating the schema of a new database at once: the second one's CREATE
                # TABLE or its alembic_version row loses the race; by now the tables exist.
                if not _lost_schema_race(err):
                    raise
                if attempt == SCHEMA_RACE_RETRIES - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")
    except ImportError:
        scheme = url.split(":", 1)[0]
        package = DRIVER_HINTS.get(scheme) or DRIVER_HINTS.get(scheme.split("+")[0], "")
        hint = f": pip install {package}" if package else ""
        raise SweepError(f"storage {shown}: its database driver is not installed{hint}") from None
    except Exception as err:  # SQLAlchemy's errors for a bad URL, a refused connection, a bad password
        raise SweepError(f"storage {shown}: cannot open it ({redact(first_line(err), url)})") from None


SCHEMA_RACE_RETRIES = 5  # opening a new shared database while another process creates its tables
# What losing that race says: PostgreSQL "duplicate key value violates unique constraint" (pg_type),
# "relation ... already exists"; SQLite "UNIQUE constraint failed: alembic_version.version_num",
# "table ... already exists", "database is locked".
SCHEMA_RACE_SIGNS = ("duplicate key", "already exists", "UNIQUE constraint failed", "database is locked")


def _lost_schema_race(err: BaseException) -> bool:
    return any(sign in str(err) for sign in SCHEMA_RACE_SIGNS)


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's own log lines off (we report trials ourselves), restored after."""
    import optuna

    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)
