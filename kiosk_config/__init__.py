"""The box's configuration: schema, layered TOML loading, and secrets.

kiosk_config imports neither content_sync nor player.
"""

from kiosk_config.loader import ConfigError, ConfigProblem, LoadResult, load, load_config
from kiosk_config.render import render
from kiosk_config.schema import Config
from kiosk_config.secrets import SecretFileError, read_token
from kiosk_config.urls import url_refusal

__all__ = [
    "Config",
    "ConfigError",
    "ConfigProblem",
    "LoadResult",
    "SecretFileError",
    "load",
    "load_config",
    "read_token",
    "render",
    "url_refusal",
]
