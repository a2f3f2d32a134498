"""Area matching: geocodes, polygons (empty ones too), circles, accent-insensitive names."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from content_sync.cap.area import (
    BoardArea,
    area_matches,
    distance_km,
    fold,
    geocode_matches,
    in_circle,
    in_polygon,
    name_matches,
    parse_polygon,
)
from content_sync.cap.model import Area
from tests.kit.cap import LAT, LON, POLYGON_AROUND, POLYGON_ELSEWHERE

BOARD = BoardArea(position=(LAT, LON))


def test_fold_removes_accents_case_and_punctuation() -> None:
    assert fold("Xã Pa Vệ Sủ, huyện Mường Tè") == "xa pa ve su huyen muong te"
    assert fold("ĐIỆN BIÊN") == "dien bien"


@pytest.mark.parametrize(("names", "desc", "expected"), [
    (["Mường Tè"], "Huyện Mường Tè, tỉnh Lai Châu", True),
    (["muong te"], "HUYỆN MƯỜNG TÈ", True),
    (["Lai Châu"], "Các tỉnh: Điện Biên; Lai Châu; Lào Cai", True),
    (["Lai Châu"], "Tỉnh Lai Châu Mới", True),
    (["Châu"], "Lai Châu", True),
    (["Lai Châu"], "Lai", False),
    (["Tè"], "Mường Tèo", False),  # whole words only
    ([""], "anything", False),
    (["Mường Tè"], "", False),
])
def test_names_in_area_desc(names: list[str], desc: str, expected: bool) -> None:
    assert name_matches(names, desc) is expected


@pytest.mark.parametrize(("board", "geocodes", "expected"), [
    (["MA_XA=03085"], [("MA_XA", "03085")], True),
    (["ma_xa=03085"], [("MA_XA", "03085")], True),  # valueName without regard to case
    (["MA_XA=03085"], [("MA_HUYEN", "03085")], False),
    (["03085"], [("MA_HUYEN", "03085")], True),  # a plain value matches under any name
    (["SAME=006037"], [("SAME", "006037")], True),
    (["UGC=WYZ278"], [("UGC", "WYZ277 WYZ278 WYZ279")], True),  # several codes in one value
    (["UGC=WYZ27"], [("UGC", "WYZ277 WYZ278")], False),
    (["03085"], [], False),
])
def test_geocodes(board: list[str], geocodes: list[tuple[str, str]], expected: bool) -> None:
    assert geocode_matches(board, geocodes) is expected


@pytest.mark.parametrize(("text", "inside"), [
    (POLYGON_AROUND, True),
    (POLYGON_ELSEWHERE, False),
    ("22.0,102.0 22.0,103.0 23.0,103.0", True),  # not closed: still a triangle
    ("", False),
    ("   ", False),
    ("22.0,102.0 23.0,103.0", False),  # two points: no area
    ("22.0,102.0 x,y 23.0,103.0 22.0,102.0", False),
    ("22.0;102.0 22.0;103.0 23.0;103.0 22.0;102.0", False),
    ("95,102 22,103 23,103 95,102", False),  # latitude out of range
    ("nan,nan 1,1 2,2 nan,nan", False),
])
def test_polygons(text: str, inside: bool) -> None:
    poly = parse_polygon(text)
    assert (poly is not None and in_polygon(LAT, LON, poly)) is inside


def test_concave_polygon() -> None:
    # a U shape: the board sits in the notch, which is outside
    u = parse_polygon("22,102 22,103 23,103 23,102.8 22.2,102.8 22.2,102.2 23,102.2 23,102 22,102")
    assert u is not None
    assert not in_polygon(22.5, 102.5, u)
    assert in_polygon(22.1, 102.5, u)
    assert in_polygon(22.5, 102.1, u)


@pytest.mark.parametrize(("circle", "inside"), [
    ("22.40,102.60 1", True),
    ("22.45,102.65 10", True),   # about 7.5 km away
    ("22.45,102.65 5", False),
    ("22.40,102.60 0", True),   # the very point
    ("22.40,102.60", False),
    ("22.40,102.60 -5", False),
    ("x,y 5", False),
    ("", False),
    ("22.40,102.60 inf", False),
])
def test_circles(circle: str, inside: bool) -> None:
    assert in_circle(LAT, LON, circle) is inside


def test_distance_is_great_circle() -> None:
    # one degree of latitude is about 111.2 km
    assert distance_km((22.0, 102.0), (23.0, 102.0)) == pytest.approx(111.2, abs=0.2)


def test_area_matches_by_any_route() -> None:
    board = BoardArea(geocodes=("MA_XA=03085",), area_names=("Pa Vệ Sủ",), position=(LAT, LON))
    assert area_matches(board, Area(geocodes=(("MA_XA", "03085"),)))
    assert area_matches(board, Area(polygons=("", POLYGON_AROUND)))
    assert area_matches(board, Area(circles=("22.40,102.60 3",)))
    assert area_matches(board, Area(desc="xã PA VỆ SỦ"))
    assert not area_matches(board, Area(desc="Hà Nội", polygons=("",), circles=("",)))
    assert not area_matches(BoardArea(), Area(desc="Pa Vệ Sủ", polygons=(POLYGON_AROUND,)))


@given(st.text(max_size=200), st.text(max_size=60), st.floats(-90, 90), st.floats(-180, 180))
def test_area_matching_never_raises(polygon: str, circle: str, lat: float, lon: float) -> None:
    board = BoardArea(geocodes=("a=b", "c"), area_names=("Lai Châu",), position=(lat, lon))
    area_matches(board, Area(desc=polygon, polygons=(polygon,), circles=(circle,),
                             geocodes=((circle, polygon),)))
