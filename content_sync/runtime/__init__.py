"""What both daemons of the box use without HTTP: sd_notify, the wall-clock watch, the
decoder guard, the image pixel budget, and the one duration formatter."""

from content_sync.runtime import sdnotify
from content_sync.runtime.decoder_guard import CHECK_NOTE, CLIP_NOTE, DecoderGuard
from content_sync.runtime.durations import age_s, human
from content_sync.runtime.pixel_budget import MAX_PIXELS, over_budget
from content_sync.runtime.wall_clock import JUMP_S, ClockWatch

__all__ = [
    "CHECK_NOTE", "CLIP_NOTE", "JUMP_S", "MAX_PIXELS", "ClockWatch", "DecoderGuard", "age_s",
    "human", "over_budget", "sdnotify",
]
