"""Secrets (bearer tokens) live in their own files, readable by the owner only."""

from __future__ import annotations

import stat
from pathlib import Path


class SecretFileError(Exception):
    """A token file is missing, unreadable, empty or readable by others."""


def read_token(path: str | Path) -> str:
    """Read a token file; refuse one that group or others can read."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise SecretFileError(
            f"token file {p} does not exist; create it with the board's token "
            f"and 'chmod 600 {p}'"
        ) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretFileError(
            f"token file {p} has mode {stat.S_IMODE(st.st_mode):04o}; "
            f"others may read it: run 'chmod 600 {p}'"
        )
    try:
        token = p.read_text(encoding="utf-8").strip()
    except (PermissionError, UnicodeDecodeError) as e:
        raise SecretFileError(f"cannot read token file {p}: {e}") from None
    if not token:
        raise SecretFileError(f"token file {p} is empty; put the board's token in it")
    return token
