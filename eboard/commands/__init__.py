"""Subcommands of ``eboard``; see eboard.cli for how they are registered."""
