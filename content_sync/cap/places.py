"""Place names in a CAP ``areaDesc``, read as Vietnam's administrative hierarchy.

A Vietnamese area text names a unit and every unit above it, smallest first:
"Xã Pa Tần, huyện Nậm Nhùn, tỉnh Lai Châu". Finding "Lai Châu" in it says only that
the commune is somewhere in the province, so a board does not match on any name it
finds: the alert's *most specific* unit must be one of the board's places, and no
unit the alert names may contradict one the board names at the same level.

- Levels come from the words before a name: thôn/bản/ấp/… (village), xã/phường/thị
  trấn/đặc khu (commune), huyện/quận/thị xã (district, abolished on 1/7/2025 but still
  in old feeds), tỉnh (province); "thành phố"/"TP" is a district or a province, as its
  place in the text tells. English suffixes ("Pa Ve Su commune") count too. A name
  without such a word has no known level. These are words of the language; the names
  of places come only from the config (``cap.area_names``) and the feed.
- ";" and new lines separate places; "," "(" ")" ":" and "và" separate the units of
  one place. "Các xã A, B, huyện C" names two communes. Words before the first unit
  ("Vùng núi phía Bắc tỉnh Lai Châu") qualify it: the alert reaches the whole unit.
- A village is never the unit that must match: a commune's boards show a warning for
  any of its villages (unless the board names its own village, which then must agree).
- Names are compared word by word, in NFC, without regard to case, and with the old
  and new tone placement (Hoà/Hòa) taken as the same. The marks count: "Pa Vê Su" is
  not "Pa Vệ Sủ". A name written with no marks at all (plain ASCII, e.g. from an
  English info or a keyboard without Vietnamese input) is compared without marks.

Pure and total: any text gives a (maybe empty) reading; nothing here raises. Only the
first 20 000 characters of an areaDesc are read, so a hostile one costs milliseconds.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache


class Level(IntEnum):
    VILLAGE = 0
    COMMUNE = 1
    DISTRICT = 2
    PROVINCE = 3


V, C, D, P = Level.VILLAGE, Level.COMMUNE, Level.DISTRICT, Level.PROVINCE
CITY = frozenset({D, P})
# (words before a name, its possible levels)
PREFIXES: tuple[tuple[str, frozenset[Level]], ...] = (
    ("tổ dân phố", frozenset({V})), ("khu phố", frozenset({V})), ("thôn", frozenset({V})),
    ("bản", frozenset({V})), ("ấp", frozenset({V})), ("xóm", frozenset({V})),
    ("làng", frozenset({V})), ("buôn", frozenset({V})), ("khóm", frozenset({V})),
    ("xã", frozenset({C})), ("phường", frozenset({C})), ("thị trấn", frozenset({C})),
    ("đặc khu", frozenset({C})), ("tt", frozenset({C})),
    ("huyện", frozenset({D})), ("quận", frozenset({D})), ("thị xã", frozenset({D})),
    ("tx", frozenset({D})),
    ("tỉnh", frozenset({P})), ("thành phố", CITY), ("tp", CITY),
)
SUFFIXES: dict[str, frozenset[Level]] = {  # English: "Pa Ve Su commune"
    "village": frozenset({V}), "commune": frozenset({C}), "ward": frozenset({C}),
    "district": frozenset({D}), "province": frozenset({P}), "city": CITY,
}
PLURAL = ("các", "những")
MAX_DESC_CHARS = 20_000  # of one areaDesc; a list of every commune of a province is ~5 000
TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
_WORD = re.compile(r"[\w\u0300-\u036f]+")
_PLACES = re.compile(r"[;\n\r|]+")
_UNITS = re.compile(r"[,():]+|\s+và\s+", re.IGNORECASE)


def exact_key(word: str) -> str:
    """Case-folded NFC, the tone mark moved to the end: 'Hoà' and 'Hòa' give one key."""
    decomposed = unicodedata.normalize("NFD", word.casefold())
    tones = [ch for ch in decomposed if ch in TONES]
    base = unicodedata.normalize("NFC", "".join(ch for ch in decomposed if ch not in TONES))
    return base + "".join(tones[:1])


def bare_key(word: str) -> str:
    """Without any mark, đ as d: 'Điện' → 'dien'."""
    decomposed = unicodedata.normalize("NFD", word.casefold().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _marked(words: Sequence[str]) -> bool:
    return any(not w.isascii() for w in words)


@dataclass(frozen=True)
class Name:
    words: tuple[str, ...]

    @property
    def marked(self) -> bool:
        return _marked(self.words)

    def same(self, other: Name) -> bool:
        """Equal word by word; without marks when either is written without any."""
        key = exact_key if self.marked and other.marked else bare_key
        return (len(self.words) == len(other.words) and bool(self.words)
                and all(key(a) == key(b) for a, b in zip(self.words, other.words, strict=True)))


@dataclass
class Unit:
    """One administrative unit (or several at one level, "các xã A, B"); no levels =
    not known."""

    levels: frozenset[Level]
    names: list[Name] = field(default_factory=list)
    plural: bool = False


@lru_cache(maxsize=64)
def _prefix_keys(marked: bool) -> tuple[tuple[tuple[str, ...], frozenset[Level]], ...]:
    key = exact_key if marked else bare_key
    keyed = [(tuple(key(w) for w in p.split()), levels) for p, levels in PREFIXES]
    return tuple(sorted(keyed, key=lambda x: -len(x[0])))  # "thị xã" before "xã"


def _prefix_at(keys: Sequence[str], i: int, marked: bool) -> tuple[int, frozenset[Level]]:
    for words, levels in _prefix_keys(marked):
        if tuple(keys[i:i + len(words)]) == words:
            return len(words), levels
    return 0, frozenset()


def _piece_units(words: list[str]) -> list[Unit]:
    """One comma piece: 'Xã Pa Vệ Sủ huyện Mường Tè' → two units; 'Mù Cả' → one unknown."""
    marked = _marked(words)
    key = exact_key if marked else bare_key
    keys = [key(w) for w in words]
    plural_keys = {key(w) for w in PLURAL}
    # (levels, where its prefix starts, where its name starts, plural)
    opened: list[tuple[frozenset[Level], int, int, bool]] = []
    i = 0
    while i < len(words):
        n, levels = _prefix_at(keys, i, marked)
        # a prefix opens a unit at the start, or one above the unit being read (a
        # commune may be called "Làng Mô": "làng" inside it opens nothing)
        if n and i + n < len(words) and (not opened or min(levels) > max(opened[-1][0])):
            opened.append((levels, i, i + n, i > 0 and keys[i - 1] in plural_keys))
            i += n + 1
            continue
        if n and i + n == len(words) and not opened:  # "Các xã:" – the names follow
            return [Unit(levels, [], plural=True)]
        i += 1
    if opened:  # words before the first unit only qualify it
        ends = [prefix for _, prefix, _, _ in opened[1:]] + [len(words)]
        return [Unit(levels, [Name(tuple(words[first:end]))], plural)
                for (levels, _, first, plural), end in zip(opened, ends, strict=True)]
    if len(words) > 1 and bare_key(words[-1]) in SUFFIXES and not marked:
        return [Unit(SUFFIXES[bare_key(words[-1])], [Name(tuple(words[:-1]))])]
    return [Unit(frozenset(), [Name(tuple(words))])] if words else []


def _narrow(chain: list[Unit]) -> None:
    """'Thành phố' between a district and a province (or before a province) is the level
    that fits: 'Quận 1, TP Hồ Chí Minh' → province; 'TP Lai Châu, tỉnh Lai Châu' → district."""
    known = [u for u in chain if u.levels]
    for k, u in enumerate(known):
        lo = max(known[k - 1].levels) if k else -1
        hi = min(known[k + 1].levels) if k + 1 < len(known) else 99
        fitting = frozenset(x for x in u.levels if lo < x < hi)
        if fitting:
            u.levels = fitting


def read_places(text: str) -> tuple[tuple[Unit, ...], ...]:
    """An areaDesc as places, each a chain of units smallest first. Only the first
    ``MAX_DESC_CHARS`` are read (cut after a separator): real ones are far shorter."""
    if len(text) > MAX_DESC_CHARS:
        cut = max(text.rfind(sep, 0, MAX_DESC_CHARS) for sep in ",;\n")
        text = text[:max(cut, 0)]
    return _read(unicodedata.normalize("NFC", text))


@lru_cache(maxsize=256)  # keys of at most MAX_DESC_CHARS: a few MB at the most
def _read(text: str) -> tuple[tuple[Unit, ...], ...]:
    places: list[list[Unit]] = []
    for part in _PLACES.split(text):
        chain: list[Unit] = []
        for piece in _UNITS.split(part):
            for unit in _piece_units(_WORD.findall(piece)):
                known = [u for u in chain if u.levels]
                prev = known[-1] if known else None
                if not unit.levels and chain and chain[-1].plural:
                    chain[-1].names += unit.names  # "các xã A, B"
                elif prev is None or not unit.levels:
                    chain.append(unit)
                elif unit.levels == prev.levels and prev is chain[-1]:
                    prev.names += unit.names  # "xã A, xã B"
                    prev.plural = prev.plural or unit.plural
                elif max(unit.levels) > min(prev.levels):
                    chain.append(unit)
                else:  # a unit no larger than the one before: another place
                    places.append(chain)
                    chain = [unit]
        places.append(chain)
    out = [c for c in places if c]
    for c in out:
        _narrow(c)
    return tuple(tuple(c) for c in out)


@lru_cache(maxsize=256)
def board_units(names: tuple[str, ...]) -> tuple[Unit, ...]:
    """The board's places from ``cap.area_names``: each entry one unit ("Xã Pa Vệ Sủ",
    "Lai Châu") or a whole chain ("Xã Pa Vệ Sủ, tỉnh Lai Châu")."""
    return tuple(u for n in names for place in read_places(n) for u in place)


def _state(unit: Unit, board: Sequence[Unit]) -> str:
    for b in board:
        fits = not unit.levels or not b.levels or unit.levels & b.levels
        if fits and any(a.same(x) for a in unit.names for x in b.names):
            return "match"
    if unit.levels and any(b.levels and b.levels <= unit.levels for b in board):
        return "contradicts"  # the board names its own unit at this level: another one
    return "unknown"


def place_covers(chain: Sequence[Unit], board: Sequence[Unit]) -> bool:
    """The place's most specific unit (a village only if it names nothing else) is one of
    the board's, and none of its units contradicts the board's."""
    target = next((u for u in chain if u.levels != {Level.VILLAGE}), chain[0])
    states = [_state(u, board) for u in chain]
    return states[chain.index(target)] == "match" and "contradicts" not in states


def names_cover(area_names: Iterable[str], desc: str) -> bool:
    """Does ``desc`` (an areaDesc) name a place containing the board's ``area_names``?"""
    board = board_units(tuple(area_names))
    return bool(board) and any(place_covers(c, board) for c in read_places(desc))
