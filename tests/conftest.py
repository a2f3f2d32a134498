"""Shared test set-up: Qt offscreen, and no reading of the machine's /etc/eboard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def _isolated_etc(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point EBOARD_ETC at an empty folder so tests never read the box's real config."""
    etc = tmp_path_factory.mktemp("etc-eboard")
    monkeypatch.setenv("EBOARD_ETC", str(etc))
    return etc
