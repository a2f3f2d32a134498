"""glibc malloc settings for the two processes that run for months (player, sync daemon).

With glibc's defaults the player's malloc held about 155 MB for 21–44 MB in use after
eight minutes of the soak, and went on creeping up; with these settings it holds what
it uses (46 MB) and the player's resident memory is about a third lower
(docs/RELIABILITY.md, "Memory held by malloc"). Two defaults are to blame:

- glibc raises its mmap threshold each time a block above it is freed (up to 32 MB).
  After the first large block, frame-sized blocks (a 480×270 video frame is 0.5 MB; a
  decoded photo several MB) come from the heap instead of their own mapping, and what
  they leave when freed is kept, in pieces, instead of going back to the system. A
  fixed threshold (its usual starting value, 128 KiB) keeps large blocks in mappings
  that ``free`` returns at once.
- every thread that allocates may get its own arena, up to eight per core; libVLC starts
  fresh decoder threads for every clip. Two arenas are plenty on a box with two cores.

A technician who sets ``GLIBC_TUNABLES`` or ``MALLOC_ARENA_MAX`` (in the systemd unit,
say) keeps those: ``tune`` then changes nothing. On a C library other than glibc
(musl) there is nothing to tune.
"""

from __future__ import annotations

import ctypes
import logging
import os

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # mallopt parameters, from glibc's <malloc.h>
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2


def tune() -> bool:
    """Set the fixed mmap threshold and the arena limit; True if both were set.

    Call at the very start of the process, before any thread is started."""
    if os.environ.get("MALLOC_ARENA_MAX") or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        log.debug("malloc settings left as the environment sets them")
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6", use_errno=True).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(M_ARENA_MAX, ARENA_MAX) == 1
    if ok:
        log.debug("malloc: fixed mmap threshold %d KiB, at most %d arenas",
                  MMAP_THRESHOLD // 1024, ARENA_MAX)
    else:
        log.warning("glibc refused the malloc settings (mallopt); memory use may creep up "
                    "over weeks: report this box's C library version")
    return ok
