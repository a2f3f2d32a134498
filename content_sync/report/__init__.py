"""What the board tells the province: the heartbeat (and the commands in its answer),
proof of play through the outbox, screenshots, remote commands, and the box's own figures."""

from content_sync.report import outbox, screenshot_upload, status_report
from content_sync.report.outbox import local_day
from content_sync.report.remote_commands import Executor
from content_sync.report.status_report import build_heartbeat, build_status

__all__ = [
    "Executor", "build_heartbeat", "build_status", "local_day", "outbox", "screenshot_upload",
    "status_report",
]
