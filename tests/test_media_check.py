"""The image check: a JPEG decoded at 1/8 scale refuses exactly what a full decode
refuses (libjpeg still reads and entropy-decodes every block), compared on truncated,
bit-flipped and garbled copies of many kinds of JPEG; truncated or lying BMPs and JPEGs
are refused.
"""

from __future__ import annotations

import io
import random
import struct
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageFile

from content_sync.board import media_check
from content_sync.board.media_check import ContentRefused


def _picture(w: int, h: int, seed: int = 7) -> Image.Image:
    """Texture plus noise, so that the JPEG entropy data is not trivial."""
    fractal = Image.effect_mandelbrot((w, h), (-2, -1.2, 1, 1.2), 60).convert("RGB")
    noise = Image.frombytes("RGB", (w, h), random.Random(seed).randbytes(w * h * 3))
    return Image.blend(fractal, noise, 0.3)


def _saved(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _bmp(w: int, h: int, bpp: int, *, top_down: bool = False, compression: int = 0,
         masks: tuple[int, int, int] | None = None, offset: int | None = None,
         height_field: int | None = None, header: int = 40, data: bytes | None = None) -> bytes:
    """A BMP written by hand, so its header can say things Pillow would never write."""
    stride = ((w * bpp + 31) >> 3) & ~3
    pixels = random.Random(w * h + bpp).randbytes(stride * h) if data is None else data
    palette = b"".join(bytes((i, i, i, 0)) for i in range(1 << bpp)) if bpp <= 8 else b""
    extra = struct.pack("<3I", *masks) if masks else b""
    hf = height_field if height_field is not None else (-h if top_down else h)
    info = struct.pack("<IiiHHIIiiII", header, w, hf, 1, bpp, compression, len(pixels),
                       2835, 2835, 0, 0) + b"\0" * (header - 40)
    start = 14 + len(info) + len(extra) + len(palette)
    head = b"BM" + struct.pack("<IHHI", start + len(pixels), 0, 0,
                               start if offset is None else offset)
    return head + info + extra + palette + pixels


PICTURE = _picture(320, 180)
JPEGS = {
    "jpeg": _saved(PICTURE, "JPEG"),
    "jpeg-progressive": _saved(PICTURE, "JPEG", progressive=True),
    "jpeg-444-q95": _saved(PICTURE, "JPEG", quality=95, subsampling=0),
    "jpeg-restart-markers": _saved(PICTURE, "JPEG", restart_marker_blocks=4),
    "jpeg-grey": _saved(PICTURE.convert("L"), "JPEG"),
    "jpeg-cmyk": _saved(PICTURE.convert("CMYK"), "JPEG"),
    "jpeg-odd-size": _saved(PICTURE.resize((101, 37)), "JPEG"),
}
# Rows without padding, so that any cut removes pixel bytes the decode needs.
BMPS = {
    "bmp-24": _saved(PICTURE, "BMP"),
    "bmp-32": _saved(PICTURE.convert("RGBA"), "BMP"),
    "bmp-8-grey": _saved(PICTURE.convert("L"), "BMP"),
    "bmp-8-palette": _saved(PICTURE.quantize(16), "BMP"),
    "bmp-1": _saved(PICTURE.convert("1"), "BMP"),
    "bmp-16": _bmp(22, 9, 16),
    "bmp-16-565": _bmp(22, 9, 16, compression=3, masks=(0xF800, 0x07E0, 0x001F)),
    "bmp-32-bitfields": _bmp(20, 10, 32, compression=3, masks=(0xFF0000, 0xFF00, 0xFF)),
    "bmp-top-down": _bmp(32, 17, 24, top_down=True),
    "bmp-v5-header": _bmp(32, 17, 24, header=124),
}


def _full_decode_refuses(p: Path) -> bool:
    """What the check did before the short cuts: Pillow's full decode."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                im.load()
    except Exception:
        return True
    return False


def _check_refuses(p: Path) -> bool:
    try:
        media_check.check_image(p)
    except ContentRefused:
        return True
    return False


def _variants(data: bytes, seed: int) -> list[tuple[str, bytes]]:
    rnd = random.Random(seed)
    n = len(data)
    cuts = {n - 1, n - 2, n - 3, n - 10, n - 100, n // 2, n // 3, 200, 1000}
    cuts |= {rnd.randrange(10, n) for _ in range(25)}
    out = [(f"cut at {c}", data[:c]) for c in sorted(cuts) if 0 < c < n]
    for _ in range(30):
        d = bytearray(data)
        pos = rnd.randrange(n)
        d[pos] ^= 1 << rnd.randrange(8)
        out.append((f"bit flipped at {pos}", bytes(d)))
    for _ in range(10):
        d = bytearray(data)
        pos, length = rnd.randrange(n), rnd.randrange(1, 500)
        d[pos:pos + length] = rnd.randbytes(length)
        out.append((f"{length} bytes garbled at {pos}", bytes(d)))
    return [("as written", data), *out]


@pytest.mark.parametrize("kind", sorted(JPEGS))
def test_a_jpeg_gets_the_same_verdict_as_a_full_decode(tmp_path: Path, kind: str) -> None:
    p = tmp_path / kind
    refused = 0
    for what, data in _variants(JPEGS[kind], seed=len(kind)):
        p.write_bytes(data)
        full = _full_decode_refuses(p)
        assert _check_refuses(p) == full, f"{kind}, {what}: full decode refuses: {full}"
        refused += full
    assert refused >= 10  # the variants do include broken files


@pytest.mark.parametrize("kind", sorted(BMPS))
def test_every_cut_bmp_is_refused(tmp_path: Path, kind: str) -> None:
    data = BMPS[kind]
    p = tmp_path / kind
    p.write_bytes(data)
    media_check.check_image(p)
    rnd = random.Random(len(kind))
    cuts = {*range(max(1, len(data) - 70), len(data)), *(rnd.randrange(1, len(data))
                                                          for _ in range(30))}
    for cut in sorted(cuts):
        p.write_bytes(data[:cut])
        with pytest.raises(ContentRefused):
            media_check.check_image(p)


@pytest.mark.parametrize("data, words", [
    (_bmp(33, 17, 24, offset=10 ** 6), "truncated"),  # pixel data said to start past the end
    (_bmp(33, 17, 24, height_field=5000), "truncated"),  # more rows than the file holds
    (_bmp(33, 17, 24, data=b""), "truncated"),  # header only
    # Pillow reads a 4-bit grey palette as mode L with a 16-byte stride and cannot set
    # its decoder up: refused, whatever the length.
    (_bmp(32, 7, 4), "does not decode"),
    (_saved(PICTURE, "JPEG")[:-300], "does not decode"),  # cut inside the scan data
    (_saved(PICTURE, "JPEG", progressive=True)[:-300], "does not decode"),
])
def test_broken_files_refused(tmp_path: Path, data: bytes, words: str) -> None:
    p = tmp_path / "f"
    p.write_bytes(data)
    with pytest.raises(ContentRefused, match=words):
        media_check.check_image(p)


def test_a_jpeg_is_checked_at_one_eighth_scale(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Else the comparison above would compare the full decode with itself."""
    sizes: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def spy(self: ImageFile.ImageFile) -> object:
        out = load(self)
        sizes.append(self.size)
        return out

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy)
    p = tmp_path / "p.jpg"
    p.write_bytes(JPEGS["jpeg"])
    media_check.check_image(p)
    assert sizes == [(40, 23)]  # 320 × 180 decoded as 40 × 23


def test_a_video_that_crashes_the_decoder_is_refused_and_the_check_lives_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-frame check runs the decoder in its own process: when it dies by a signal
    on a file (played here by an ffmpeg that crashes itself), the file is refused with
    words that say so, and the sync process is untouched."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ffmpeg"
    fake.write_text("#!/bin/sh\nkill -SEGV $$\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    with pytest.raises(ContentRefused, match=r"the decoder crashed on it \(SIGSEGV\)"):
        media_check.check(clip, "video/mp4")


def test_a_decoder_killed_from_outside_is_no_refusal_and_is_checked_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OOM killer (or a stop) SIGKILLs the decoder process during the check: no
    answer about the file, so it is not refused for good; the next run checks it again
    and it arrives. Played by an ffmpeg that kills itself with SIGKILL."""
    from content_sync.board.engine import Engine, SyncState
    from content_sync.db import store
    from tests.kit.sync import Publisher, StaticApp, make_keys, mp4, serve_wsgi, write_config

    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ffmpeg"
    fake.write_text("#!/bin/sh\nkill -KILL $$\n")
    fake.chmod(0o755)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(mp4())
    real_path = "/usr/bin:/bin"
    monkeypatch.setenv("PATH", f"{bindir}:{real_path}")
    with pytest.raises(media_check.CheckInterrupted, match="killed by SIGKILL from outside"):
        media_check.check(clip, "video/mp4")

    key, pubkey = make_keys(tmp_path / "keys")
    (tmp_path / "src").mkdir()
    pub = Publisher(tmp_path / "src", key)
    sha = next(iter(pub.publish(1, {"clip": (mp4(), "video/mp4")})["media"]))
    with serve_wsgi(StaticApp(tmp_path / "src")) as served:
        config = write_config(tmp_path, served.url, [pubkey])
        conn = store.connect(config.db_path)
        r = Engine(config, conn).sync_once()
        assert r.state is SyncState.INCOMPLETE and "from outside" in r.reason, r.reason
        assert store.refused_media(conn) == {} and store.manifest_state(conn, 1) == (
            "pending", "")
        monkeypatch.setenv("PATH", real_path)  # memory is back
        r = Engine(config, conn).sync_once()
        assert r.ok and store.active_version(conn) == 1 and sha in store.known_media(conn), \
            r.reason
        conn.close()
