"""Property-based tests (hypothesis) for the manifest parser and its envelope."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from content_sync.protocol import dsse, manifest
from content_sync.protocol.manifest import ManifestError

SETTINGS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
KEY = Ed25519PrivateKey.generate()

sha = st.text("0123456789abcdef", min_size=64, max_size=64)
ident = st.text(st.characters(min_codepoint=33, max_codepoint=0x1EF9), min_size=1, max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    media = draw(st.dictionaries(sha, st.fixed_dictionaries({
        "size": st.integers(0, 10**10),
        "type": st.sampled_from(sorted(manifest.ALLOWED_TYPES))}), max_size=5))
    items: list[dict[str, Any]] = []
    for i, (h, info) in enumerate(media.items()):
        items.append({"id": f"m{i}", "type": str(info["type"]).split("/")[0], "media": h,
                      "duration": draw(st.floats(0.1, 3600))})
    items.append({"id": "t", "type": "text", "title": draw(ident), "body": draw(st.text())})
    return {
        "format": "eboard.manifest/1",
        "board": draw(ident),
        "version": draw(st.integers(1, manifest.MAX_VERSION)),
        "issued_at": "2026-11-24T08:00:00+07:00",
        "media": media,
        "playlists": [{"id": draw(ident), "priority": draw(
            st.sampled_from(["normal", "priority", "emergency"])), "items": items}],
        "ticker": [{"id": "t1", "text": draw(st.text())}],
        draw(st.sampled_from(["x-future", "extension"])): draw(json_values),  # ignored
    }


@SETTINGS
@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_refuse_with_one_line(data: bytes) -> None:
    try:
        manifest.parse(data)
    except ManifestError as e:
        assert "\n" not in str(e)


@SETTINGS
@given(json_values)
def test_any_json_parse_or_refuse_with_one_line(value: Any) -> None:
    try:
        manifest.parse(json.dumps(value).encode())
    except ManifestError as e:
        assert "\n" not in str(e) and str(e)


@SETTINGS
@given(manifests())
def test_valid_manifests_parse_and_keep_their_content(m: dict[str, Any]) -> None:
    parsed = manifest.parse(json.dumps(m).encode())
    assert parsed.version == m["version"] and parsed.board == m["board"]
    assert {h: (i.size, i.type) for h, i in parsed.media.items()} == \
        {h: (i["size"], i["type"]) for h, i in m["media"].items()}


@SETTINGS
@given(manifests(), st.sampled_from(["format", "board", "version", "issued_at"]))
def test_missing_required_field_is_refused(m: dict[str, Any], field: str) -> None:
    del m[field]
    with pytest.raises(ManifestError) as e:
        manifest.parse(json.dumps(m).encode())
    assert "\n" not in str(e.value)


@SETTINGS
@given(manifests(), st.text(max_size=80).filter(
    lambda s: not (len(s) == 64 and all(c in "0123456789abcdef" for c in s))))
def test_bad_media_name_is_refused(m: dict[str, Any], name: str) -> None:
    m["media"][name] = {"size": 1, "type": "image/png"}
    with pytest.raises(ManifestError, match="64 lowercase hex"):
        manifest.parse(json.dumps(m).encode())


@SETTINGS
@given(manifests(), json_values)
def test_ill_typed_version_or_media_is_refused(m: dict[str, Any], value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return
    m["version"] = value
    with pytest.raises(ManifestError):
        manifest.parse(json.dumps(m).encode())


@SETTINGS
@given(manifests(), st.integers(0, 10_000), st.integers(1, 255))
def test_signed_manifest_any_flipped_byte_is_refused(m: dict[str, Any], pos: int,
                                                     flip: int) -> None:
    body = json.dumps(m).encode()
    env = json.loads(dsse.sign(body, KEY))
    assert dsse.verify(json.dumps(env).encode(), [KEY.public_key()]).body == body
    tampered = bytearray(body)
    tampered[pos % len(tampered)] ^= flip
    env["payload"] = base64.b64encode(bytes(tampered)).decode()
    with pytest.raises(dsse.EnvelopeError):
        dsse.verify(json.dumps(env).encode(), [KEY.public_key()])


# --- regressions found by fuzz/fuzz_manifest.py (atheris) -----------------------------------

DEEP = b"[" * 100_000  # json.loads raises RecursionError (not a ValueError) from ~1000 levels


def test_deeply_nested_json_is_refused_with_one_line() -> None:
    with pytest.raises(ManifestError, match="not valid JSON") as e:
        manifest.parse(DEEP)
    assert "\n" not in str(e.value)
    # refused by its shape, before any parse (content_sync/protocol/dsse.py)
    with pytest.raises(dsse.EnvelopeError, match="braces, brackets and commas") as e2:
        dsse.verify(DEEP, [KEY.public_key()])
    assert "\n" not in str(e2.value)
    # behind a good signature too: the engine parses what verify() returns
    with pytest.raises(ManifestError, match="not valid JSON"):
        manifest.parse(dsse.verify(dsse.sign(DEEP, KEY), [KEY.public_key()]).body)


@pytest.mark.parametrize("envelope", [
    DEEP,
    json.dumps({"payload": base64.b64encode(DEEP).decode()}).encode(),
    json.dumps({"payload": base64.b64encode(b'{"version": Infinity}').decode()}).encode(),
    json.dumps({"payload": base64.b64encode(b'{"version": 1e999}').decode()}).encode(),
    json.dumps({"payload": base64.b64encode(b'{"version": NaN}').decode()}).encode(),
], ids=["deep-envelope", "deep-payload", "infinity", "1e999", "nan"])
def test_version_of_an_unreadable_envelope_is_0(envelope: bytes) -> None:
    """``eboard publish`` and the server's events read the version of what is there."""
    from content_sync.publish.build import manifest_version_in

    assert manifest_version_in(envelope) == 0


# A 25-minute atheris run: "\ud800" (half a surrogate pair) in an item's media name made
# pydantic's error message raise UnicodeEncodeError out of parse(). Lone surrogates in
# text were accepted as they were, and then no UTF-8 encoder took them (SQLite, the
# heartbeat): a title cut in the middle of an emoji by a UTF-16 tool could stop the
# player's records.
SURROGATE_TEXT = st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010)
                         | st.characters(max_codepoint=0x1F600), max_size=12)


def _with_escapes(m: dict[str, Any]) -> bytes:
    return json.dumps(m, ensure_ascii=True).encode()  # lone surrogates as \udXXX escapes


def test_a_lone_surrogate_in_a_media_name_is_refused_with_one_line() -> None:
    m = {"format": "eboard.manifest/1", "board": "b", "version": 2,
         "issued_at": "2026-11-24T08:00:00+07:00", "media": {},
         "playlists": [{"id": "p", "items": [
             {"id": "tb", "type": "text", "title": "x", "duration": 6,
              "media": "20e79ac2b48\ud8008f3564image"}]}]}
    with pytest.raises(ManifestError) as e:
        manifest.parse(_with_escapes(m))
    assert "\n" not in str(e.value)
    str(e.value).encode("utf-8")


def test_lone_surrogates_in_text_become_the_replacement_character() -> None:
    m = {"format": "eboard.manifest/1", "board": "b", "version": 2,
         "issued_at": "2026-11-24T08:00:00+07:00", "media": {},
         "playlists": [{"id": "p", "title": "Bão \ud83c", "items": [
             {"id": "tb", "type": "text", "title": "BÃO SỐ 9 \ud83c\udf00",
              "body": "\udf00Gió mạnh cấp 12\ud83c", "duration": 5}]}],
         "ticker": [{"id": "t", "text": "\ud800"}]}
    got = manifest.parse(_with_escapes(m))
    item = got.playlists[0].items[0]
    assert item.title == "BÃO SỐ 9 🌀"  # an escaped pair that is whole stays the emoji
    assert item.body == "\ufffdGió mạnh cấp 12\ufffd"
    assert got.playlists[0].title == "Bão \ufffd"
    assert got.ticker[0].text == "\ufffd"


def test_a_surrogate_encoded_as_bytes_becomes_the_replacement_character() -> None:
    """json.loads decodes bytes with "surrogatepass": ED BA BE, the bytes of U+DEBE as if
    it were a character, came through as a lone surrogate (the next atheris run)."""
    body = (b'{"format": "eboard.manifest/1", "board": "b", "version": 2, "issued_at": '
            b'"2026-11-24T08:00:00+07:00", "media": {}, "playlists": [{"id": "p", '
            b'"items": [{"id": "tb", "type": "text", "title": "B\xed\xba\xbeO", '
            b'"duration": 5}]}]}')
    got = manifest.parse(body)
    assert got.playlists[0].items[0].title == "B\ufffdO"


@SETTINGS
@given(manifests(), SURROGATE_TEXT, SURROGATE_TEXT, st.booleans())
def test_any_text_parses_into_strings_utf8_can_carry(m: dict[str, Any], title: str,
                                                     body: str, escaped: bool) -> None:
    m["playlists"][0]["items"][-1].update(title=title or "x", body=body)
    m["ticker"][0]["text"] = body
    raw = _with_escapes(m) if escaped else \
        json.dumps(m, ensure_ascii=False).encode("utf-8", "surrogatepass")
    try:
        got = manifest.parse(raw)
    except ManifestError as e:
        assert "\n" not in str(e)
        str(e).encode("utf-8")
        return
    item = got.playlists[0].items[-1]
    for text in (item.title or "", item.body or "", got.ticker[0].text):
        text.encode("utf-8")  # SQLite, the heartbeat and the log can take it
