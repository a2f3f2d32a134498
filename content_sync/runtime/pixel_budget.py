"""The most pixels an image on this board may have: what both processes decode.

Pillow's own limit (``Image.MAX_IMAGE_PIXELS``, about 89 megapixels, an error at
twice that) guards against decompression bombs, not against the box: an RGBA image
just under it (9,400 × 9,400) took ~390 MB resident in the sync's check and ~1.1 GB in
the player's decode, on a box with 1–2 GB and the other process beside it. No board
shows more than a 4K screen (8.3 megapixels), so :data:`MAX_PIXELS` (40 megapixels:
an 8K photo, a 6,300 × 6,300 poster) keeps ample room for a picture that is cropped or
zoomed, and bounds the worst decode (4 bytes a pixel: 160 MB). Both the sync's check
(content_sync/board/media_check.py) and the player (player/images.py) read the size in
the file's header and refuse a larger image before decoding a pixel of it.
"""

from __future__ import annotations

MAX_PIXELS = 40_000_000


def over_budget(width: int, height: int) -> str | None:
    """Why an image of ``width`` × ``height`` is refused, or None when it fits."""
    if width * height <= MAX_PIXELS:
        return None
    return (f"image is {width}×{height} pixels ({width * height / 1e6:.1f} megapixels), above "
            f"the board's budget of {MAX_PIXELS / 1e6:g} megapixels (a decompression bomb, or "
            f"far more than a screen shows: decoding it would take about "
            f"{width * height * 4 / 2**20:.0f} MB); publish it scaled down, e.g. to 3840×2160")
