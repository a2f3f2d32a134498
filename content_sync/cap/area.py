"""Does a CAP <area> cover this board? Geocode, polygon, circle, or areaDesc names
(read as the administrative hierarchy, places.py).

Everything here is pure and total: malformed geometry (empty polygons occur in real
feeds, and so do stray commas) simply does not match; it never raises.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from content_sync.cap.model import Area
from content_sync.cap.places import names_cover

EARTH_RADIUS_KM = 6371.0088
_NON_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True)
class BoardArea:
    """Where the board stands, from ``[cap]`` in the config."""

    geocodes: tuple[str, ...] = ()
    area_names: tuple[str, ...] = ()
    position: tuple[float, float] | None = None  # (latitude, longitude)

    @property
    def empty(self) -> bool:
        return not (self.geocodes or self.area_names or self.position)


def fold(text: str) -> str:
    """Lower case, no accents, đ→d, words separated by single spaces: 'Mường Tè' → 'muong te'."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
    return _NON_WORD.sub(" ", bare).strip()


def _point(text: str) -> tuple[float, float] | None:
    lat_s, sep, lon_s = text.partition(",")
    if not sep:
        return None
    try:
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon)) or abs(lat) > 90 or abs(lon) > 180:
        return None
    return lat, lon


def parse_polygon(text: str) -> list[tuple[float, float]] | None:
    """'lat,lon lat,lon …' as points; None when there are fewer than 3 usable points."""
    points = []
    for pair in text.split():
        p = _point(pair)
        if p is None:
            return None
        points.append(p)
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    return points if len(points) >= 3 else None


def in_polygon(lat: float, lon: float, polygon: list[tuple[float, float]]) -> bool:
    """Even-odd ray casting, longitude as x and latitude as y (fine at commune scale)."""
    inside = False
    j = len(polygon) - 1
    for i in range(len(polygon)):
        yi, xi = polygon[i]
        yj, xj = polygon[j]
        if (yi > lat) != (yj > lat):
            x_cross = xi + (lat - yi) * (xj - xi) / (yj - yi)
            if lon < x_cross:
                inside = not inside
        j = i
    return inside


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance between two (lat, lon) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (math.sin((lat2 - lat1) / 2) ** 2
         + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def in_circle(lat: float, lon: float, circle: str) -> bool:
    """CAP circle 'lat,lon radius_km' contains the point."""
    parts = circle.split()
    if len(parts) != 2:
        return False
    centre = _point(parts[0])
    try:
        radius = float(parts[1])
    except ValueError:
        return False
    if centre is None or not math.isfinite(radius) or radius < 0:
        return False
    return distance_km((lat, lon), centre) <= radius


def geocode_matches(board: Iterable[str], geocodes: Iterable[tuple[str, str]]) -> bool:
    """'valueName=value' matches that pair (name without regard to case); 'value' any name.

    A value holding several codes separated by spaces (as some feeds send) matches
    when any of them does.
    """
    pairs = {(n.strip().lower(), v) for n, value in geocodes for v in value.split()}
    values = {v for _, v in pairs}
    for code in board:
        name, sep, value = code.partition("=")
        if sep and (name.strip().lower(), value.strip()) in pairs:
            return True
        if not sep and code.strip() in values:
            return True
    return False


def name_matches(names: Iterable[str], desc: str) -> bool:
    """areaDesc names a place the board is in: its most specific unit is one of ``names``
    and none of its units contradicts them (places.py). Not any name found anywhere:
    "Xã Pa Tần, …, tỉnh Lai Châu" is not every board of Lai Châu."""
    return names_cover(names, desc)


def area_matches(board: BoardArea, area: Area) -> bool:
    if board.geocodes and geocode_matches(board.geocodes, area.geocodes):
        return True
    if board.position is not None:
        lat, lon = board.position
        for text in area.polygons:
            poly = parse_polygon(text)
            if poly is not None and in_polygon(lat, lon, poly):
                return True
        if any(in_circle(lat, lon, c) for c in area.circles):
            return True
    return bool(board.area_names) and name_matches(board.area_names, area.desc)


def covers(board: BoardArea, areas: Iterable[Area]) -> bool:
    """True when any of an info's areas covers the board."""
    return any(area_matches(board, a) for a in areas)
