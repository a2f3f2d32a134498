"""Logging: journal priorities, flood control, transitions only."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eboard.logsetup import JournalFormatter, RepeatFilter, Transitions, setup_logging

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, list[str], Clock]]:
    clock = Clock()
    lines: list[str] = []

    class ListHandler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    handler = ListHandler()
    handler.addFilter(RepeatFilter(burst=3, interval=60, clock=clock))
    logger = logging.getLogger("eboard.test.flood")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, lines, clock
    logger.removeHandler(handler)


def test_a_flood_of_one_error_is_held_back_and_counted(
        captured: tuple[logging.Logger, list[str], Clock]) -> None:
    logger, lines, clock = captured
    for i in range(1000):
        logger.error("cannot reach http://10.0.0.1/ (attempt %d)", i)
        clock.now += 0.01
    assert len(lines) == 3
    assert lines[0] == "cannot reach http://10.0.0.1/ (attempt 0)"
    assert "held back for 60 s" in lines[2]
    # Other messages are not affected by the flood.
    logger.warning("disk almost full")
    assert lines[-1] == "disk almost full"
    # After the interval the next copy passes and says how many were held back.
    clock.now += 60
    logger.error("cannot reach http://10.0.0.1/ (attempt %d)", 1000)
    assert lines[-1] == ("cannot reach http://10.0.0.1/ (attempt 1000) "
                         "(and 997 more like it held back in the last 60 s)")
    assert len(lines) == 5


def test_same_text_at_another_level_or_logger_is_another_message(
        captured: tuple[logging.Logger, list[str], Clock]) -> None:
    logger, lines, _ = captured
    for _ in range(10):
        logger.error("x")
        logger.info("x")
    assert len(lines) == 6


def test_memory_is_bounded() -> None:
    f = RepeatFilter(max_keys=10)
    for i in range(100):
        rec = logging.LogRecord("n", logging.INFO, __file__, 1, f"msg {chr(65 + i % 26)}{i}",
                                None, None)
        f.filter(rec)
    assert len(f._seen) <= 10


def test_journal_lines_carry_a_priority_and_no_timestamp() -> None:
    fmt = JournalFormatter()
    rec = logging.LogRecord("eboard.sync", logging.ERROR, __file__, 1, "manifest refused: %s",
                            ("bad signature",), None)
    assert fmt.format(rec) == "<3>eboard.sync: manifest refused: bad signature"
    rec = logging.LogRecord("eboard.sync", logging.INFO, __file__, 1, "two\nlines", None, None)
    assert fmt.format(rec) == "<6>eboard.sync: two\n<6>lines"


def test_journal_stream_is_detected_from_journal_stream(tmp_path: Path) -> None:
    """As under systemd: $JOURNAL_STREAM names stderr's device and inode."""
    code = (
        "import logging, sys\n"
        "from eboard.logsetup import setup_logging\n"
        "setup_logging()\n"
        "logging.getLogger('eboard.x').warning('clock not synchronised')\n"
    )
    out = tmp_path / "stderr.txt"
    with out.open("w") as f:
        st = os.fstat(f.fileno())
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}", PYTHONPATH=str(ROOT))
        subprocess.run([sys.executable, "-c", code], stderr=f, env=env, check=True, timeout=30)
        env["JOURNAL_STREAM"] = "1:2"  # stderr is something else: a terminal format
        subprocess.run([sys.executable, "-c", code], stderr=f, env=env, check=True, timeout=30)
    first, second = out.read_text().splitlines()
    assert first == "<4>eboard.x: clock not synchronised"
    assert second.endswith("eboard.x WARNING: clock not synchronised") and second[:4].isdigit()


def test_setup_logging_replaces_its_own_handler_only() -> None:
    root = logging.getLogger()
    before = [h for h in root.handlers if not getattr(h, "_eboard", False)]
    stream = io.StringIO()
    h1 = setup_logging(stream=stream)
    h2 = setup_logging(verbose=True, stream=stream)
    try:
        assert h1 not in root.handlers and h2 in root.handlers
        assert root.level == logging.DEBUG
        logging.getLogger("eboard.y").debug("visible")
        assert "visible" in stream.getvalue()
    finally:
        root.removeHandler(h2)
        assert root.handlers == before


def test_transitions_log_changes_only() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("eboard.test.transitions")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        t = Transitions(logger)
        results = [t.set("source", "down", logging.WARNING, "source down") for _ in range(50)]
        results.append(t.set("source", "up", logging.INFO, "source back"))
        results.append(t.set("source", "up", logging.INFO, "source back"))
        assert results.count(True) == 2
        assert stream.getvalue().splitlines() == ["source down", "source back"]
        assert t.get("source") == "up"
    finally:
        logger.removeHandler(handler)
