"""The software version, at the bottom of the dependency order so every part can use it."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eboard")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
