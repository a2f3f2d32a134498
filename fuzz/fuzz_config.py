"""Fuzz the config loader: arbitrary bytes as a technician's TOML file.

Each input is loaded twice, as ``eboard config check --config FILE`` does it with no
system folder (``EBOARD_ETC`` points nowhere): ``kiosk_config.load`` then ``render``,
and, as ``load_config`` would, the problems become a ``ConfigError``:

1. as the whole file;
2. as one value: the first byte picks a key of the schema (in its section), the rest
   is the TOML text after ``key =``. Random bytes rarely make a whole file that is
   valid but for one value; this reaches every validator with any TOML value.

The file is a memory file (one per process, rewritten per input): nothing is left on
disk when libFuzzer exits, which it does without running Python's atexit.

Contract: ``load`` never raises (a bad file is a list of problems, each naming the
file); ``render`` prints any result as TOML that reads back; there is a config
exactly when there are no problems, and a loaded config gives its time zone and screen
rectangle. Anything else escaping is a defect.

Seeds: kiosk_config/eboard.example.toml (every key), a minimal file, one with the
``[cap]`` area set and relative paths, one with the values the fuzzer once broke the
loader and render with (TOML dates and times, inline tables in a list, NUL and DEL
escapes, a timezone folder), and each value of the example as mode 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import atheris
from _harness import ROOT, main

with atheris.instrument_imports(include=["kiosk_config", "tomllib"]):
    import tomllib

    from kiosk_config.loader import ConfigError, load
    from kiosk_config.render import _toml_value, render
    from kiosk_config.schema import Config

from pydantic import BaseModel  # noqa: E402

FD = os.memfd_create("eboard-fuzz-config.toml")
FILE = Path(f"/proc/self/fd/{FD}")
NO_ETC = "/nonexistent/eboard-fuzz-etc"  # no /etc/eboard layers: only the input


def _keys() -> list[tuple[str, str]]:
    """(section, key) of every key of the schema; section "" for the top level."""
    keys = []
    for name, f in Config.model_fields.items():
        sub = f.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            keys += [(name, k) for k in sub.model_fields]
        else:
            keys.append(("", name))
    return keys


KEYS = _keys()


def one_value(data: bytes) -> bytes:
    section, key = KEYS[data[0] % len(KEYS)]
    head = f"[{section}]\n" if section else ""
    return f"{head}{key} = ".encode() + data[1:] + b"\n"


def test_one_input(data: bytes) -> None:
    check(data)
    if data:
        check(one_value(data))


def check(text: bytes) -> None:
    os.ftruncate(FD, 0)
    os.pwrite(FD, text, 0)
    result = load(FILE)
    assert result.files == [FILE]
    assert (result.config is None) == bool(result.problems)
    for p in result.problems:
        assert p.file and p.message  # p.key may be "": TOML allows the key ""
    printed = render(result)
    tomllib.loads(printed)  # `eboard config check` prints TOML: it must read back
    if result.problems:
        assert str(ConfigError(result.problems))
    else:
        assert result.config is not None
        result.config.tz  # noqa: B018 - the player and the scheduler read it
        result.config.display.rect()


def seeds() -> dict[str, bytes]:
    example = (ROOT / "kiosk_config" / "eboard.example.toml").read_bytes()
    values = {}
    for section, table in tomllib.loads(example.decode()).items():
        for key, value in table.items() if isinstance(table, dict) else [("", table)]:
            where = (section, key) if key else ("", section)
            if where in KEYS:
                text = _toml_value(value).encode()
                values[f"value-{'.'.join(filter(None, where))}"] = bytes([KEYS.index(where)]) + text
    return values | {
        "example.toml": example,
        "minimal.toml": b'[board]\nid = "laichau.muongte.pavesu-01"\n',
        "found-before-values.toml": b"""\
timezone = "Asia"
[board]
id = "\\u007f"
name = 1979-05-27T07:32:00Z
[display]
on_hours = 07:32:00.5
rotation = 1979-05-27
[source]
trusted_keys = [{a = 1979-05-27T07:32:00, "b c" = [1, {d = "\\u007f"}]}]
""",
        "found-before-nul.toml":
            b'[source]\ntoken_file = "to\\u0000ken"\ntrusted_keys = ["k\\u0000"]\n',
        "cap-and-paths.toml": """\
timezone = "Asia/Ho_Chi_Minh"
log_level = "debug"

[board]
id = "laichau.muongte.pavesu-01"
name = "Bảng tin xã Pa Vệ Sủ"

[source]
url = "https://httt.example.gov.vn/eboard/v1"
token_file = "token"
trusted_keys = ["keys/tinh.pub", "/etc/eboard/keys/huyen.pub"]
poll_interval = 300
proxy = "http://user:secret@proxy.example:3128"

[cache]
dir = "cache"
quota_mb = 2048

[display]
geometry = "1920x96+0+984"
rotation = 90
on_hours = "05:30-22:00"

[cap]
feed_url = "file:///media/usb/cap/feed.xml"
area_names = ["Pa Vệ Sủ", "Mường Tè"]
geocodes = ["MA_XA=03085"]
latitude = 22.40
longitude = 102.60

[maintenance]
restart_at = "03:30"
""".encode(),
    }


if __name__ == "__main__":
    os.environ["EBOARD_ETC"] = NO_ETC
    main("config", test_one_input, seeds)
