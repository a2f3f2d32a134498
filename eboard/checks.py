"""The checks behind ``eboard doctor``: each says OK, WARN or FAIL and what to do.

A check never raises: whatever goes wrong is turned into a FAIL line that names
what failed, where, and what a technician can do about it. Checks that need the
configuration get it; the others look at the box (clock, display, units).
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import sqlite3
import stat
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from content_sync.runtime import age_s, human
from kiosk_config import Config, SecretFileError, read_token

if TYPE_CHECKING:
    from content_sync.db import HeartbeatDelivery

OK, WARN, FAIL = "OK", "WARN", "FAIL"
UNITS = ("eboard-x11.service", "eboard-player.service", "eboard-sync.service")


@dataclass(frozen=True)
class Result:
    status: str
    check: str
    message: str


def _run(cmd: list[str], timeout: float = 10, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _reason(e: Exception) -> str:
    """The useful end of a requests error: 'Connection refused', 'timed out', ..."""
    text = str(e)
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", text)
    if m:
        return m.group(1).strip()
    if "timed out" in text.lower() or "timeout" in e.__class__.__name__.lower():
        return "timed out"
    return text[:160]


# -- files the daemons must read ---------------------------------------------------------

def readable_by(path: Path, user: str) -> bool | None:
    """Whether ``user`` can read ``path`` (and search every folder above it); None when
    there is no such user."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        return None
    if pw.pw_uid == 0:
        return True
    groups = {g.gr_gid for g in grp.getgrall() if user in g.gr_mem} | {pw.pw_gid}

    def allowed(p: Path, bits: tuple[int, int, int]) -> bool:
        st = p.stat()
        if st.st_uid == pw.pw_uid:
            return bool(st.st_mode & bits[0])
        if st.st_gid in groups:
            return bool(st.st_mode & bits[1])
        return bool(st.st_mode & bits[2])

    real = path.resolve()
    try:
        search = all(allowed(d, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH))
                     for d in reversed(real.parents))
        return search and allowed(real, (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH))
    except OSError:
        return False


def check_access(config: Config, files: list[Path], user: str = "eboard") -> list[Result]:
    """The config files and trusted keys must be readable by the daemons' user."""
    wanted = [*files, *(Path(k) for k in config.source.trusted_keys)]
    denied = [f for f in wanted if f.exists() and readable_by(f, user) is False]
    if readable_by(Path("/"), user) is None:
        return []  # not a box set up by the installer: no daemon user to check for
    if denied:
        return [Result(FAIL, "access", f"user {user} (the daemons) cannot read {f}: run "
                       f"'chgrp {user} {f} && chmod g+r {f}' (and check the folders above)")
                for f in denied]
    return [Result(OK, "access", f"user {user} can read the config files and trusted keys")]


# -- token -------------------------------------------------------------------------------

def check_token(config: Config) -> list[Result]:
    path = config.source.token_file
    if not path:
        if config.source.url.startswith("file://"):
            return [Result(OK, "token", "none needed for a folder or USB source")]
        return [Result(WARN, "token", "source.token_file is not set: heartbeats, proof of "
                       "play and screenshots cannot be sent; put the board's token in "
                       "/etc/eboard/token (chmod 600, chown eboard) and set source.token_file")]
    try:
        read_token(path)
    except SecretFileError as e:
        return [Result(FAIL, "token", str(e))]
    st = os.stat(path)
    try:
        daemon_uid = pwd.getpwnam("eboard").pw_uid
    except KeyError:
        daemon_uid = None
    if daemon_uid is not None and st.st_uid != daemon_uid:
        return [Result(FAIL, "token", f"token file {path} is owned by uid {st.st_uid}, so the "
                       f"eboard daemons cannot read it: run 'chown eboard:eboard {path}'")]
    return [Result(OK, "token", f"{path} present, mode {stat.S_IMODE(st.st_mode):04o}")]


# -- source, TLS, signature, clock skew --------------------------------------------------

def _fetch_manifest(config: Config) -> tuple[bytes | None, str | None, Result | None]:
    """(envelope bytes, HTTP Date header, or a FAIL result)."""
    url = config.source.url + f"boards/{config.board.id}/manifest.json"
    if url.startswith("file://"):
        path = Path(unquote(urlsplit(url).path))
        try:
            return path.read_bytes(), None, None
        except OSError as e:
            return None, None, Result(FAIL, "source", f"cannot read {path} ({e.strerror}): is "
                                      "the USB stick mounted, and does the folder hold "
                                      f"boards/{config.board.id}/?")
    import requests

    from content_sync.net import SourceConfigError, make_session

    # The static part needs no token (the token line above checks it on its own).
    no_token = config.source.model_copy(update={"token_file": ""})
    try:
        session = make_session(config.model_copy(update={"source": no_token}), retries=0)
    except SourceConfigError as e:
        return None, None, Result(FAIL, "source", str(e))
    host = urlsplit(url).hostname
    timeout = (min(config.source.connect_timeout, 10.0), min(config.source.read_timeout, 20.0))
    try:
        resp = session.get(url, timeout=timeout)
    except requests.exceptions.SSLError as e:
        return None, None, Result(FAIL, "source", f"TLS certificate of {host} is not valid "
                                  f"({e.__class__.__name__}: {str(e)[:160]}); check the "
                                  "box's date (a wrong clock breaks TLS) and source.ca_bundle")
    except requests.RequestException as e:
        return None, None, Result(FAIL, "source", f"cannot reach {url} ({_reason(e)}); "
                                  "check the network or SIM, source.url and source.proxy")
    finally:
        session.close()
    if resp.status_code == 404:
        return None, None, Result(FAIL, "source", f"{url} answers 404: no manifest for board "
                                  f"'{config.board.id}'; check board.id, or publish for it")
    if resp.status_code != 200:
        return None, None, Result(FAIL, "source", f"{url} answers HTTP {resp.status_code}; "
                                  "check source.url (and the token for 401/403)")
    return resp.content, resp.headers.get("Date"), None


def check_source(config: Config) -> list[Result]:
    from content_sync.protocol import KeyFileError, dsse, load_trusted_keys

    out: list[Result] = []
    body, date, failure = _fetch_manifest(config)
    if failure is not None:
        return [failure]
    assert body is not None
    scheme = urlsplit(config.source.url).scheme
    via = {"https": "reachable, TLS certificate valid", "http": "reachable (plain http)",
           "file": "readable"}.get(scheme, "reachable")
    out.append(Result(OK, "source", f"{config.source.url} {via}"))
    try:
        keys = load_trusted_keys(config.source.trusted_keys)
        verified = dsse.verify(body, keys)
    except (KeyFileError, dsse.EnvelopeError) as e:
        out.append(Result(FAIL, "signature", f"manifest for '{config.board.id}' refused: {e}"))
    else:
        out.append(Result(OK, "signature", f"manifest signed by trusted key "
                          f"{verified.keyid[:16]}…"))
    if date:
        try:
            skew = (parsedate_to_datetime(date) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            skew = None
        if skew is not None:
            way = "behind" if skew > 0 else "ahead of"
            text = f"box clock is {human(skew)} {way} the source's"
            if abs(skew) <= 30:
                out.append(Result(OK, "skew", f"box clock within {human(skew)} of the source's"))
            elif abs(skew) <= 300:
                out.append(Result(WARN, "skew", f"{text}; check NTP (timedatectl)"))
            else:
                out.append(Result(FAIL, "skew", f"{text}: schedules will run at the wrong time; "
                                  "fix NTP (timedatectl set-ntp true) or the RTC battery"))
    return out


# -- clock -------------------------------------------------------------------------------

def check_clock() -> list[Result]:
    if shutil.which("timedatectl") is None:
        return [Result(WARN, "clock", "timedatectl not found; cannot tell if the clock is "
                       "synchronised (install systemd-timesyncd or chrony)")]
    r = _run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"])
    if r is None or r.returncode != 0:
        why = (r.stderr.strip().splitlines() or ["no answer"])[0] if r else "no answer"
        return [Result(WARN, "clock", f"timedatectl cannot tell if the clock is synchronised "
                       f"({why[:120]})")]
    if r.stdout.strip() == "yes":
        return [Result(OK, "clock", "synchronised (NTP)")]
    return [Result(WARN, "clock", "not synchronised: run 'timedatectl set-ntp true' and check "
                   "the network; schedules depend on the clock")]


# -- disk --------------------------------------------------------------------------------

def check_disk(config: Config) -> list[Result]:
    path = config.cache_dir
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free_mb = usage.free / 2**20
    out: list[Result] = []
    if not path.exists():
        out.append(Result(WARN, "disk", f"{path} does not exist yet; run the installer or "
                          "start eboard-sync to create it"))
    if free_mb < 100:
        out.append(Result(FAIL, "disk", f"only {free_mb:.0f} MB free on {probe}: new content "
                          "cannot be downloaded; lower cache.quota_mb or free space"))
    elif free_mb < 1024:
        out.append(Result(WARN, "disk", f"{free_mb:.0f} MB free on {probe}; large videos may not "
                          "fit"))
    else:
        out.append(Result(OK, "disk", f"{free_mb / 1024:.1f} GB free on {probe} "
                          f"(cache quota {config.cache.quota_mb} MB)"))
    return out


# -- units -------------------------------------------------------------------------------

def check_units(config: Config) -> list[Result]:
    if shutil.which("systemctl") is None or not os.path.isdir("/run/systemd/system"):
        return [Result(WARN, "units", "systemd is not running here; cannot check "
                       + ", ".join(UNITS))]
    out: list[Result] = []
    for unit in UNITS:
        enabled = _run(["systemctl", "is-enabled", unit])
        active = _run(["systemctl", "is-active", unit])
        e = enabled.stdout.strip() if enabled else "unknown"
        a = active.stdout.strip() if active else "unknown"
        if e == "enabled" and a == "active":
            out.append(Result(OK, "units", f"{unit} enabled and running"))
        elif e not in ("enabled", "static"):
            out.append(Result(FAIL, "units", f"{unit} is {e or 'not installed'}: run "
                              "'sudo make install-kiosk' or 'systemctl enable --now " + unit + "'"))
        else:
            out.append(Result(FAIL, "units", f"{unit} is {a}: see 'systemctl status {unit}' and "
                              f"'journalctl -u {unit} -b'"))
    if config.maintenance.restart_at:
        t = _run(["systemctl", "is-enabled", "eboard-restart.timer"])
        if not t or t.stdout.strip() != "enabled":
            out.append(Result(WARN, "units", f"maintenance.restart_at is "
                              f"{config.maintenance.restart_at} but eboard-restart.timer is not "
                              "enabled: re-run 'sudo make install-kiosk'"))
    return out


# -- last sync, heartbeat, player -----------------------------------------------------------

def _open_db(path: Path) -> sqlite3.Connection:
    """Read-only, without creating -wal/-shm files owned by whoever runs the doctor."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    return conn


def check_activity(config: Config) -> list[Result]:
    from content_sync.db import PlayerStatus, SyncStatus, rows, schema

    db = config.db_path
    if not db.exists():
        return [Result(WARN, "sync", f"no database at {db} yet: eboard-sync has never run; "
                       "check 'systemctl status eboard-sync'")]
    out: list[Result] = []
    try:
        conn = _open_db(db)
        try:
            stored = schema.stored_version(conn)
            if stored > schema.SCHEMA_VERSION:
                return [Result(FAIL, "sync", f"{db} has schema version {stored}, from a newer "
                               f"release; this one reads up to {schema.SCHEMA_VERSION}: "
                               "reinstall the newer release (eboard-sync and eboard-player "
                               "refuse to open it)")]
            sync = rows.read(conn, SyncStatus) or SyncStatus()
            player = rows.read(conn, PlayerStatus) or PlayerStatus()
            heartbeat = rows.heartbeat_delivery(conn)
        finally:
            conn.close()
    except sqlite3.Error as e:
        return [Result(FAIL, "sync", f"cannot read {db} ({e}); check its owner (eboard) "
                       "and the disk")]
    fresh = max(3 * config.source.poll_interval, 600)
    age = age_s(sync.last_success or sync.updated_at)
    state = f" (state {sync.state}: {sync.reason or ''})" if sync.state else ""
    if age is None:
        out.append(Result(WARN, "sync", "no successful sync recorded yet" + state))
    elif age <= fresh:
        out.append(Result(OK, "sync", f"last successful sync {human(age)} ago{state}"))
    elif age <= 86400:
        out.append(Result(WARN, "sync", f"last successful sync {human(age)} ago{state}; "
                          "check the source line above and 'journalctl -u eboard-sync'"))
    else:
        out.append(Result(FAIL, "sync", f"no successful sync for {human(age)}{state}: the "
                          "board may show stale content; check the network and the source"))
    out.append(_heartbeat(config, heartbeat))
    p_age = age_s(player.updated_at)
    if p_age is None:
        out.append(Result(WARN, "player", "the player has not written its status yet"))
    elif p_age <= 600:
        out.append(Result(OK, "player", f"player status written {human(p_age)} ago"))
    else:
        out.append(Result(WARN, "player", f"player status is {human(p_age)} old: see "
                          "'systemctl status eboard-player'"))
    for held in player.clips_held or []:  # content_sync/runtime/decoder_guard.py
        out.append(Result(WARN, "clip", f"clip {str(held.media)[:12]}… is held "
                          f"back: the player died {held.deaths} times with it open "
                          f"(until {held.until}); replace it at the source and see "
                          "'journalctl -u eboard-player'"))
    return out


def _heartbeat(config: Config, delivery: HeartbeatDelivery | None) -> Result:
    """The heartbeat line: delivered (and how long ago), or the error of the last one."""
    if delivery is None:
        return Result(WARN, "heartbeat", "no heartbeat recorded yet")
    delivered = age_s(delivery.last_delivered)
    if delivery.error:
        before = "" if delivered is None else f"; last delivered {human(delivered)} ago"
        return Result(WARN, "heartbeat", f"last heartbeat not delivered: {delivery.error}"
                      f"{before}")
    if delivered is None:  # the previous release recorded no time
        return Result(OK, "heartbeat", "last heartbeat delivered")
    limit = 3 * config.status.heartbeat_interval + 60
    return Result(OK if delivered <= limit else WARN, "heartbeat",
                  f"last heartbeat {human(delivered)} ago")
