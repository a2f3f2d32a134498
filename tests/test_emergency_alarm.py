"""The optional emergency alarm sound (config): a siren when an emergency comes on screen.

Real parts only: a real PlayerWindow (Qt offscreen) on a real database, and libVLC
playing the alarm through its 'afile' audio output, which writes what a sound card
would have been given into a WAV file. The tests read that file back and measure it:
its length (repeats × the sound), its level, and the siren's two tones.
"""

from __future__ import annotations

import array
import gc
import logging
import math
import re
import subprocess
import sys
import wave
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kiosk_config import load
from kiosk_config.schema import Config, EmergencyConfig
from player import alarm
from tests.kit.player import Board, make_config, playlist, vlc_wrappers, window_around

ROOT = Path(__file__).resolve().parents[1]
FULL_SCALE = 32767
RINGS = re.compile(r"^emergency alarm: \S+ x \d+ on ")

pytestmark = pytest.mark.skipif(alarm.vlc is None, reason="libVLC is not installed "
                                "(make setup installs libvlc5 and vlc-plugin-base)")


# -- helpers ---------------------------------------------------------------------------------

def alarm_config(tmp_path: Path, **emergency: Any) -> Config:
    config = make_config(tmp_path, geometry="320x180+0+0", header=False, ticker=False)
    return config.model_copy(update={"emergency": EmergencyConfig(**emergency)})


def afile_config(tmp_path: Path, out: Path, **emergency: Any) -> Config:
    return alarm_config(tmp_path, alarm=True, audio_output="afile", audio_device=str(out),
                        **emergency)


def emergency_playlist(config: Config, pid: str = "khan-cap", items: int = 1,
                       duration: float = 600) -> dict[str, Any]:
    return playlist(pid, [{
        "id": f"lu-{i}", "type": "text", "title": "CẢNH BÁO LŨ QUÉT",
        "body": "Mưa lớn gây nguy cơ lũ quét tại các bản ven suối Nậm Ma.",
        "duration": duration} for i in range(1, items + 1)],
        priority="emergency", risk_level=4, schedule=window_around(datetime.now(config.tz)))


def normal_playlist(config: Config) -> dict[str, Any]:
    return playlist("thong-bao", [{"id": "tb-1", "type": "text", "title": "THÔNG BÁO",
                                   "body": "Họp dân lúc 8 giờ sáng Chủ Nhật.", "duration": 600}],
                    schedule=window_around(datetime.now(config.tz)))


def open_window(config: Config, qtbot: Any, board: Board) -> Any:
    from player.window import PlayerWindow

    window = PlayerWindow(config)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.mode == "emergency", timeout=5000)
    return window


def alarm_state(window: Any) -> str | None:
    emergency = window.status().emergency
    return None if emergency is None else emergency.alarm


def read_wav(path: Path) -> tuple[float, array.array[int], int]:
    """(seconds, samples of the first channel, sample rate) of a 16-bit WAV file."""
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2, "afile writes 16-bit samples unless told otherwise"
        channels, rate, n = w.getnchannels(), w.getframerate(), w.getnframes()
        samples = array.array("h", w.readframes(n))
    if sys.byteorder == "big":
        samples.byteswap()
    return n / rate, array.array("h", samples[::channels]), rate


def rms(samples: array.array[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


def tone_hz(samples: array.array[int], rate: int) -> float:
    """The frequency of a pure-ish tone, from its zero crossings."""
    crossings = sum((a < 0) != (b < 0) for a, b in zip(samples, samples[1:], strict=False))
    return crossings / 2 / (len(samples) / rate)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "player.alarm" and r.levelno >= logging.WARNING]


def rings_in(caplog: pytest.LogCaptureFixture) -> int:
    return sum(bool(RINGS.match(r.getMessage())) for r in caplog.records
               if r.name == "player.alarm")


# -- the sound on screen ------------------------------------------------------------------------

def test_alarm_sounds_when_an_emergency_comes_on_screen(tmp_path: Path, qtbot: Any) -> None:
    out = tmp_path / "sound-card.wav"
    config = afile_config(tmp_path, out, alarm_repeats=3)
    board = Board(config)
    board.publish([emergency_playlist(config)])
    gc.collect()
    gc.disable()  # what is left must be freed without the cycle collector
    try:
        wrappers_before = vlc_wrappers()
        window = open_window(config, qtbot, board)
        assert alarm_state(window) in ("ringing", "done")
        qtbot.waitUntil(lambda: alarm_state(window) == "done", timeout=30000)
        assert window.mode == "emergency"
        window.close()
        board.close()
        left = vlc_wrappers() - wrappers_before
    finally:
        gc.enable()
    assert not left, f"the alarm's python-vlc objects outlived it: {dict(left)}"

    seconds, samples, rate = read_wav(out)
    sound, _, _ = read_wav(alarm.SOUND)
    assert sound == pytest.approx(2.0)
    assert seconds == pytest.approx(3 * sound, abs=0.3), "3 repeats of the 2 s siren"
    peak = max(abs(s) for s in samples)
    assert peak > 0.7 * FULL_SCALE, f"peak {peak}: the alarm is (nearly) silent"
    assert rms(samples) > 0.4 * FULL_SCALE
    # The siren's two tones, high then low, in each repeat (a quarter second of each).
    for start in (0.1, 2.1, 4.1):
        high = samples[int(start * rate):int((start + 0.3) * rate)]
        low = samples[int((start + 0.5) * rate):int((start + 0.8) * rate)]
        assert tone_hz(high, rate) == pytest.approx(alarm.TONES[0], rel=0.03)
        assert tone_hz(low, rate) == pytest.approx(alarm.TONES[1], rel=0.03)


def test_alarm_volume_scales_the_sound(tmp_path: Path, qtbot: Any) -> None:
    out = tmp_path / "sound-card.wav"
    config = afile_config(tmp_path, out, alarm_repeats=1, alarm_volume=50)
    board = Board(config)
    board.publish([emergency_playlist(config)])
    window = open_window(config, qtbot, board)
    qtbot.waitUntil(lambda: alarm_state(window) == "done", timeout=20000)
    window.close()
    board.close()
    _, samples, _ = read_wav(out)
    _, full, _ = read_wav(alarm.SOUND)
    assert max(abs(s) for s in samples) == pytest.approx(0.5 * max(abs(s) for s in full),
                                                         rel=0.05)


def test_no_alarm_when_it_is_off(tmp_path: Path, qtbot: Any) -> None:
    out = tmp_path / "sound-card.wav"
    config = afile_config(tmp_path, out).model_copy(
        update={"emergency": EmergencyConfig(alarm=False, audio_output="afile",
                                             audio_device=str(out))})
    board = Board(config)
    board.publish([emergency_playlist(config)])
    window = open_window(config, qtbot, board)
    qtbot.wait(2000)  # a ring would have opened the output within a fraction of that
    assert alarm_state(window) == "off"
    window.close()
    board.close()
    assert not out.exists()


def test_rings_once_per_emergency_not_per_item(tmp_path: Path, qtbot: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="player.alarm")
    out = tmp_path / "sound-card.wav"
    config = afile_config(tmp_path, out, alarm_repeats=1)
    board = Board(config)
    board.publish([emergency_playlist(config, items=2, duration=1)])
    window = open_window(config, qtbot, board)
    shown: list[str] = []
    window.item_started.connect(lambda _pid, item: shown.append(item))
    qtbot.waitUntil(lambda: len(shown) >= 3, timeout=10000)  # lu-2, lu-1, lu-2 ...
    assert set(shown) == {"lu-1", "lu-2"}
    assert rings_in(caplog) == 1, "items of one emergency taking turns must not ring again"

    board.publish([normal_playlist(config)])  # withdrawn: normal rotation
    qtbot.waitUntil(lambda: window.mode == "normal", timeout=5000)
    board.publish([normal_playlist(config), emergency_playlist(config, "khan-cap-2")])
    qtbot.waitUntil(lambda: window.mode == "emergency", timeout=5000)
    qtbot.waitUntil(lambda: rings_in(caplog) == 2, timeout=5000)
    qtbot.waitUntil(lambda: alarm_state(window) == "done", timeout=20000)
    window.close()
    board.close()
    seconds, samples, _ = read_wav(out)
    assert seconds == pytest.approx(2.0, abs=0.2) and rms(samples) > 0.4 * FULL_SCALE


def test_alarm_stops_when_the_emergency_leaves(tmp_path: Path, qtbot: Any,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="player.alarm")
    out = tmp_path / "sound-card.wav"
    config = afile_config(tmp_path, out, alarm_repeats=20)  # 40 s of siren
    board = Board(config)
    board.publish([emergency_playlist(config)])
    window = open_window(config, qtbot, board)
    qtbot.waitUntil(out.exists, timeout=10000)  # the output is open: it sounds
    board.publish([normal_playlist(config)])
    qtbot.waitUntil(lambda: window.mode == "normal", timeout=5000)
    qtbot.waitUntil(lambda: any("alarm stopped" in r.getMessage() for r in caplog.records),
                    timeout=5000)
    window.close()  # waits for libVLC to close the output
    board.close()
    seconds, samples, _ = read_wav(out)
    assert 0 < seconds < 20, f"{seconds:.1f} s of the 40 s alarm played after withdrawal"
    assert rms(samples) > 0.3 * FULL_SCALE


# -- what goes wrong -------------------------------------------------------------------------

def test_missing_alarm_file_warns_and_the_bundled_siren_plays(
        tmp_path: Path, qtbot: Any, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "sound-card.wav"
    missing = tmp_path / "coi-bao-dong.mp3"
    config = afile_config(tmp_path, out, alarm_file=str(missing), alarm_repeats=1)
    board = Board(config)
    board.publish([emergency_playlist(config)])
    window = open_window(config, qtbot, board)
    qtbot.waitUntil(lambda: alarm_state(window) == "done", timeout=20000)
    assert window.mode == "emergency"
    window.close()
    board.close()
    (warning,) = warnings_of(caplog)
    assert f"emergency.alarm_file {missing} does not exist" in warning
    assert "bundled siren plays instead" in warning
    seconds, samples, _ = read_wav(out)
    assert seconds == pytest.approx(2.0, abs=0.2) and rms(samples) > 0.4 * FULL_SCALE


def test_alarm_file_that_does_not_play_warns_and_the_bundled_siren_plays(
        tmp_path: Path, qtbot: Any, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "sound-card.wav"
    broken = tmp_path / "coi.wav"
    broken.write_text("not a sound at all, a technician's text file\n" * 40)
    config = afile_config(tmp_path, out, alarm_file=str(broken), alarm_repeats=1)
    board = Board(config)
    board.publish([emergency_playlist(config)])
    window = open_window(config, qtbot, board)
    qtbot.waitUntil(lambda: alarm_state(window) == "done", timeout=20000)
    assert window.mode == "emergency"
    window.close()
    board.close()
    (warning,) = warnings_of(caplog)
    assert f"emergency.alarm_file {broken} does not play" in warning
    _, samples, _ = read_wav(out)
    assert rms(samples) > 0.4 * FULL_SCALE


def test_a_box_without_that_sound_device_warns_once_and_shows_the_emergency(
        tmp_path: Path, qtbot: Any, caplog: pytest.LogCaptureFixture) -> None:
    # An ALSA card number no box has: what a wrong audio_device (or no sound card) does.
    config = alarm_config(tmp_path, alarm=True, audio_output="alsa", audio_device="hw:97,0")
    board = Board(config)
    board.publish([emergency_playlist(config)])
    window = open_window(config, qtbot, board)
    qtbot.waitUntil(lambda: (alarm_state(window) or "").startswith("error: "), timeout=20000)
    qtbot.wait(500)
    assert window.mode == "emergency"
    state = alarm_state(window)
    window.close()
    board.close()
    (warning,) = warnings_of(caplog)
    assert "no sound: libVLC's audio output 'alsa' on hw:97,0 failed" in warning
    assert "hw:97,0" in warning and "aplay -l" in warning
    assert state == f"error: {warning.removeprefix('emergency alarm: ')}"


def test_a_sound_output_that_cannot_be_written_is_reported(tmp_path: Path, qtbot: Any,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    out = tmp_path / "no-such-folder" / "sound-card.wav"
    config = afile_config(tmp_path, out)
    board = Board(config)
    board.publish([emergency_playlist(config)])
    window = open_window(config, qtbot, board)
    qtbot.waitUntil(lambda: (alarm_state(window) or "").startswith("error: "), timeout=20000)
    assert window.mode == "emergency"
    window.close()
    board.close()
    (warning,) = warnings_of(caplog)
    assert f"'afile' on {out} failed" in warning
    assert "folder of emergency.audio_device exists and is writable" in warning


# -- the bundled sound and the config -------------------------------------------------------

def test_bundled_siren_is_what_write_siren_makes(tmp_path: Path) -> None:
    seconds, bundled, rate = read_wav(alarm.SOUND)
    with wave.open(str(alarm.SOUND), "rb") as w:
        assert (w.getnchannels(), w.getframerate()) == (1, alarm.RATE)
    assert seconds == pytest.approx(alarm.SECONDS)
    made = alarm.siren_samples()
    assert len(made) == len(bundled)
    assert max(abs(a - b) for a, b in zip(made, bundled, strict=True)) <= 1
    again, _, _ = read_wav(alarm.write_siren(tmp_path / "alarm.wav"))
    assert again == pytest.approx(seconds)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("toml", "key", "says"), [
    ("alarm_repeats = 0", "emergency.alarm_repeats", "greater than or equal to 1"),
    ("alarm_repeats = 50", "emergency.alarm_repeats", "less than or equal to 20"),
    ("alarm_volume = 101", "emergency.alarm_volume", "less than or equal to 100"),
    ("alarm = \"loud\"", "emergency.alarm", "a valid boolean"),
    ("audio_output = \"hdmi\"", "emergency.audio_output", "'alsa'"),
    ("audio_output = \"afile\"", "emergency.audio_output", "emergency.audio_device to be set"),
    ("alarm_repeat = 2", "emergency.alarm_repeat", "did you mean 'emergency.alarm_repeats'?"),
])
def test_config_check_rejects_bad_alarm_settings(tmp_path: Path, toml: str, key: str,
                                                 says: str) -> None:
    f = write(tmp_path / "conf.d" / "50-alarm.toml", f"[emergency]\n{toml}\n")
    (problem,) = load(f).problems
    assert str(problem).startswith(f"{f}: {key}: "), str(problem)
    assert says in problem.message


def test_config_check_cli_names_file_and_key(tmp_path: Path) -> None:
    bad = write(tmp_path / "alarm.toml", "[emergency]\nalarm = true\nalarm_volume = -5\n")
    r = subprocess.run([sys.executable, "-m", "eboard", "config", "check", "--config", str(bad)],
                       capture_output=True, text=True, check=False, cwd=ROOT)
    assert r.returncode == 1
    assert f"{bad}: emergency.alarm_volume: expected a value greater than or equal to 0" \
        in r.stderr


def test_alarm_file_is_relative_to_its_config_file(tmp_path: Path) -> None:
    f = write(tmp_path / "etc" / "eboard.toml",
              '[emergency]\nalarm = true\nalarm_file = "sounds/coi.wav"\n')
    result = load(f)
    assert result.problems == [] and result.config is not None
    assert result.config.emergency.alarm_file == str(tmp_path / "etc" / "sounds" / "coi.wav")


# -- eboard doctor ------------------------------------------------------------------------------

CARDS = """ 0 [PCH            ]: HDA-Intel - HDA Intel PCH
                      HDA Intel PCH at 0xf7f10000 irq 30
 1 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0
                      vc4-hdmi-0
"""


def doctor_alarm(tmp_path: Path, cards: str | None, **emergency: Any) -> list[tuple[str, str]]:
    from eboard.checks_screen import check_alarm

    path = tmp_path / "asound-cards"
    if cards is not None:
        path.write_text(cards)
    return [(r.status, r.message) for r in check_alarm(alarm_config(tmp_path, **emergency),
                                                       cards=path)]


def test_doctor_says_what_the_alarm_will_do(tmp_path: Path) -> None:
    assert doctor_alarm(tmp_path, CARDS) == [("OK", "off (emergency.alarm = false)")]
    ((status, message),) = doctor_alarm(tmp_path, CARDS, alarm=True, audio_output="alsa",
                                        audio_device="plughw:CARD=PCH,DEV=3")
    assert status == "OK"
    assert "the bundled siren x 3 at 100 % on alsa plughw:CARD=PCH,DEV=3" in message
    ((status, _),) = doctor_alarm(tmp_path, None, alarm=True, audio_output="afile",
                                  audio_device=str(tmp_path / "out.wav"))
    assert status == "OK", "afile needs no sound card"


def test_doctor_fails_an_alarm_without_a_sound_card(tmp_path: Path) -> None:
    for cards in (None, "--- no soundcards ---\n"):
        ((status, message),) = doctor_alarm(tmp_path, cards, alarm=True)
        assert status == "FAIL"
        assert "emergency.alarm is on but the box has no sound card" in message
    ((status, message),) = doctor_alarm(tmp_path, CARDS, alarm=True, audio_output="alsa",
                                        audio_device="hw:3,0")
    assert status == "FAIL"
    assert "emergency.audio_device hw:3,0 names card 3, but this box has 0 (PCH), " \
        "1 (vc4hdmi0)" in message


def test_doctor_warns_of_a_missing_alarm_file(tmp_path: Path) -> None:
    missing = tmp_path / "coi.mp3"
    (warn, ok) = doctor_alarm(tmp_path, CARDS, alarm=True, alarm_file=str(missing))
    assert warn == ("WARN", f"emergency.alarm_file {missing} does not exist, so the bundled "
                    "siren sounds instead: copy the file there or set alarm_file = \"\"")
    assert ok[0] == "OK" and "the bundled siren" in ok[1]
