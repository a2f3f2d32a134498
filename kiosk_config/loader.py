"""Layered TOML loading: defaults ← /etc/eboard/eboard.toml ← conf.d/*.toml ← --config.

Each layer is checked for unknown keys on its own, so a problem names the file that
holds it; the rest of that layer is still applied. The merged result is then validated
by the schema, whatever was found before, so one run reports every problem of every
file; each value error is traced back to the file that set the key.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from kiosk_config.schema import Config, Refusal

DEFAULTS = "(defaults)"
PATH_KEYS = ("source.token_file", "source.ca_bundle", "cache.dir", "emergency.alarm_file")
PATH_LIST_KEYS = ("source.trusted_keys", "cap.trusted_certs")


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


def _known_part(data: dict[str, Any], model: type[BaseModel], prefix: str, file: str,
                problems: list[ConfigProblem]) -> dict[str, Any]:
    """``data`` without its unknown keys and ill-shaped tables, each one a problem: the
    rest of the file is still checked (and used by the check), so that one run shows
    every problem."""
    known: dict[str, Any] = {}
    fields = model.model_fields
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
            known_here = ", ".join(sorted(fields))
            problems.append(
                ConfigProblem(file, dotted, f"unknown key (known here: {known_here}){hint}")
            )
            continue
        sub = fields[key].annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            if isinstance(value, dict):
                known[key] = _known_part(value, sub, dotted + ".", file, problems)
            else:
                problems.append(
                    ConfigProblem(file, dotted, f"expected a table [{dotted}], got {value!r}")
                )
        elif isinstance(value, dict):
            problems.append(
                ConfigProblem(file, dotted, f"expected a single value, not a table [{dotted}]")
            )
        else:
            known[key] = value
    return known


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


# What a strict type error expects, said as a technician writes TOML.
_EXPECTED = {
    "bool_type": "a valid boolean: true or false, without quotes",
    "int_type": "a valid integer: a whole number, without quotes",
    "float_type": "a valid number, without quotes",
    "string_type": "a valid string, in quotes",
    "list_type": "a valid list [...]",
}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


def _did_you_mean(err: dict[str, Any]) -> str:
    """The value the technician probably meant, where one fits."""
    got, kind = err.get("input"), err.get("type")
    if kind == "bool_type" and isinstance(got, (str, int)):
        word = str(got).strip().lower()
        meant = "true" if word in _TRUE else "false" if word in _FALSE else None
        return f"; did you mean {meant}?" if meant else ""
    if kind in ("int_type", "float_type") and isinstance(got, str):
        try:
            number = int(got.strip()) if kind == "int_type" else float(got.strip())
        except ValueError:
            return ""
        return f"; did you mean {number!r}?"
    if kind == "string_type" and isinstance(got, (bool, int, float)):
        return f"; did you mean {_toml_quoted(got)}?"
    if kind == "literal_error" and isinstance(got, str):
        allowed = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
        close = difflib.get_close_matches(got, allowed, n=1, cutoff=0.6)
        return f"; did you mean '{close[0]}'?" if close else ""
    return ""


def _toml_quoted(value: bool | int | float) -> str:
    text = ("true" if value else "false") if isinstance(value, bool) else repr(value)
    return f'"{text}"'


def _describe_error(err: dict[str, Any]) -> str:
    refusal = (err.get("ctx") or {}).get("error")
    if isinstance(refusal, Refusal):
        return str(refusal)
    got = err.get("input")
    msg = _EXPECTED.get(str(err.get("type")), "")
    if not msg:
        msg = str(err.get("msg", "invalid value"))
        msg = msg.removeprefix("Value error, ").removeprefix("Input should be ")
        if msg.startswith(("greater", "less")):
            msg = "a value " + msg
        msg = msg[0].lower() + msg[1:] if msg else msg
    if isinstance(got, dict):
        return f"expected {msg}"
    return f"expected {msg}; got {got!r}{_did_you_mean(err)}"


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
        data = _known_part(data, Config, "", str(path), problems)
        problems.extend(_resolve_paths(data, path.parent, str(path)))
        _merge(merged, data, str(path), origins)
    result = LoadResult(config=None, files=paths, origins=origins, raw=merged)
    try:
        config = Config.model_validate(merged)
    except ValidationError as e:
        for err in e.errors():
            dotted = ".".join(str(p) for p in err["loc"])
            file = _origin(origins, err["loc"], [str(p) for p in paths])
            problems.append(ConfigProblem(file, dotted, _describe_error(dict(err))))
    else:
        if not problems:
            result.config = config
    order = [str(p) for p in paths]
    # File by file, in the order they apply: what a technician fixes one file at a time.
    result.problems = sorted(problems, key=lambda p: order.index(p.file) if p.file in order
                             else len(order))
    return result


def _origin(origins: dict[str, str], loc: tuple[int | str, ...], order: list[str]) -> str:
    """The file that set the key at ``loc``; for a whole table (a rule over several of its
    keys), the last file that set a key in it; for an item of a list, the list's file."""
    dotted = ".".join(str(p) for p in loc)
    if dotted in origins:
        return origins[dotted]
    top = ".".join(str(p) for p in loc[:2])
    if top in origins:
        return origins[top]
    inside = {f for k, f in origins.items() if k.startswith(dotted + ".")}
    return max(inside, key=order.index) if inside else DEFAULTS


def load_config(extra: Path | None = None) -> Config:
    """Load the effective config or raise ConfigError listing every problem."""
    result = load(extra)
    if result.problems or result.config is None:
        raise ConfigError(result.problems)
    return result.config
