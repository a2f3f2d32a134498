"""Remote commands from operators: validated, executed at most once, answered once.

Commands arrive in the heartbeat answer and as ``command`` events on the long-poll,
shaped ``{"id": "…", "command": "name", "args": {…}, "expires_at": "…"}``. Each id
is recorded in ``command_results`` *before* anything is done, in its own
transaction, so a command delivered twice (answer and event, or again after a
reboot) runs once. Its result waits there until a heartbeat has carried it.

Kinds: ``sync_now``, ``screenshot``, ``restart_player``, ``reboot``, ``screen_on``,
``screen_off``, ``clear_cache`` (never the active or pending content), ``log_level``
(``{"level": "debug", "minutes": 30}``, at most a day). ``reboot`` and
``clear_cache`` run only where ``status.allow_reboot`` / ``status.allow_clear_cache``
say so. Anything unknown, malformed or expired is refused with a reason and not run.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from content_sync.db import player_requests, store
from kiosk_config import Config

log = logging.getLogger(__name__)
KINDS = ("sync_now", "screenshot", "restart_player", "reboot", "screen_on", "screen_off",
         "clear_cache", "log_level")
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
              "error": logging.ERROR}
LOG_LEVEL_DEFAULT_MIN = 30
LOG_LEVEL_MAX_MIN = 24 * 60
ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LOG_LEVEL_KEY = "log_level.override"


class Refused(Exception):
    """The command is not run; the message says why."""


@dataclass(frozen=True)
class Command:
    id: str
    name: str
    args: dict[str, Any]


def parse(raw: Any, now: datetime | None = None) -> Command:
    """Check shape, kind, expiry and arguments. Raises Refused with the reason."""
    if not isinstance(raw, dict):
        raise Refused("a command must be a JSON object with id and command")
    cid, name, args = raw.get("id"), raw.get("command"), raw.get("args", {})
    if not isinstance(cid, str) or not ID_RE.match(cid):
        raise Refused("the command has no usable id (1–128 letters, digits, '.', '_', ':', '-')")
    if not isinstance(name, str) or name not in KINDS:
        raise Refused(f"unknown command {name!r}; this box knows {', '.join(KINDS)}")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise Refused("args must be a JSON object")
    expires = raw.get("expires_at")
    if expires is not None:
        try:
            at = datetime.fromisoformat(str(expires))
            if at.tzinfo is None:
                raise ValueError
        except ValueError:
            raise Refused(f"expires_at {expires!r} is not an ISO 8601 time with offset") from None
        if at <= (now or datetime.now(UTC)):
            raise Refused(f"the command expired at {expires} before it reached the box")
    if name == "log_level":
        level = args.get("level")
        minutes = args.get("minutes", LOG_LEVEL_DEFAULT_MIN)
        if level not in LOG_LEVELS:
            raise Refused(f"log_level needs args.level, one of {', '.join(LOG_LEVELS)}")
        if not isinstance(minutes, int) or isinstance(minutes, bool) \
                or not 1 <= minutes <= LOG_LEVEL_MAX_MIN:
            raise Refused(f"log_level args.minutes must be a whole number 1..{LOG_LEVEL_MAX_MIN}")
    elif args:
        raise Refused(f"{name} takes no arguments (got {', '.join(sorted(args))})")
    return Command(cid, name, dict(args))


def _raw_id(raw: Any) -> str | None:
    cid = raw.get("id") if isinstance(raw, dict) else None
    return cid if isinstance(cid, str) and ID_RE.match(cid) else None


class Executor:
    """Runs commands for one box. ``sync_now`` is the daemon's way to sync at once."""

    def __init__(self, config: Config, conn: sqlite3.Connection,
                 sync_now: Callable[[], str] | None = None,
                 reboot_argv: Sequence[str] = ("systemctl", "reboot")) -> None:
        self.config = config
        self.conn = conn
        self.sync_now = sync_now
        self.reboot_argv = list(reboot_argv)

    # --- receiving --------------------------------------------------------------------

    def handle(self, commands: Any) -> list[str]:
        """Handle a list of commands; returns the ids acted on now (not seen before)."""
        if not isinstance(commands, list):
            return []
        handled = []
        for raw in commands:
            cid = _raw_id(raw)
            name = str(raw.get("command")) if isinstance(raw, dict) else "?"
            if cid is None:
                log.warning("refused a command without a usable id: %.200s", json.dumps(raw))
                continue  # nothing to answer to: the server cannot match a result
            if not self._claim(cid, name[:64]):
                continue
            handled.append(cid)
            try:
                cmd = parse(raw)
                self._run(cmd)
            except Refused as e:
                self._finish(cid, "refused", False, str(e))
                log.warning("refused command %s (%s): %s", cid, name[:64], e)
            except Exception as e:  # a failing command must not stop the heartbeat
                log.exception("command %s (%s) failed", cid, name)
                self._finish(cid, "failed", False, f"{type(e).__name__}: {e}")
        return handled

    def _claim(self, cid: str, name: str) -> bool:
        with store.transaction(self.conn):
            cur = self.conn.execute(
                "INSERT OR IGNORE INTO command_results(id, command, received_at, state) "
                "VALUES (?,?,?,'running')", (cid, name, store.utcnow()))
        return cur.rowcount == 1

    def _finish(self, cid: str, state: str, ok: bool, detail: str) -> None:
        with store.transaction(self.conn):
            self.conn.execute(
                "UPDATE command_results SET state=?, ok=?, detail=?, finished_at=? WHERE id=?",
                (state, int(ok), detail, store.utcnow(), cid))

    # --- running ----------------------------------------------------------------------

    def _run(self, cmd: Command) -> None:
        log.info("running remote command %s (%s)", cmd.name, cmd.id)
        if cmd.name in player_requests.PLAYER_KINDS:
            with store.transaction(self.conn):
                player_requests.add(self.conn, cmd.id, cmd.name, cmd.args)
                self.conn.execute("UPDATE command_results SET state='waiting_player' WHERE id=?",
                                  (cmd.id,))
            return
        if cmd.name == "sync_now":
            self._finish(cmd.id, "done", True, self._sync_now())
        elif cmd.name == "log_level":
            self._finish(cmd.id, "done", True, self._log_level(cmd.args))
        elif cmd.name == "clear_cache":
            if not self.config.status.allow_clear_cache:
                raise Refused("clear_cache is not allowed on this box "
                              "(status.allow_clear_cache = false in its config)")
            self._finish(cmd.id, "done", True, self._clear_cache())
        elif cmd.name == "reboot":
            if not self.config.status.allow_reboot:
                raise Refused("reboot is not allowed on this box "
                              "(status.allow_reboot = false in its config)")
            self._reboot(cmd.id)

    def _sync_now(self) -> str:
        if self.sync_now is not None:
            return self.sync_now()
        from content_sync.board import Engine

        result = Engine(self.config, self.conn).sync_once()
        return f"sync {result.state.value}: {result.reason}".strip(": ")

    def _log_level(self, args: dict[str, Any]) -> str:
        level = str(args["level"])
        minutes = int(args.get("minutes", LOG_LEVEL_DEFAULT_MIN))
        until = datetime.now(UTC) + timedelta(minutes=minutes)
        with store.transaction(self.conn):
            store.set_meta(self.conn, LOG_LEVEL_KEY, json.dumps(
                {"level": level, "until": until.isoformat(timespec="seconds")}))
        apply_log_level(self.conn, self.config)
        return (f"log level {level} until {until.isoformat(timespec='seconds')}, then "
                f"{self.config.log_level}")

    def _clear_cache(self) -> str:
        from content_sync.board import cache, sync_lock

        with sync_lock(self.config.cache_dir) as locked:
            if not locked:
                raise Refused("a sync is running on this cache; send clear_cache again in a "
                              "minute")
            keep = store.referenced_media(self.conn)
            removed = freed = 0
            for sha, size in store.media_by_lru(self.conn):
                if sha not in keep:
                    cache.evict(self.conn, self.config.cache_dir, sha)
                    removed, freed = removed + 1, freed + size
            partial = store.partial_dir(self.config.cache_dir)
            if partial.is_dir():
                for p in partial.iterdir():
                    if p.is_file():
                        freed += p.stat().st_size
                        p.unlink(missing_ok=True)
                        removed += 1
        return (f"removed {removed} files ({freed / 1048576:.1f} MB); kept the "
                f"{len(keep)} media of the active and pending manifests")

    def _reboot(self, cid: str) -> None:
        # The result is on disk before the reboot starts; the heartbeat after boot carries it.
        self._finish(cid, "done", True, f"rebooting now ({' '.join(self.reboot_argv)})")
        try:
            subprocess.Popen(self.reboot_argv, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError as e:
            self._finish(cid, "failed", False, f"could not start {self.reboot_argv[0]}: {e}; "
                         "is the service allowed to reboot (polkit rule or sudoers)?")
        else:
            log.warning("rebooting the box on remote command %s", cid)

    # --- answering --------------------------------------------------------------------

    def collect_player_results(self) -> None:
        """Copy the player's answers into command_results (one transaction)."""
        player_requests.expire_unanswered(self.conn)
        done = player_requests.answered(self.conn)
        if not done:
            return
        with store.transaction(self.conn):
            for r in done:
                self.conn.execute(
                    "UPDATE command_results SET state=?, ok=?, detail=?, finished_at=? "
                    "WHERE id=? AND state='waiting_player'",
                    ("done" if r["ok"] else "failed", r["ok"], r["detail"], r["done_at"],
                     r["id"]))
            player_requests.forget(self.conn, [r["id"] for r in done])

    def results_to_report(self, limit: int = 50) -> list[dict[str, Any]]:
        """Finished results not yet carried by a heartbeat."""
        self.collect_player_results()
        rows = self.conn.execute(
            "SELECT id, command, state, ok, detail, received_at, finished_at FROM "
            "command_results WHERE reported_at IS NULL AND state NOT IN "
            "('running','waiting_player') ORDER BY finished_at LIMIT ?", (limit,))
        return [{**dict(r), "ok": bool(r["ok"])} for r in rows]

    def mark_reported(self, ids: list[str]) -> None:
        with store.transaction(self.conn):
            now = store.utcnow()
            self.conn.executemany("UPDATE command_results SET reported_at=? WHERE id=?",
                                  [(now, i) for i in ids])
            cutoff = (datetime.now(UTC) - timedelta(days=30)).isoformat()
            self.conn.execute("DELETE FROM command_results WHERE reported_at<?", (cutoff,))


def apply_log_level(conn: sqlite3.Connection, config: Config) -> str | None:
    """Apply an operator's log level while it lasts; at its end go back to the config's.

    Returns the level in force by override, or None (then the logger is left alone,
    so ``eboard -v`` keeps working).
    """
    raw = store.get_meta(conn, LOG_LEVEL_KEY)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        active = datetime.fromisoformat(data["until"]) > datetime.now(UTC)
        level = str(data["level"])
    except (ValueError, KeyError, TypeError):
        active, level = False, config.log_level
    if active:
        logging.getLogger().setLevel(LOG_LEVELS.get(level, logging.INFO))
        return level
    with store.transaction(conn):
        store.set_meta(conn, LOG_LEVEL_KEY, "")
    logging.getLogger().setLevel(LOG_LEVELS.get(config.log_level, logging.INFO))
    log.info("the operator's log level ended; back to %s", config.log_level)
    return None
