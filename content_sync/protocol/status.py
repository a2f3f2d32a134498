"""The heartbeat document (``POST boards/{id}/status``, format ``eboard.status/1``), typed.

One definition for the board that builds it (content_sync/report/status_report.py), the
technician's ``eboard status`` and the server that shows it (content_sync/server/
status_page.py). Read tolerantly (:class:`~content_sync.protocol.tolerant.Tolerant`):
boards of the previous release and the next one keep being understood. The JSON keys are
those the previous release sent; tests/test_status_rows.py pins them.
"""

from __future__ import annotations

from enum import StrEnum

from content_sync.protocol.tolerant import Tolerant

FORMAT = "eboard.status/1"
Number = int | float


class ScreenState(StrEnum):
    ON = "on"
    BLANKED_BY_SCHEDULE = "blanked_by_schedule"
    OFF_BY_COMMAND = "off_by_command"


class Emergency(Tolerant):
    """The emergency on screen, as the player writes it and the heartbeat carries it."""

    playlist_id: str | None = None
    since: str | None = None
    headline: str | None = None
    risk_level: int | None = None
    page: str | None = None
    alarm: str | None = None


class HeldClip(Tolerant):
    """A clip the player died with, held back (content_sync/runtime/decoder_guard.py)."""

    media: str | None = None
    deaths: int | None = None
    until: str | None = None


class Refusal(Tolerant):
    at: str | None = None
    subject: str | None = None
    reason: str | None = None


class ClockReport(Tolerant):
    synchronised: bool | None = None
    skew_to_source_s: Number | None = None
    warning: str | None = None


class ManifestReport(Tolerant):
    active_version: int | None = None
    pending_version: int | None = None
    offered_version: int | None = None


class SyncReport(Tolerant):
    state: str | None = None  # content_sync.board.SyncState; text, so a new one still reads
    reason: str | None = None
    source: str | None = None
    last_attempt: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    errors: list[str] | None = None
    interim_version: int | None = None
    updated_at: str | None = None
    recent_refusals: list[Refusal] = []


class PlayerReport(Tolerant):
    """The player's status row in the heartbeat's terms (None: not known)."""

    running: bool | None = None
    updated_at: str | None = None
    state: str | None = None
    item_id: str | None = None
    playlist_id: str | None = None
    item_type: str | None = None
    item_since: str | None = None
    priority: str | None = None
    blanked: bool | None = None
    geometry: str | None = None
    clock_ok: bool | None = None
    clock_reason: str | None = None
    emergency: Emergency | None = None
    error: str | None = None
    clips_held: list[HeldClip] | None = None


class ScreenReport(Tolerant):
    state: str | None = None  # a ScreenState (text, so a new one still reads); None: unknown
    forced_off: bool = False


class DisplayReport(Tolerant):
    geometry: str | None = None
    rotation: int | None = None
    actual: str | None = None


class CacheReport(Tolerant):
    used_mb: Number | None = None
    quota_mb: Number | None = None
    percent: Number | None = None


class DiskReport(Tolerant):
    free_mb: int | None = None
    total_mb: int | None = None


class MemoryReport(Tolerant):
    total_mb: int | None = None
    free_mb: int | None = None
    available_mb: int | None = None


class NetworkReport(Tolerant):
    interface: str | None = None
    kind: str | None = None
    operstate: str | None = None
    hostname: str | None = None


class ModemReport(Tolerant):
    present: bool = False
    state: str | None = None
    access_technology: str | None = None
    operator: str | None = None
    signal_percent: Number | None = None
    signal_recent: bool | None = None


class OutboxReport(Tolerant):
    records: int | None = None  # None: not said (a board that sent no outbox)
    folded_counts: int | None = None
    oldest: str | None = None
    rejected: int | None = None
    last_error: str | None = None


class ScreenshotReport(Tolerant):
    uploaded_at: str | None = None
    interval_s: Number | None = None


class CommandResult(Tolerant):
    id: str | None = None
    command: str | None = None
    state: str | None = None
    ok: bool | None = None
    detail: str | None = None
    received_at: str | None = None
    finished_at: str | None = None


class Heartbeat(Tolerant):
    """Every field of one heartbeat (DESIGN.md §2, dynamic part)."""

    format: str = FORMAT
    board: str = ""
    name: str = ""
    software_version: str | None = None
    sent_at: str | None = None
    local_time: str | None = None
    utc_offset_s: int | None = None
    monotonic_s: Number | None = None
    timezone: str | None = None
    uptime_s: Number | None = None
    boot_time: str | None = None
    heartbeat_interval_s: Number | None = None
    clock: ClockReport = ClockReport()
    manifest: ManifestReport = ManifestReport()
    sync: SyncReport = SyncReport()
    player: PlayerReport = PlayerReport()
    screen: ScreenReport = ScreenReport()
    display: DisplayReport = DisplayReport()
    cache: CacheReport = CacheReport()
    disk: DiskReport = DiskReport()
    memory: MemoryReport = MemoryReport()
    cpu_temperature_c: Number | None = None
    load: list[Number] | None = None
    network: NetworkReport = NetworkReport()
    modem: ModemReport | None = None
    outbox: OutboxReport = OutboxReport()
    screenshot: ScreenshotReport = ScreenshotReport()
    log_level: str | None = None
    command_results: list[CommandResult] = []
