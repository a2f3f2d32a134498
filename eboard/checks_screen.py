"""The screen side of ``eboard doctor``: X display, libVLC decoding, Vietnamese font,
and the emergency alarm's sound."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

from eboard.checks import FAIL, OK, WARN, Result, _run, readable_by
from kiosk_config import Config

X_AUTHORITY = "/run/eboard-x11/Xauthority"
ASOUND_CARDS = Path("/proc/asound/cards")


# -- display, libVLC, font ----------------------------------------------------------------

def display_env(display: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env["DISPLAY"] = display or os.environ.get("DISPLAY") or ":0"
    if "XAUTHORITY" not in os.environ and os.path.exists(X_AUTHORITY):
        env["XAUTHORITY"] = X_AUTHORITY
    return env


def check_display(config: Config, display: str | None) -> list[Result]:
    env = display_env(display)
    d = env["DISPLAY"]
    if shutil.which("xdpyinfo") is None:
        return [Result(WARN, "display", "xdpyinfo not found; cannot test the display "
                       "(apt-get install x11-utils)")]
    r = _run(["xdpyinfo", "-display", d], timeout=10, env=env)
    if r is None or r.returncode != 0:
        return [Result(FAIL, "display", f"no X display answers at {d}: check "
                       "'systemctl status eboard-x11', the HDMI cable and /var/log/Xorg.0.log")]
    size = next((ln.split()[1] for ln in r.stdout.splitlines()
                 if ln.strip().startswith("dimensions:")), "?")
    rect = config.display.rect()
    if rect and "x" in size:
        sw, sh = (int(v) for v in size.split("x"))
        w, h, x, y = rect
        if x < 0 or y < 0 or x + w > sw or y + h > sh:
            return [Result(WARN, "display", f"display {d} is {size} but display.geometry "
                           f"{config.display.geometry} lies outside it; fix the geometry or "
                           "the HDMI resolution")]
    return [Result(OK, "display", f"X display {d} answers ({size})")]


_DECODE = textwrap.dedent(
    """
    import sys, time, vlc
    inst = vlc.Instance(["--intf=dummy", "--vout=dummy", "--aout=dummy", "--quiet"])
    if inst is None:
        print("libVLC could not start (no plugins?)"); sys.exit(3)
    media = inst.media_new_path(sys.argv[1])
    player = inst.media_player_new()
    player.set_media(media)
    player.play()
    end = time.monotonic() + 15
    while time.monotonic() < end and player.get_state() not in (vlc.State.Ended, vlc.State.Error):
        time.sleep(0.05)
    stats = vlc.MediaStats()
    media.get_stats(stats)
    print(vlc.libvlc_get_version().decode(), stats.decoded_video)
    sys.exit(0 if stats.decoded_video > 0 else 4)
    """
)


def check_video() -> list[Result]:
    if importlib.util.find_spec("vlc") is None:
        return [Result(FAIL, "video", "python-vlc is missing from eboard's environment; "
                       "re-run the installer")]
    if shutil.which("ffmpeg") is None:
        return [Result(WARN, "video", "ffmpeg not found, so no sample clip to decode; "
                       "libVLC is untested (apt-get install ffmpeg)")]
    with tempfile.TemporaryDirectory(prefix="eboard-doctor-") as tmp:
        clip = Path(tmp) / "sample.mp4"
        made = _run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                     "testsrc=size=320x240:rate=10", "-t", "1", "-c:v", "libx264",
                     "-pix_fmt", "yuv420p", str(clip)], timeout=60)
        if made is None or made.returncode != 0:
            return [Result(WARN, "video", "ffmpeg could not make an H.264 sample clip; "
                           "libVLC is untested")]
        r = _run([sys.executable, "-c", _DECODE, str(clip)], timeout=40,
                 env=dict(os.environ, XDG_RUNTIME_DIR=tmp))
    if r is None:
        return [Result(FAIL, "video", "libVLC hung decoding a 1 s sample clip")]
    if r.returncode != 0:
        why = (r.stdout.strip() or r.stderr.strip() or f"exit {r.returncode}")[-200:]
        return [Result(FAIL, "video", f"libVLC cannot decode an H.264 sample clip ({why}); "
                       "apt-get install libvlc5 vlc-plugin-base vlc-plugin-video-output")]
    version = r.stdout.split()[0] if r.stdout.split() else "?"
    return [Result(OK, "video", f"libVLC {version} decodes an H.264 sample clip")]


def bundled_font() -> Path | None:
    """Where player/fonts.py looks for the bundled Noto Sans (without importing Qt)."""
    spec = importlib.util.find_spec("player")
    origins = list(spec.submodule_search_locations or []) if spec else []
    for base in origins:
        path = Path(base).resolve().parent / "assets" / "fonts" / "NotoSans-Regular.ttf"
        if path.is_file():
            return path
    return None


def check_font() -> list[Result]:
    path = bundled_font()
    if path is not None:
        return [Result(OK, "font", f"bundled Vietnamese font {path}")]
    r = _run(["fc-list", ":charset=1ea1 1ec7 1ef9 1b0 111", "family"]) \
        if shutil.which("fc-list") else None
    families = sorted({ln.split(",")[0].strip() for ln in r.stdout.splitlines() if ln.strip()}) \
        if r is not None and r.returncode == 0 else []
    if any(f == "Noto Sans" for f in families):
        return [Result(OK, "font", "Noto Sans with every Vietnamese letter is installed")]
    if families:
        return [Result(WARN, "font", f"no Noto Sans; Vietnamese text falls back to "
                       f"{families[0]} (apt-get install fonts-noto-core)")]
    return [Result(FAIL, "font", "no font with the Vietnamese letters (ạ ệ ỹ ư đ): "
                   "apt-get install fonts-noto-core")]


# -- the emergency alarm's sound ----------------------------------------------------------

def sound_cards(cards: Path = ASOUND_CARDS) -> list[tuple[str, str]]:
    """(index, id) of each ALSA sound card, e.g. [("0", "PCH"), ("1", "vc4hdmi0")]."""
    try:
        text = cards.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return re.findall(r"^\s*(\d+)\s+\[(\S+)\s*\]", text, re.MULTILINE)


def check_alarm(config: Config, cards: Path = ASOUND_CARDS) -> list[Result]:
    """emergency.alarm: its sound file, and a sound card for it (the player says, in its
    log and status, whether it really sounded)."""
    e = config.emergency
    if not e.alarm:
        return [Result(OK, "alarm", "off (emergency.alarm = false)")]
    out: list[Result] = []
    sound = "the bundled siren"
    if e.alarm_file:
        path = Path(e.alarm_file)
        if not path.is_file():
            out.append(Result(WARN, "alarm", f"emergency.alarm_file {path} does not exist, so "
                              "the bundled siren sounds instead: copy the file there or set "
                              "alarm_file = \"\""))
        elif readable_by(path, "eboard") is False or not os.access(path, os.R_OK):
            out.append(Result(WARN, "alarm", f"emergency.alarm_file {path} cannot be read by "
                              "user eboard, so the bundled siren sounds instead: run "
                              f"'chmod a+r {path}'"))
        else:
            sound = str(path)
    where: str = e.audio_output or "libVLC's default output"
    if e.audio_device:
        where += f" {e.audio_device}"
    if e.audio_output in ("", "alsa", "pulse"):
        found = sound_cards(cards)
        named = re.search(r":(?:CARD=)?([^,=]+)", e.audio_device) if e.audio_output == "alsa" \
            else None
        listed = ", ".join(f"{i} ({name})" for i, name in found)
        if not found:
            return [*out, Result(FAIL, "alarm", f"emergency.alarm is on but the box has no "
                                 f"sound card ({cards} lists none): connect HDMI audio or a "
                                 "USB sound card, or set emergency.alarm = false")]
        if named and named.group(1) not in {x for card in found for x in card}:
            return [*out, Result(FAIL, "alarm", f"emergency.audio_device {e.audio_device} names "
                                 f"card {named.group(1)}, but this box has {listed}: see "
                                 "'aplay -l' and fix emergency.audio_device")]
        where += f" (sound cards: {listed})"
    return [*out, Result(OK, "alarm", f"on: {sound} x {e.alarm_repeats} at "
                         f"{e.alarm_volume} % on {where}")]
