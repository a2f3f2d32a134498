"""Property tests: the config loader never raises on any file; it reports problems."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk_config import load

KEYS = ["timezone", "log_level", "board", "source", "cache", "display", "status", "x"]
SUBKEYS = ["id", "name", "url", "geometry", "rotation", "on_hours", "poll_interval",
           "trusted_keys", "quota_mb", "dir", "volume", "nope"]
scalars = st.one_of(
    st.text(max_size=30), st.integers(), st.floats(allow_nan=False), st.booleans(),
    st.lists(st.text(max_size=10), max_size=3),
)
tables = st.dictionaries(st.sampled_from(SUBKEYS), scalars, max_size=5)
documents = st.dictionaries(st.sampled_from(KEYS), st.one_of(scalars, tables), max_size=6)


def to_toml(doc: dict) -> str:
    import json

    def val(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(val(x) for x in v) + "]"
        return json.dumps(v)

    head = [f"{k} = {val(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    body = []
    for k, v in doc.items():
        if isinstance(v, dict):
            body.append(f"[{k}]")
            body.extend(f"{sk} = {val(sv)}" for sk, sv in v.items())
    return "\n".join(head + body) + "\n"


@settings(max_examples=150, deadline=None)
@given(documents)
def test_structured_documents_load_or_report(doc: dict) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "box.toml"
        f.write_text(to_toml(doc), encoding="utf-8")
        result = load(f)
        assert (result.config is None) == bool(result.problems)
        for p in result.problems:
            assert p.file == str(f) and p.key and p.message


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "box.toml"
        f.write_bytes(data)
        result = load(f)
        assert (result.config is None) == bool(result.problems)


# --- regressions found by fuzz/fuzz_config.py (atheris) -------------------------------------

def test_a_path_with_a_nul_character_is_a_problem(tmp_path: Path) -> None:
    """No file system takes a NUL; resolving it raised ValueError out of load()."""
    f = tmp_path / "box.toml"
    f.write_text('[cache]\ndir = "st\\u0000ate"\n[source]\ntrusted_keys = ["ok.pub", "k\\u0000"]\n',
                 encoding="utf-8")
    result = load(f)
    assert result.config is None
    assert [(p.file, p.key) for p in result.problems] == \
        [(str(f), "cache.dir"), (str(f), "source.trusted_keys")]
    assert all("NUL" in p.message for p in result.problems)


def test_a_timezone_naming_a_folder_is_a_problem(tmp_path: Path) -> None:
    """ZoneInfo("Asia") raised IsADirectoryError (an OSError) out of load()."""
    f = tmp_path / "box.toml"
    f.write_text('timezone = "Asia"\n', encoding="utf-8")
    (p,) = load(f).problems
    assert p.key == "timezone" and "IANA timezone" in p.message


def test_render_writes_toml_dates_times_and_inline_tables_back(tmp_path: Path) -> None:
    """An invalid file is rendered from its raw values: TOML dates, times and inline tables
    in a list made json.dumps raise TypeError."""
    import tomllib

    from kiosk_config import render

    text = ('[display]\non_hours = 1979-05-27T07:32:00Z\ngeometry = 07:32:00\n'
            'rotation = 1979-05-27\n[source]\ntrusted_keys = [{a = 1979-05-27T07:32:00, '
            '"b c" = [1, {d = 00:00:00.5}]}]\n')
    f = tmp_path / "box.toml"
    f.write_text(text, encoding="utf-8")
    result = load(f)
    assert result.problems
    back = tomllib.loads(render(result))
    assert back == tomllib.loads(text)


def test_render_escapes_delete_in_strings(tmp_path: Path) -> None:
    """JSON leaves U+007F (DEL) as it is; a TOML string may not hold it unescaped, so
    `eboard config check` printed something that was not TOML."""
    import tomllib

    from kiosk_config import render

    f = tmp_path / "box.toml"
    text = ('[board]\nname = "a\\u007fb"\nid = "\\u007f"\n'
            '[source]\ntrusted_keys = [{"\\u007f" = "\\u007f"}]\n')
    f.write_text(text, encoding="utf-8")
    result = load(f)
    assert result.problems  # the id is not a valid id
    assert tomllib.loads(render(result)) == tomllib.loads(text)


@pytest.mark.parametrize("text", [
    '[source]\ntoken_file = "to\\u0000ken"\n ["k\\u0000"]\n',  # atheris, 25-min run
    '[display]\n"a\\nb" = 1\n',
    '[board]\nid = "x\\u0000\\n\\u007f"\n',
])
def test_render_keeps_control_characters_out_of_comments(tmp_path: Path, text: str) -> None:
    """A problem names a key or a value; with a NUL or a newline in it, the "# ERROR"
    comment `eboard config check` printed was not TOML (or, with a newline, went on as a
    line of TOML). They are written as \\uXXXX there."""
    import tomllib

    from kiosk_config import render

    f = tmp_path / "box.toml"
    f.write_text(text, encoding="utf-8")
    result = load(f)
    assert result.problems
    printed = render(result)
    tomllib.loads(printed)
    assert all(line.startswith("#") or "=" in line or line.startswith("[") or not line
               for line in printed.splitlines())
