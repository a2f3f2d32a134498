"""The one HTTP entry point of content_sync: a configured requests Session, and the
short reason of a failed request that a technician can read."""

from content_sync.net.deadline import job_bound
from content_sync.net.http import (
    DeadlineExceeded,
    EboardSession,
    SourceConfigError,
    make_adapter,
    make_session,
    quiet_library_logs,
    retry_policy,
    short_reason,
    user_agent,
)

__all__ = [
    "DeadlineExceeded", "EboardSession", "SourceConfigError", "job_bound",
    "make_adapter", "make_session", "quiet_library_logs", "retry_policy", "short_reason",
    "user_agent",
]
