"""The player: shows the active content on the board and records proof of play.

Public entry points: ``player.app.run(config, ...)`` runs it as a program and
``player.window.PlayerWindow(config)`` is the board as a widget. Scheduling is the
pure ``player.schedule.decide``. The player reads the shared SQLite database and
never speaks HTTP.
"""
