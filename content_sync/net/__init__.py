"""The one HTTP entry point of content_sync: a configured requests Session, and the
short reason of a failed request that a technician can read."""

from content_sync.net.http import (
    EboardSession,
    SourceConfigError,
    is_loopback,
    make_session,
    quiet_library_logs,
    retry_policy,
    short_reason,
    user_agent,
)

__all__ = [
    "EboardSession", "SourceConfigError", "is_loopback", "make_session", "quiet_library_logs",
    "retry_policy", "short_reason", "user_agent",
]
