"""Checking that a verified media file is something the player can show.

Images are opened with Pillow: a pixel count above the board's budget
(content_sync/runtime/pixel_budget.py, 40 megapixels, well below Pillow's
decompression-bomb limit) is refused from the header, before decoding; then the image is
decoded in full (a JPEG at 1/8 scale: every block is still read and entropy-decoded).
Videos are decoded for one frame with ``ffmpeg`` when it is installed (the same
libavcodec decoders libVLC uses); else probed with ``ffprobe`` for a video stream; else,
on a box with neither, checked by the container's magic bytes against the declared
type (a heuristic: it catches wrong or garbage files, not an unsupported codec inside
a valid container).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import warnings
from pathlib import Path
from typing import assert_never

from PIL import Image, UnidentifiedImageError

from content_sync.protocol import MEDIA_KINDS, ItemKind
from content_sync.runtime import over_budget

PROBE_TIMEOUT = 120


class ContentRefused(Exception):
    """The file's bytes are verified but cannot or must not be shown."""


class CheckInterrupted(Exception):
    """The check got no answer about the file: its decoder process was killed from
    outside (the OOM killer, a stop). Not a refusal: the file is checked again later."""


# What a decoder that crashes on a file dies of; any other signal came from outside.
CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGABRT, signal.SIGILL,
                           signal.SIGFPE})


def check(path: Path, mtype: str) -> None:
    """Raise ContentRefused with a reason unless ``path`` is a showable ``mtype``.

    Every kind of item has its check here: a kind added to the protocol without one
    fails mypy (the match is exhaustive), and a media type no kind shows is refused."""
    kind = MEDIA_KINDS.get(mtype)
    if kind is None:
        raise ContentRefused(f"media type {mtype!r} is not one this board shows")
    match kind:
        case ItemKind.IMAGE:
            check_image(path)
        case ItemKind.VIDEO:
            check_video(path, mtype)
        case ItemKind.TEXT:
            raise ContentRefused(f"media type {mtype!r}: text items carry no media file")
        case _:
            assert_never(kind)


def check_image(path: Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                reason = over_budget(*im.size)  # from the header: nothing decoded yet
                if reason:
                    raise ContentRefused(reason)
                if im.format == "JPEG":
                    # libjpeg still reads and entropy-decodes every block, so a truncated
                    # or corrupt file fails the same; only the inverse DCT and colour
                    # conversion are done at 1/8 scale (a 1080p photo: about half the time).
                    im.draft(None, (1, 1))
                im.load()
    except ContentRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ContentRefused(f"image is a decompression bomb: {e}") from None
    except UnidentifiedImageError:
        raise ContentRefused("not an image Pillow can read (wrong type or corrupt)") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ContentRefused(f"image does not decode: {e}") from None


def video_method() -> str:
    """Which check :func:`check_video` uses on this box: ffmpeg, ffprobe or magic."""
    if shutil.which("ffmpeg"):
        return "ffmpeg"
    if shutil.which("ffprobe"):
        return "ffprobe"
    return "magic"


def check_video(path: Path, mtype: str) -> None:
    method = video_method()
    if method == "ffmpeg":
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-xerror", "-i", str(path),
               "-map", "0:v:0", "-frames:v", "1", "-f", "null", "-"]
        _run(cmd, "ffmpeg could not decode a video frame")
    elif method == "ffprobe":
        cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0",
               "-show_entries", "stream=codec_name,width,height", "-of", "json", str(path)]
        out = _run(cmd, "ffprobe could not read the video")
        try:
            streams = json.loads(out).get("streams", [])
        except ValueError:
            streams = []
        if not streams or not streams[0].get("codec_name"):
            raise ContentRefused("no decodable video stream (ffprobe)")
    else:
        _check_magic(path, mtype)


def _run(cmd: list[str], what: str) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=PROBE_TIMEOUT, text=True)
    except subprocess.TimeoutExpired:
        raise ContentRefused(f"{what}: took over {PROBE_TIMEOUT} s") from None
    if p.returncode < 0:  # killed by a signal: a crash on this file, or a kill from outside
        sig: signal.Signals | None
        try:
            sig = signal.Signals(-p.returncode)
            name = sig.name
        except ValueError:
            sig, name = None, f"signal {-p.returncode}"
        if sig not in CRASH_SIGNALS:
            raise CheckInterrupted(f"{what}: {cmd[0]} was killed by {name} from outside "
                                   "(the OOM killer or a stop?), not by the file; checked "
                                   "again later")
        raise ContentRefused(f"{what}: the decoder crashed on it ({name})")
    if p.returncode != 0:
        detail = (p.stderr.strip().splitlines() or ["no detail"])[-1][:200]
        raise ContentRefused(f"{what}: {detail}")
    return p.stdout


def _check_magic(path: Path, mtype: str) -> None:
    with open(path, "rb") as f:
        head = f.read(16)
    ok = {
        "video/mp4": head[4:8] == b"ftyp",
        "video/quicktime": head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free"),
        "video/webm": head[:4] == b"\x1a\x45\xdf\xa3",
        "video/x-matroska": head[:4] == b"\x1a\x45\xdf\xa3",
        "video/mpeg": head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3") or head[:1] == b"G",
    }.get(mtype, False)
    if not ok:
        raise ContentRefused(f"file does not start like a {mtype} container")
