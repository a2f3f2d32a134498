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
    (["Lai Châu"], "Tỉnh Lai Châu Mới", False),  # a name is compared whole
    (["Châu"], "Lai Châu", False),
    (["Lai Châu"], "Lai", False),
    (["Tè"], "Mường Tèo", False),  # whole words only
    ([""], "anything", False),
    (["Mường Tè"], "", False),
])
def test_names_in_area_desc(names: list[str], desc: str, expected: bool) -> None:
    assert name_matches(names, desc) is expected


DOCUMENTED = ["Pa Vệ Sủ", "Mường Tè", "Lai Châu"]  # the example of README.md
WITH_LEVELS = ["Xã Pa Vệ Sủ", "Tỉnh Lai Châu"]    # after 1/7/2025: no district


@pytest.mark.parametrize(("desc", "documented", "with_levels"), [
    # a commune elsewhere in the province is not this board's (the defect: it was)
    ("Xã Pa Tần, huyện Nậm Nhùn, tỉnh Lai Châu", False, False),
    ("Xã Pa Tần, tỉnh Lai Châu", False, False),
    ("Xã Pa Tần huyện Nậm Nhùn tỉnh Lai Châu", False, False),  # no commas
    ("Các xã Pa Tần, Nậm Hàng, tỉnh Lai Châu", False, False),
    # the province as a whole still reaches every board of it
    ("tỉnh Lai Châu", True, True),
    ("TỈNH LAI CHÂU", True, True),
    ("Lai Châu", True, True),
    ("Vùng núi phía Bắc tỉnh Lai Châu", True, True),  # a qualified province: all of it
    ("Các tỉnh: Điện Biên; Lai Châu; Lào Cai", True, True),
    ("tỉnh Điện Biên và tỉnh Lai Châu", True, True),
    ("tỉnh Điện Biên", False, False),
    # its own commune, with or without the legacy district, in a list, by village
    ("Xã Pa Vệ Sủ, huyện Mường Tè, tỉnh Lai Châu", True, True),
    ("Xã Pa Vệ Sủ, tỉnh Lai Châu", True, True),
    ("Các xã: Mù Cả, Pa Vệ Sủ (huyện Mường Tè), tỉnh Lai Châu", True, True),
    ("Bản Nậm Ma, xã Pa Vệ Sủ, tỉnh Lai Châu", True, True),
    ("Pa Ve Su commune, Muong Te district, Lai Chau", True, True),  # no marks at all
    ("Xa Pa Ve Su, tinh Lai Chau", True, True),
    # a commune of the same name in another province
    ("Xã Pa Vệ Sủ, tỉnh Điện Biên", True, False),  # the documented list names no levels
    # a legacy district: only a board that names it has it
    ("Huyện Mường Tè, tỉnh Lai Châu", True, False),
    ("Huyện Nậm Nhùn, tỉnh Lai Châu", False, False),
    # marks count: "Pa Vê Su" is another name
    ("Xã Pa Vê Su, tỉnh Lai Châu", False, False),
    ("Xã Pa Vệ Sủ; Xã Pa Tần, tỉnh Lai Châu", True, True),  # two places, one is ours
])
def test_names_follow_the_administrative_hierarchy(desc: str, documented: bool,
                                                   with_levels: bool) -> None:
    assert name_matches(DOCUMENTED, desc) is documented
    assert name_matches(WITH_LEVELS, desc) is with_levels


@pytest.mark.parametrize(("board", "desc", "expected"), [
    (["Xã Hoà Bình", "Tỉnh Thanh Hoá"], "Xã Hòa Bình, tỉnh Thanh Hóa", True),  # tone placement
    (["Xã Hòa Bình"], "XÃ HOÀ BÌNH", True),
    (["Xa Pa Ve Su"], "Xã Pa Vệ Sủ, tỉnh Lai Châu", True),  # typed without marks
    (["Xã Pa Vệ Sủ"], "Xã Pa Vê Su", False),
    (["Xã Làng Mô", "Tỉnh Lai Châu"], "Xã Làng Mô, tỉnh Lai Châu", True),  # "làng" in a name
    (["Phường 1", "Quận 3", "Thành phố Hồ Chí Minh"], "Quận 3, TP. Hồ Chí Minh", True),
    (["Phường 1", "Quận 3", "Thành phố Hồ Chí Minh"], "Quận 5, TP. Hồ Chí Minh", False),
    (["Phường 1", "Thành phố Hồ Chí Minh"], "TP. Hồ Chí Minh", True),
    (["Phường Tân Phong", "Thành phố Lai Châu", "Tỉnh Lai Châu"],
     "Phường Đông Phong, thành phố Lai Châu, tỉnh Lai Châu", False),
    (["Xã Pa Vệ Sủ, tỉnh Lai Châu"], "Xã Pa Tần, tỉnh Lai Châu", False),  # one chain entry
    (["Xã Pa Vệ Sủ, tỉnh Lai Châu"], "Xã Pa Vệ Sủ, tỉnh Điện Biên", False),
    (["Bản Nậm Ma", "Xã Pa Vệ Sủ"], "Bản Nậm Sì, xã Pa Vệ Sủ", False),  # it names its village
    (["Tỉnh Lai Châu"], "Xã Pa Tần, tỉnh Lai Châu", False),  # a province board: the province
    (["Catalina and Santa Barbara Islands"],
     "Catalina and Santa Barbara Islands; Los Angeles County Coast", True),
])
def test_names_board_forms(board: list[str], desc: str, expected: bool) -> None:
    assert name_matches(board, desc) is expected


@given(st.lists(st.text(max_size=40), max_size=4), st.text(max_size=300))
def test_name_matching_never_raises(board: list[str], desc: str) -> None:
    name_matches(board, desc)


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


def test_only_the_first_20000_characters_of_an_area_desc_are_read() -> None:
    ours = "Xã Pa Vệ Sủ, tỉnh Lai Châu"
    filler = "Xã Nậm Hàng, tỉnh Lai Châu; " * 700  # 19 600 characters
    assert name_matches(WITH_LEVELS, filler + ours)
    assert not name_matches(WITH_LEVELS, filler * 2 + ours)  # a hostile size costs nothing
