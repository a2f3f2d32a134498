"""The documented mapping from CAP to the board: priority, risk level, language."""

from __future__ import annotations

import pytest

from content_sync.cap.model import Info
from content_sync.cap.to_playlist import pick_language, priority_of, risk_level_of


@pytest.mark.parametrize(("severity", "urgency", "certainty", "expected"), [
    ("Extreme", "Immediate", "Observed", "emergency"),
    ("Extreme", "Expected", "Likely", "emergency"),
    ("Severe", "Immediate", "Possible", "emergency"),
    ("Severe", "Expected", "Unknown", "emergency"),
    ("Extreme", "Future", "Likely", "priority"),
    ("Severe", "Unknown", "Likely", "priority"),
    ("Moderate", "Immediate", "Observed", "priority"),
    ("Moderate", "Expected", "Likely", "priority"),
    ("Moderate", "Future", "Likely", "normal"),
    ("Minor", "Immediate", "Observed", "normal"),
    ("Unknown", "Immediate", "Observed", "normal"),
    ("Extreme", "Past", "Observed", "normal"),        # responsive action no longer required
    ("Extreme", "Immediate", "Unlikely", "normal"),   # not expected to occur
])
def test_priority_mapping(severity: str, urgency: str, certainty: str, expected: str) -> None:
    info = Info(severity=severity, urgency=urgency, certainty=certainty)
    assert priority_of(info) == expected


@pytest.mark.parametrize(("parameters", "expected"), [
    ((("riskLevel", "3"),), 3),
    ((("risk_level", "Level 5"),), 5),
    ((("Cấp độ rủi ro", "Cấp 4"),), 4),
    ((("capDoRuiRo", "2"),), 2),
    ((("disasterRiskLevel", "1"),), 1),
    ((("riskLevel", "6"),), None),
    ((("riskLevel", "12"),), None),
    ((("VTEC", "/O.CON.PAFG.HW.W.0011/"),), None),
    ((), None),
])
def test_risk_level_only_from_a_parameter(parameters: tuple[tuple[str, str], ...],
                                          expected: int | None) -> None:
    assert risk_level_of(Info(severity="Extreme", parameters=parameters)) == expected


@pytest.mark.parametrize(("present", "prefs", "expected"), [
    (["en-US", "vi-VN"], ["vi", "vi-VN"], "vi-VN"),
    (["en-US", "vi"], ["vi", "vi-VN"], "vi"),
    (["en-US", "VI-vn"], ["vi-VN"], "VI-vn"),
    (["en-US", "es-US"], ["vi", "vi-VN"], "en-US"),
    (["es-US", "en-US"], ["en"], "en-US"),
    (["fr"], [], "fr"),
])
def test_language_choice(present: list[str], prefs: list[str], expected: str) -> None:
    assert pick_language([Info(language=x) for x in present], prefs) == expected
