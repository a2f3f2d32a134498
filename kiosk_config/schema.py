"""The box's configuration, declared as a schema.

Every key here is documented in ``eboard.example.toml`` (a test checks that the two
agree). Models forbid unknown keys so that a typo is an error, not a silent default, and
are strict: a value must have its key's TOML type (``alarm = "yes"`` is not a boolean,
``poll_interval = "60"`` not a number). A rule over several keys of a table (a
:meth:`Section.cross_key_problems`) is reported beside the other problems of that table,
not only once they are fixed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from kiosk_config.urls import url_refusal

GEOMETRY_RE = re.compile(r"^(\d{2,5})x(\d{2,5})\+(-?\d{1,5})\+(-?\d{1,5})$")
BOARD_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
HOURS_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$")


class Refusal(ValueError):
    """A value refused by a rule: the message is a whole sentence, not an 'expected …'."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @classmethod
    def cross_key_problems(cls, data: dict[str, Any]) -> list[tuple[str, str]]:
        """(key, why) for each rule over several keys of this table that ``data`` (the raw
        table, not yet validated: check the types you rely on) breaks; key "" names the
        table itself."""
        return []

    @model_validator(mode="wrap")
    @classmethod
    def _with_cross_key_rules(cls, data: Any, handler: ModelWrapValidatorHandler[Self]
                              ) -> Self:
        """The table's own errors and its cross-key rules' together, in one error."""
        errors: list[Any] = []
        model = None
        try:
            model = handler(data)
        except ValidationError as e:
            errors = [{k: v for k, v in err.items() if k in ("type", "loc", "input", "ctx")}
                      for err in e.errors(include_url=False)]
        if isinstance(data, dict):
            wrong = {err["loc"][0] for err in errors if err["loc"]}
            errors.extend({"type": "value_error", "loc": (key,) if key else (),
                           "input": data.get(key) if key else data,
                           "ctx": {"error": Refusal(why)}}
                          for key, why in cls.cross_key_problems(data)
                          if not key or key not in wrong)
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        assert model is not None
        return model


class BoardConfig(Section):
    id: str = Field(
        default="demo.board-01",
        description="the board's id at the source: lowercase letters, digits, '.', '_', '-'",
    )
    name: str = Field(default="Bảng tin điện tử", description="name shown on the screen")

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        if not BOARD_ID_RE.match(v):
            raise ValueError(
                "a board id of lowercase letters, digits, '.', '_' or '-' "
                "(at most 128), e.g. 'laichau.muongte.pavesu-01'"
            )
        return v


class SourceConfig(Section):
    url: str = Field(default="http://127.0.0.1:8765/", description="base URL of the source")
    token_file: str = Field(default="", description="file holding the bearer token (mode 0600)")
    trusted_keys: list[str] = Field(
        default_factory=list, description="Ed25519 public keys: PEM file paths"
    )
    poll_interval: int = Field(default=60, ge=5, le=86400)
    poll_jitter: float = Field(default=0.2, ge=0.0, le=1.0)
    long_poll: bool = True
    allow_insecure_http: bool = False
    ca_bundle: str = ""
    proxy: str = ""
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    read_timeout: float = Field(default=30.0, gt=0, le=600)
    max_parallel_downloads: int = Field(default=2, ge=1, le=16)
    bandwidth_limit_kbps: int = Field(default=0, ge=0)
    max_media_mb: int = Field(default=500, ge=1)

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        if not re.match(r"^(https?|file)://", v):
            raise ValueError(
                "a URL starting with http://, https:// or file://, "
                "e.g. 'https://httt.example.gov.vn/eboard/v1/' or 'file:///media/usb/eboard/'"
            )
        return v if v.endswith("/") else v + "/"

    @classmethod
    def cross_key_problems(cls, data: dict[str, Any]) -> list[tuple[str, str]]:
        url, allow = data.get("url"), data.get("allow_insecure_http", False)
        if isinstance(url, str) and isinstance(allow, bool):
            why = url_refusal(url, allow, "source.allow_insecure_http")
            if why:
                return [("url", why)]
        return []


class CacheConfig(Section):
    dir: str = Field(default="/var/lib/eboard", description="state directory: database and media")
    quota_mb: int = Field(default=4096, ge=16)


class DisplayConfig(Section):
    geometry: str = Field(default="fullscreen", description="'fullscreen' or 'WxH+X+Y'")
    rotation: Literal[0, 90, 180, 270] = 0
    header: bool = True
    ticker: bool = True
    image_fit: Literal["fit", "fill", "stretch"] = "fit"
    smooth_scaling: bool = True
    on_hours: str = Field(
        default="", description="'HH:MM-HH:MM' when the screen is on; '' = always"
    )
    volume: int = Field(default=80, ge=0, le=100)
    ticker_speed: int = Field(default=120, ge=10, le=2000, description="pixels per second")

    @field_validator("geometry")
    @classmethod
    def _check_geometry(cls, v: str) -> str:
        if v != "fullscreen" and not GEOMETRY_RE.match(v):
            raise ValueError("'fullscreen' or a rectangle WxH+X+Y, e.g. '768x384+0+0'")
        return v

    @field_validator("on_hours")
    @classmethod
    def _check_hours(cls, v: str) -> str:
        if v and not HOURS_RE.match(v):
            raise ValueError("'' (always on) or 'HH:MM-HH:MM', e.g. '05:30-22:00'")
        return v

    def rect(self) -> tuple[int, int, int, int] | None:
        """(width, height, x, y), or None for fullscreen."""
        m = GEOMETRY_RE.match(self.geometry)
        if not m:
            return None
        w, h, x, y = (int(g) for g in m.groups())
        return w, h, x, y


class StatusConfig(Section):
    heartbeat_interval: int = Field(default=60, ge=5, le=3600)
    screenshot_interval: int = Field(default=0, ge=0, description="seconds; 0 = only on command")
    screenshot_width: int = Field(default=480, ge=64, le=1920)
    outbox_max_records: int = Field(default=100_000, ge=100)
    allow_reboot: bool = False
    allow_clear_cache: bool = True


class CapConfig(Section):
    """A CAP 1.2 alert feed (OASIS Common Alerting Protocol) as an extra emergency source."""

    feed_url: str = Field(
        default="", description="CAP alert or Atom/RSS feed: http(s):// or file://; '' = off"
    )
    poll_interval: int = Field(default=60, ge=10, le=86400)
    allow_insecure_http: bool = False
    geocodes: list[str] = Field(
        default_factory=list, description="'valueName=value' or plain 'value' of the board's area"
    )
    area_names: list[str] = Field(
        default_factory=list,
        description="the board's places with their level words, e.g. ['Xã Pa Vệ Sủ', "
        "'Tỉnh Lai Châu']; an areaDesc's most specific unit must be one of them",
    )
    latitude: float = Field(default=0.0, ge=-90.0, le=90.0)
    longitude: float = Field(default=0.0, ge=-180.0, le=180.0)
    show_test: bool = False
    languages: list[str] = Field(default_factory=lambda: ["vi", "vi-VN"])
    no_expiry_hours: int = Field(default=24, ge=1, le=720)
    max_document_kb: int = Field(default=4096, ge=16, le=65536)
    max_fetches_per_poll: int = Field(default=50, ge=1, le=1000)
    advisory_share: float = Field(
        default=0.5, ge=0.05, le=1.0,
        description="largest fraction of the items a Moderate (advisory) alert takes",
    )
    trusted_certs: list[str] = Field(
        default_factory=list, description="PEM certificates CAP alert signatures are checked with"
    )
    require_signature: bool = False

    @field_validator("feed_url")
    @classmethod
    def _check_feed_url(cls, v: str) -> str:
        if v and not re.match(r"^(https?|file)://", v):
            raise ValueError(
                "'' (off) or a URL starting with http://, https:// or file://, "
                "e.g. 'https://canhbao.example.gov.vn/cap/feed.xml'"
            )
        return v

    @classmethod
    def cross_key_problems(cls, data: dict[str, Any]) -> list[tuple[str, str]]:
        """The feed under the same plain-http rule as the source (kiosk_config/urls.py: the
        CAP job would refuse it at every poll), a feed needs the board's area, and a required
        signature needs certificates: reported beside the table's other problems."""
        problems: list[tuple[str, str]] = []
        url, allow = data.get("feed_url"), data.get("allow_insecure_http", False)
        if isinstance(url, str) and url and isinstance(allow, bool):
            why = url_refusal(url, allow, "cap.allow_insecure_http")
            if why:
                problems.append(("feed_url", why))
        area = [data.get(k) for k in ("geocodes", "area_names", "latitude", "longitude")]
        if isinstance(url, str) and url and not any(area):  # 0.0, [], absent: none set
            problems.append(("", (
                "cap.feed_url is set but the board's area is not: set cap.geocodes, "
                "cap.area_names, or cap.latitude and cap.longitude, or no alert can match")))
        if data.get("require_signature") is True and not data.get("trusted_certs"):
            problems.append(("require_signature", (
                "cap.require_signature is on but cap.trusted_certs is empty: list the PEM "
                "certificate files of the issuers, e.g. ['/etc/eboard/cap-kttv.pem']")))
        return problems

    @property
    def has_position(self) -> bool:
        """latitude = longitude = 0.0 means the board's position is not set."""
        return not (self.latitude == 0.0 and self.longitude == 0.0)


class EmergencyConfig(Section):
    """What a board does, besides the screen, when an emergency comes on screen."""

    alarm: bool = Field(
        default=False, description="sound an alarm when an emergency comes on screen"
    )
    alarm_file: str = Field(
        default="", description="sound file libVLC can play; '' = the bundled siren"
    )
    alarm_repeats: int = Field(default=3, ge=1, le=20, description="times the sound plays")
    alarm_volume: int = Field(default=100, ge=0, le=100, description="percent of full scale")
    # audio_device comes first so that the check of audio_output can see it.
    audio_device: str = Field(
        default="", description="libVLC audio device, e.g. 'hw:0,3'; the WAV file for 'afile'"
    )
    audio_output: Literal["", "alsa", "pulse", "jack", "oss", "sndio", "afile", "adummy"] = (
        Field(default="", description="libVLC audio output module; '' = libVLC's choice")
    )

    @field_validator("audio_output")
    @classmethod
    def _afile_needs_file(cls, v: str, info: ValidationInfo) -> str:
        if v == "afile" and not info.data.get("audio_device"):
            raise ValueError(
                "emergency.audio_device to be set too: 'afile' writes the sound into the "
                "WAV file named there (for tests), e.g. audio_device = '/tmp/alarm.wav'"
            )
        return v


class MaintenanceConfig(Section):
    restart_at: str = Field(
        default="", description="'HH:MM' box time for a nightly restart; '' = none"
    )

    @field_validator("restart_at")
    @classmethod
    def _check_restart_at(cls, v: str) -> str:
        if v and not re.match(r"^([01]\d|2[0-3]):[0-5]\d$", v):
            raise ValueError("'' (no nightly restart) or 'HH:MM', e.g. '03:30'")
        return v


class Config(Section):
    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="IANA timezone")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    board: BoardConfig = BoardConfig()
    source: SourceConfig = SourceConfig()
    cache: CacheConfig = CacheConfig()
    display: DisplayConfig = DisplayConfig()
    status: StatusConfig = StatusConfig()
    cap: CapConfig = CapConfig()
    emergency: EmergencyConfig = EmergencyConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Asia" is a folder
            raise ValueError("an IANA timezone name, e.g. 'Asia/Ho_Chi_Minh'") from None
        return v

    @property
    def cache_dir(self) -> Path:
        return Path(self.cache.dir)

    @property
    def db_path(self) -> Path:
        return self.cache_dir / "eboard.db"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
