"""CAP 1.2 alert source: a Common Alerting Protocol feed as emergency overlays.

Modules, one job each:

- ``model``        typed Alert/Info/Area values and CapError;
- ``parse``        hardened XML (defusedxml, no DTD) → alerts and Atom/RSS feed entries;
- ``area``         does an alert's area cover the board (geocode, polygon, circle, name);
- ``places``       an areaDesc as the administrative hierarchy (xã, huyện, tỉnh …);
- ``alerts``       state across polls and restarts (table ``cap_alerts``);
- ``to_playlist``  an alert as an overlay playlist: priority, schedule, labels;
- ``fetch``        http(s)/file reads with limits;
- ``signature``    CAP 1.2 XML signatures checked against ``cap.trusted_certs`` (signxml);
- ``job``          :func:`poll_once`, called by the sync daemon every ``cap.poll_interval``.
"""

from content_sync.cap.job import PollResult, poll_once
from content_sync.cap.model import Alert, CapError
from content_sync.cap.parse import parse_alert, parse_document

__all__ = ["Alert", "CapError", "PollResult", "parse_alert", "parse_document", "poll_once"]
