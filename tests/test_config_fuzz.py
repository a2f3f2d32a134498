"""Property tests: the config loader never raises on any file; it reports problems."""

from __future__ import annotations

import tempfile
from pathlib import Path

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
