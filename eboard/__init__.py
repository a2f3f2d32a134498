"""eboard: the command line that ties kiosk_config, content_sync and player together."""

from kiosk_config.version import __version__

__all__ = ["__version__"]
