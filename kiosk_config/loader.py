"""Layered TOML loading: defaults ← /etc/eboard/eboard.toml ← conf.d/*.toml ← --config.

Each layer is checked for unknown keys on its own, so a problem names the file that
holds it. The merged result is then validated by the schema; each value error is
traced back to the file that set the key.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from kiosk_config.schema import Config

DEFAULTS = "(defaults)"
PATH_KEYS = ("source.token_file", "source.ca_bundle", "cache.dir", "emergency.alarm_file")
PATH_LIST_KEYS = ("source.trusted_keys",)


def etc_dir() -> Path:
    """The system config directory; EBOARD_ETC overrides it (tests, unusual installs)."""
    return Path(os.environ.get("EBOARD_ETC", "/etc/eboard"))


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}"


class ConfigError(Exception):
    """The configuration has problems; ``problems`` lists each one."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class LoadResult:
    config: Config | None
    files: list[Path] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)


def layer_files(extra: Path | None = None) -> list[Path]:
    """The config files that exist, in the order they are applied."""
    base = etc_dir()
    files = []
    if (base / "eboard.toml").is_file():
        files.append(base / "eboard.toml")
    confd = base / "conf.d"
    if confd.is_dir():
        files.extend(sorted(p for p in confd.glob("*.toml") if p.is_file()))
    if extra is not None:
        files.append(extra)
    return files


def _unknown_keys(
    data: dict[str, Any], model: type[BaseModel], prefix: str, file: str
) -> list[ConfigProblem]:
    problems = []
    fields = model.model_fields
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            known = ", ".join(sorted(fields))
            problems.append(
                ConfigProblem(file, dotted, f"unknown key (known here: {known}){hint}")
            )
            continue
        sub = fields[key].annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            if isinstance(value, dict):
                problems.extend(_unknown_keys(value, sub, dotted + ".", file))
            else:
                problems.append(
                    ConfigProblem(file, dotted, f"expected a table [{dotted}], got {value!r}")
                )
        elif isinstance(value, dict):
            problems.append(
                ConfigProblem(file, dotted, f"expected a single value, not a table [{dotted}]")
            )
    return problems


def _merge(into: dict[str, Any], layer: dict[str, Any], file: str,
           origins: dict[str, str], prefix: str = "") -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, file, origins, dotted + ".")
        elif isinstance(value, dict):
            into[key] = {}
            _merge(into[key], value, file, origins, dotted + ".")
        else:
            into[key] = value
            origins[dotted] = file


def _resolve_paths(layer: dict[str, Any], base: Path, file: str) -> list[ConfigProblem]:
    """Make relative paths in a file relative to that file's folder.

    A path holding a NUL character (``"\\u0000"``; no file system takes one) is a problem,
    not a ValueError from the file system calls (found by fuzz/fuzz_config.py).
    """
    problems: list[ConfigProblem] = []

    def fix(v: Any, dotted: str) -> Any:
        if isinstance(v, str) and "\0" in v:
            problems.append(ConfigProblem(
                file, dotted, f"expected a path without NUL characters; got {v!r}"))
            return v
        if isinstance(v, str) and v and not os.path.isabs(v):
            return str((base / v).resolve())
        return v

    for dotted in PATH_KEYS + PATH_LIST_KEYS:
        section, key = dotted.split(".")
        table = layer.get(section)
        if isinstance(table, dict) and key in table:
            value = table[key]
            table[key] = ([fix(x, dotted) for x in value] if isinstance(value, list)
                          else fix(value, dotted))
    return problems


def _read_layer(path: Path) -> tuple[dict[str, Any] | None, ConfigProblem | None]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return None, ConfigProblem(str(path), "-", "file not found; check the path given")
    except PermissionError:
        return None, ConfigProblem(str(path), "-", "cannot read the file (permission denied)")
    except tomllib.TOMLDecodeError as e:
        return None, ConfigProblem(str(path), "-", f"not valid TOML: {e}; fix the syntax")
    except UnicodeDecodeError:
        return None, ConfigProblem(str(path), "-", "not UTF-8 text; save the file as UTF-8")
    return data, None


def _describe_error(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ").removeprefix("Input should be ")
    if msg.startswith(("greater", "less")):
        msg = "a value " + msg
    got = err.get("input")
    if isinstance(got, dict):
        return f"expected {msg}"
    return f"expected {msg[0].lower() + msg[1:] if msg else msg}; got {got!r}"


def load(extra: Path | None = None, files: Iterable[Path] | None = None) -> LoadResult:
    """Load and validate every layer; never raises for a bad config (see ``problems``)."""
    paths = list(files) if files is not None else layer_files(extra)
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    problems: list[ConfigProblem] = []
    for path in paths:
        data, problem = _read_layer(path)
        if problem:
            problems.append(problem)
            continue
        assert data is not None
        unknown = _unknown_keys(data, Config, "", str(path))
        problems.extend(unknown)
        if unknown:
            continue
        problems.extend(_resolve_paths(data, path.parent, str(path)))
        _merge(merged, data, str(path), origins)
    result = LoadResult(config=None, files=paths, origins=origins, raw=merged)
    if problems:
        result.problems = problems
        return result
    try:
        result.config = Config.model_validate(merged)
    except ValidationError as e:
        for err in e.errors():
            dotted = ".".join(str(p) for p in err["loc"])
            top = ".".join(str(p) for p in err["loc"][:2])
            file = origins.get(dotted) or origins.get(top, DEFAULTS)
            problems.append(ConfigProblem(file, dotted, _describe_error(dict(err))))
        result.problems = problems
    return result


def load_config(extra: Path | None = None) -> Config:
    """Load the effective config or raise ConfigError listing every problem."""
    result = load(extra)
    if result.problems or result.config is None:
        raise ConfigError(result.problems)
    return result.config
