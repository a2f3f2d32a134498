"""Bearer tokens of the reference server: one per board, one for operators.

The tokens file is TOML, mode 0600::

    operator = "…"           # may PUT media and manifests
    [boards]
    "demo.board-01" = "…"    # may POST status for that board, long-poll its events
"""

from __future__ import annotations

import hmac
import secrets
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Tokens:
    operator: str = ""
    boards: dict[str, str] = field(default_factory=dict)

    def board_ok(self, board: str, presented: str) -> bool:
        expected = self.boards.get(board, "")
        return bool(expected) and hmac.compare_digest(expected, presented)

    def operator_ok(self, presented: str) -> bool:
        return bool(self.operator) and hmac.compare_digest(self.operator, presented)


def load_tokens(path: Path | None) -> Tokens:
    if path is None:
        return Tokens()
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    boards = {str(k): str(v) for k, v in dict(data.get("boards", {})).items()}
    return Tokens(operator=str(data.get("operator", "")), boards=boards)


def new_token() -> str:
    return secrets.token_urlsafe(32)
