"""Print the effective config as TOML, secrets masked, problems beside their keys."""

from __future__ import annotations

import json
import re
from datetime import date, time
from typing import Any

from kiosk_config.loader import DEFAULTS, LoadResult

_CREDENTIALS_IN_URL = re.compile(r"(://[^:/@]+:)[^@]+@")


def mask(key: str, value: Any) -> Any:
    """Hide what must never be printed: passwords inside URLs (proxy, source)."""
    if isinstance(value, str):
        return _CREDENTIALS_IN_URL.sub(r"\1********@", value)
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, (date, time)):  # TOML dates and times, as an invalid file may hold
        return value.isoformat()
    if isinstance(value, dict):  # an inline table inside a list
        return "{" + ", ".join(f"{_toml_string(str(k))} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    return _toml_string(value)


def _toml_string(value: Any) -> str:
    # a JSON string is a TOML basic string but for DEL, which TOML wants escaped
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _comment(text: str) -> str:
    """Text safe in a TOML comment: control characters but tab (a NUL or a newline in a
    key or a value that a problem names) written as \\uXXXX, so the output reads back."""
    return "".join(f"\\u{ord(c):04x}" if (c < " " and c != "\t") or c == "\x7f" else c
                   for c in text)


def render(result: LoadResult) -> str:
    """The effective config (or the raw merged values when invalid), annotated."""
    data: dict[str, Any]
    data = result.config.model_dump() if result.config is not None else result.raw
    by_key: dict[str, list[str]] = {}
    for p in result.problems:
        by_key.setdefault(p.key, []).append(f"{p.file}: {p.message}")
    lines: list[str] = []

    def emit(table: dict[str, Any], prefix: str) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                continue
            dotted = prefix + key
            origin = result.origins.get(dotted, DEFAULTS)
            lines.append(f"{key} = {_toml_value(mask(dotted, value))}    # from "
                         f"{_comment(str(origin))}")
            for msg in by_key.pop(dotted, []):
                lines.append(f"# ^ ERROR {_comment(msg)}")
        for key, value in table.items():
            if isinstance(value, dict):
                lines.append("")
                lines.append(f"[{prefix}{key}]")
                emit(value, prefix + key + ".")

    emit(data, "")
    if by_key:
        lines.append("")
        for key, msgs in by_key.items():
            for msg in msgs:
                lines.append(f"# ERROR {_comment(f'{key}: {msg}')}")
    return "\n".join(lines).lstrip("\n") + "\n"
