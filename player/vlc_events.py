"""libVLC event managers without python-vlc's two leaks.

``MediaPlayer.event_manager()`` is memoized by python-vlc in a class-level dict keyed by
the player: every player wrapper and its event manager (with the ctypes thunk libVLC
calls back) then live as long as the process, about 1.5 KB per clip played — a board
that plays a clip every minute gains 2 MB a day. And an event manager that has had a
callback attached is in a reference cycle with that thunk, so it waits for Python's
cycle collector. These two helpers avoid both; they take python-vlc objects and are
only called once ``import vlc`` has worked.
"""

from __future__ import annotations

from typing import Any


def event_manager(mp: Any) -> Any:
    """The player's event manager, not kept by python-vlc beyond its last reference."""
    import vlc

    return vlc.libvlc_media_player_event_manager(mp)


def forget_callbacks(em: Any) -> None:
    """Drop the manager's callback thunk and table (breaks the cycle between them).

    Only after the player has been released: libVLC may call the thunk until then."""
    em.__dict__.pop("_callback_handler", None)
    em.__dict__.pop("_callbacks", None)
