"""Images scaled once with Pillow to the zone's size, and kept in a small LRU cache.

EXIF orientation is honoured; ``fit`` letterboxes on black, ``fill`` crops the
centre, ``stretch`` ignores the aspect ratio. ``smooth=False`` uses
nearest-neighbour, which keeps pixel art and small LED boards crisp.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image, ImageOps
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

Key = tuple[str, int, int, str, bool]


class ImageError(Exception):
    """An image could not be read or decoded."""


def scale(src: Image.Image, width: int, height: int, fit: str, smooth: bool) -> Image.Image:
    """Return an RGB image of exactly width x height."""
    resample = Image.Resampling.LANCZOS if smooth else Image.Resampling.NEAREST
    img = ImageOps.exif_transpose(src)
    if img.mode not in ("RGB", "RGBA"):
        img = img.convert("RGBA" if "transparency" in img.info or img.mode == "LA" else "RGB")
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
