"""Images scaled once with Pillow to the zone's size, and kept in a small LRU cache.

EXIF orientation is honoured; ``fit`` letterboxes on black, ``fill`` crops the
centre, ``stretch`` ignores the aspect ratio. ``smooth=False`` uses
nearest-neighbour, which keeps pixel art and small LED boards crisp.

Memory: an image above the pixel budget (content_sync/runtime/pixel_budget.py) is
refused from its header, before a pixel is decoded. A JPEG is decoded at the smallest
DCT scale (1/2, 1/4, 1/8) that still covers the zone (``draft``); any other format is
decoded whole, then reduced by a whole factor at once (``reduce``) and only that small
copy is turned, converted and resampled. Measured (tests/test_image_budget.py: VmHWM of a
process decoding for a 1920×1080 zone, 2026-12): a 6,324 × 6,324 image (40 MP, the
largest accepted) as RGBA PNG 231 MB, as JPEG 80 MB, for a base of 41 MB; before, 529 MB
and 377 MB, and 1,095 MB and 759 MB for a 9,400 × 9,400 one (now refused).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import ExifTags, Image, ImageOps
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from content_sync.runtime import over_budget

Key = tuple[str, int, int, str, bool]


class ImageError(Exception):
    """An image could not be read or decoded."""


# EXIF orientation -> the transpose that shows the picture upright (as ImageOps does)
_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
            4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
            6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
            8: Image.Transpose.ROTATE_90}


def _orientation(src: Image.Image) -> int:
    try:
        o = src.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, SyntaxError):
        return 1
    return o if isinstance(o, int) else 1


def needed(size: tuple[int, int], width: int, height: int, fit: str,
           orientation: int = 1) -> tuple[int, int]:
    """Pure: the least size, in the file's own orientation, that a decode of an image of
    ``size`` may be reduced to and still give the zone every pixel it shows."""
    w, h = size
    if orientation in (5, 6, 7, 8):  # turned a quarter: the zone's sides swap
        width, height = height, width
    if fit == "stretch":
        return min(w, width), min(h, height)
    k = (max if fit == "fill" else min)(width / w, height / h)
    return min(w, max(1, math.ceil(w * k))), min(h, max(1, math.ceil(h * k)))


def _mode_for(img: Image.Image) -> str:
    """RGB, or RGBA for a picture with transparency: what :func:`scale` works in."""
    if img.mode in ("RGB", "RGBA"):
        return img.mode
    return "RGBA" if "transparency" in img.info or img.mode in ("LA", "PA") else "RGB"


STRIP_PIXELS = 4_000_000  # a strip of the source converted at a time: ~16 MB


def _reduced(img: Image.Image, least: tuple[int, int],
             strip_pixels: int = STRIP_PIXELS) -> Image.Image:
    """``img`` shrunk by the largest whole factor that keeps it at least ``least``, in
    :func:`_mode_for`. Where that needs a whole-size copy (Pillow's ``reduce`` of RGBA
    premultiplies a copy of all of it; a palette image must be converted), it is done a
    strip of rows at a time, so the decode stays the one whole-size image in memory."""
    factor = min(img.width // least[0], img.height // least[1])
    if factor < 2:
        return img
    mode = _mode_for(img)
    if mode == img.mode == "RGB":
        return img.reduce(factor)
    out = Image.new(mode, (-(-img.width // factor), -(-img.height // factor)))
    rows = factor * max(1, strip_pixels // (img.width * factor))
    for top in range(0, img.height, rows):
        strip = img.crop((0, top, img.width, min(img.height, top + rows)))
        if strip.mode != mode:
            strip = strip.convert(mode)
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def scale(src: Image.Image, width: int, height: int, fit: str, smooth: bool) -> Image.Image:
    """Return an RGB image of exactly width x height."""
    resample = Image.Resampling.LANCZOS if smooth else Image.Resampling.NEAREST
    orientation = _orientation(src)
    img = src
    if smooth:  # nearest-neighbour keeps each pixel: no averaging first
        img = _reduced(src, needed(src.size, width, height, fit, orientation))
    if orientation in _UPRIGHT:
        img = img.transpose(_UPRIGHT[orientation])
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert(_mode_for(img))
    if fit == "stretch":
        out = img.resize((width, height), resample)
    elif fit == "fill":
        out = ImageOps.fit(img, (width, height), method=resample)
    else:
        inner = ImageOps.contain(img, (width, height), method=resample)
        out = Image.new("RGB", (width, height), (0, 0, 0))
        out.paste(inner, ((width - inner.width) // 2, (height - inner.height) // 2),
                  inner if inner.mode == "RGBA" else None)
    if out.mode == "RGBA":
        flat = Image.new("RGB", out.size, (0, 0, 0))
        flat.paste(out, mask=out)
        out = flat
    return out


def load_scaled(path: Path, width: int, height: int, fit: str, smooth: bool) -> QImage:
    try:
        with Image.open(path) as src:
            reason = over_budget(*src.size)  # from the header: nothing decoded yet
            if reason:
                raise ImageError(f"image {path.name[:12]}… not shown: {reason}")
            if src.format == "JPEG" and smooth:
                src.draft("RGB" if src.mode == "RGB" else None,
                          needed(src.size, width, height, fit, _orientation(src)))
            src.load()
            out = scale(src, width, height, fit, smooth)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"cannot decode image {path.name[:12]}…: {e}") from None
    data = out.tobytes("raw", "RGB")
    qimg = QImage(data, out.width, out.height, out.width * 3, QImage.Format.Format_RGB888)
    return qimg.convertToFormat(QImage.Format.Format_RGB32)  # owns its pixels


class ImageCache:
    """Scaled images by (media, size, fit, smooth), least recently used out first."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[Key, QImage] = OrderedDict()
        self._bytes = 0

    def get(self, path: Path, sha: str, width: int, height: int, fit: str,
            smooth: bool) -> QImage:
        key: Key = (sha, width, height, fit, smooth)
        img = self._items.get(key)
        if img is not None:
            self._items.move_to_end(key)
            return img
        img = load_scaled(path, width, height, fit, smooth)
        self.put(key, img)
        return img

    def put(self, key: Key, img: QImage) -> None:
        if key in self._items:
            return
        self._items[key] = img
        self._bytes += img.sizeInBytes()
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.sizeInBytes()

    def keep_only(self, shas: set[str] | frozenset[str]) -> None:
        """Drop the images of media no playlist uses any more (a new manifest came): the
        bound alone would keep up to ``max_bytes`` of retired pictures resident."""
        for key in [k for k in self._items if k[0] not in shas]:
            self._bytes -= self._items.pop(key).sizeInBytes()

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


class Prefetcher(QObject):
    """Decodes and scales the next image on a worker thread, so a large JPEG never
    stalls the ticker; the finished QImage enters the cache in the GUI thread."""

    done = Signal(object, object)  # key, QImage (or None when it failed)

    def __init__(self, cache: ImageCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-prefetch")
        self._pending: set[Key] = set()
        self.done.connect(self._store)

    def prefetch(self, path: Path, sha: str, width: int, height: int, fit: str,
                 smooth: bool) -> None:
        key: Key = (sha, width, height, fit, smooth)
        if key in self.cache or key in self._pending:
            return
        self._pending.add(key)

        def work() -> None:  # worker thread: no widgets, only a QImage
            try:
                img: QImage | None = load_scaled(path, width, height, fit, smooth)
            except ImageError:
                img = None  # the switch will meet the error itself and record it
            self.done.emit(key, img)

        self._pool.submit(work)

    def _store(self, key: Key, img: QImage | None) -> None:
        self._pending.discard(key)
        if img is not None:
            self.cache.put(key, img)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
