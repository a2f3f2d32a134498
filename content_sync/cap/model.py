"""Typed values of a CAP alert, as far as a bulletin board needs them.

CAP messages are immutable: an Update or Cancel is a new message that names the
ones it replaces in ``references``. So an :class:`Alert` is stored once, as JSON,
and never changed; its state (active, cancelled, ...) lives beside it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict


class CapError(Exception):
    """A CAP document was refused; the message is one line a technician can act on."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Area(_Model):
    desc: str = ""
    polygons: tuple[str, ...] = ()
    circles: tuple[str, ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()


class Info(_Model):
    language: str = "en-US"
    event: str = ""
    urgency: str = "Unknown"
    severity: str = "Unknown"
    certainty: str = "Unknown"
    headline: str = ""
    description: str = ""
    instruction: str = ""
    sender_name: str = ""
    effective: datetime | None = None
    onset: datetime | None = None
    expires: datetime | None = None
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[Area, ...] = ()


class Alert(_Model):
    identifier: str
    sender: str
    sent: datetime
    status: str
    msg_type: str
    scope: str = "Public"
    references: tuple[str, ...] = ()
    infos: tuple[Info, ...] = ()
    from_index: bool = False
    """True when built from a feed entry's CAP index fields, not a full alert."""

    @property
    def key(self) -> str:
        return alert_key(self.sender, self.identifier, self.sent)

    def reference_keys(self) -> list[str]:
        """Keys of the alerts named in ``references`` ("sender,identifier,sent" triplets)."""
        keys = []
        for ref in self.references:
            parts = ref.split(",")
            if len(parts) < 3:
                continue
            sender, sent = parts[0].strip(), parts[-1].strip()
            identifier = ",".join(parts[1:-1]).strip()
            keys.append(alert_key(sender, identifier, parse_time(sent)))
        return keys

    @property
    def expires(self) -> datetime | None:
        """The latest ``expires`` of its infos, or None when any info has none."""
        times = [i.expires for i in self.infos]
        if not times or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)


def parse_time(text: str) -> datetime | str:
    """A CAP date-time (with offset) as an aware datetime, or the text when it is not one.

    The offset is hh:mm (XML Schema dateTime): Python also reads "+00:08:07", which the
    stored JSON would round to "+00:08", moving the time. The years 1 and 9999 are
    refused: such a time cannot be moved to UTC or given an end without an
    OverflowError (both found by fuzz/fuzz_cap.py).
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return text.strip()
    offset = value.utcoffset()
    if offset is None or offset % timedelta(minutes=1) or not 1 < value.year < 9999:
        return text.strip()
    return value


def alert_key(sender: str, identifier: str, sent: datetime | str) -> str:
    """The identity of a CAP message: sender, identifier and sent (as UTC when a time)."""
    when = sent.astimezone(UTC).isoformat() if isinstance(sent, datetime) else sent
    return f"{sender}\x1f{identifier}\x1f{when}"
