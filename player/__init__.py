"""The player: shows the active content on the board and records proof of play.

Public entry points: ``player.app.run(config, ...)`` runs it as a program and
``player.window.PlayerWindow(config)`` is the board as a widget. Scheduling is the
pure ``player.schedule.decide``. The player reads the shared SQLite database and
never speaks HTTP.
"""

import sys

if sys.implementation.name == "cpython" and sys.version_info < (3, 12):
    # PySide6 6.12 on CPython 3.11 drops a reference to None on every call of a C++
    # method that returns void (QPainter.save, fillRect, drawImage ...): with the
    # ticker at 60 frames a second None's count reaches zero in about half a minute
    # and CPython aborts the player ("none_dealloc"). Make None immortal, as CPython
    # 3.12 does for every build (PEP 683); tests/test_emergency_player.py shows it.
    import ctypes

    ctypes.c_ssize_t.from_address(id(None)).value += 1 << 60
