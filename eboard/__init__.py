"""eboard: the command line that ties kiosk_config, content_sync and player together."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eboard")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
