"""The previous release (v0.1.0, commit 8161ee3) run as processes beside this tree.

tests/test_previous_release.py holds two promises with it: boards of the previous release
keep working against this tree's source server, and a data folder that the previous
release's server wrote is taken over by this tree's server without a board noticing.
Everything goes through processes and HTTP: ``python -m eboard.cli …`` with ``PYTHONPATH``
at one tree or the other, and the server's HTTP API (eboard/1 and the operator's calls).
No server module is imported here, so the same tests hold for a rewritten server.

- :func:`extract_previous_release`: ``git archive 8161ee3 | tar -x`` into a folder (the
  clone needs the history: a shallow one fails, saying so);
- :class:`Tree`: a tree to run ``eboard`` from (this one, or the previous release);
- :class:`Lab`: the processes of one test, their logs, and waits that fail with the logs;
- :class:`Api`: the source server over HTTP, as operators and boards call it;
- :class:`OldBoard`: a board of the previous release: its config (in that release's
  format), its state read from that release's layout (``eboard.db``, ``media/{sha256}``),
  and proof of play queued by that release's own player code.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import requests
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS_RELEASE = "8161ee3"  # tag v0.1.0, which a clone may lack: the hash is what counts
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY",
              "ALL_PROXY")
LOG_TAIL_CHARS = 5000
T = TypeVar("T")


class MissingHistory(Exception):
    """The clone lacks the previous release's commit (a shallow clone, an export)."""


def extract_previous_release(dest: Path, commit: str = PREVIOUS_RELEASE,
                             repo: Path = ROOT) -> Path:
    """The previous release's files in ``dest`` (``git archive | tar -x``); returns ``dest``."""
    probe = subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{commit}^{{commit}}"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        raise MissingHistory(
            f"the previous release (v0.1.0, commit {commit}) is not in the git history of "
            f"{repo} ({probe.stderr.strip() or 'git cat-file failed'}); these tests run its "
            f"code, so they need a clone with that history: 'git fetch --unshallow' (or a "
            f"full clone), then run them again")
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(["git", "-C", str(repo), "archive", commit],
                          stdout=subprocess.PIPE) as archive:
        untar = subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout,
                               capture_output=True, text=True, check=False)
    if archive.returncode != 0 or untar.returncode != 0:
        raise RuntimeError(f"git archive {commit} | tar -x -C {dest} failed "
                           f"(git {archive.returncode}, tar {untar.returncode}): {untar.stderr}")
    return dest


@dataclass(frozen=True)
class Tree:
    """A source tree whose ``eboard`` is run as ``python -m eboard.cli`` (the venv's python)."""

    root: Path
    name: str

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "eboard.cli", *args]


CURRENT = Tree(ROOT, "this tree")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def secret_file(path: Path, text: str) -> Path:
    """A file only its owner reads (tokens: both releases refuse anything looser)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def write_tokens(path: Path, operator: str, boards: dict[str, str]) -> Path:
    """The server's tokens file (``--tokens``): ``operator = …`` and ``[boards] id = …``."""
    lines = [f"operator = {json.dumps(operator)}", "[boards]"]
    lines += [f"{json.dumps(b)} = {json.dumps(t)}" for b, t in boards.items()]
    return secret_file(path, "\n".join(lines) + "\n")


@dataclass(frozen=True)
class Playlist:
    """An operator's playlist file with one image made here and one text item."""

    path: Path
    image: bytes
    playlist_id: str
    image_item: str


def write_playlist(d: Path, colour: tuple[int, int, int], playlist_id: str = "thong-bao"
                   ) -> Playlist:
    """A playlist TOML (the format of docs/PUBLISHING.md, the same in both releases)."""
    d.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("RGB", (320, 180), colour).save(buf, "PNG")
    (d / "anh.png").write_bytes(buf.getvalue())
    (d / "playlist.toml").write_text(
        f'[[playlists]]\nid = "{playlist_id}"\ntitle = "Thông báo của xã"\n\n'
        '[[playlists.items]]\nid = "anh"\nfile = "anh.png"\nduration = 5\n\n'
        '[[playlists.items]]\nid = "tb-hop"\ntype = "text"\ntitle = "THÔNG BÁO"\n'
        'body = "Ủy ban nhân dân xã họp dân lúc 8 giờ sáng Chủ Nhật."\nduration = 5\n',
        encoding="utf-8")
    return Playlist(d / "playlist.toml", buf.getvalue(), playlist_id, "anh")


def manifest_payload(envelope: bytes) -> dict[str, Any]:
    """The manifest inside a DSSE envelope (not verified: the boards do that)."""
    payload: dict[str, Any] = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    return payload


# --- processes ---------------------------------------------------------------------------

@dataclass
class Proc:
    """A long-running process of a test; stdout and stderr go to one log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    stopped: bool = False  # stopped on purpose: its exit is not a failure

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (as systemd stops a service), SIGKILL after ``timeout``; the exit code."""
        self.stopped = True
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait(10)

    def tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError as e:
            return f"(no log: {e})"
        return text if len(text) <= chars else "…" + text[-chars:]


@dataclass
class Server:
    proc: Proc
    url: str
    port: int


class Lab:
    """The processes of one test on 127.0.0.1, as a context manager: on the way out it
    stops those still running, and adds to any exception met inside what every process
    logged (an exception note), so that a failure shows what went wrong where."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.log_dir = tmp / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.etc = tmp / "etc-eboard"  # an empty /etc/eboard: no box config leaks in
        self.etc.mkdir(exist_ok=True)
        self.procs: list[Proc] = []
        self.runs: list[str] = []  # transcripts of the one-shot commands, in order

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None:
            exc.add_note(self.report())  # before the stop: which were still running
        for proc in self.procs:
            if proc.alive():
                proc.stop(5)

    def env(self, tree: Tree) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in PROXY_VARS}
        env.update(PYTHONPATH=str(tree.root), EBOARD_ETC=str(self.etc), PYTHONUNBUFFERED="1",
                   no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
        return env

    # --- one-shot commands -------------------------------------------------------------

    def run(self, tree: Tree, *args: str, timeout: float = 60.0
            ) -> subprocess.CompletedProcess[str]:
        """``eboard ARGS`` of ``tree`` to its end; fails unless it exits 0."""
        return self._run(tree, tree.argv(*args), f"eboard {' '.join(args)}", timeout)

    def python(self, tree: Tree, code: str, *args: str, timeout: float = 60.0
               ) -> subprocess.CompletedProcess[str]:
        """``python -c CODE ARGS`` with ``tree``'s packages (its own code, in its process)."""
        return self._run(tree, [sys.executable, "-c", code, *args],
                         f"python -c <{code.strip().splitlines()[0][:60]}…>", timeout)

    def _run(self, tree: Tree, argv: list[str], what: str, timeout: float
             ) -> subprocess.CompletedProcess[str]:
        # cwd is the tree itself: `python -m`/`-c` put the cwd first on sys.path
        try:
            r = subprocess.run(argv, env=self.env(tree), cwd=tree.root, capture_output=True,
                               text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            self.runs.append(f"$ [{tree.name}] {what}: still running after {timeout:g} s\n"
                             f"{_text(e.stdout)}{_text(e.stderr)}")
            raise AssertionError(f"[{tree.name}] {what} did not end within {timeout:g} s"
                                 ) from None
        self.runs.append(f"$ [{tree.name}] {what}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        if r.returncode != 0:
            raise AssertionError(f"[{tree.name}] {what} failed (exit {r.returncode}): "
                                 f"{r.stderr.strip()[-500:]}")
        return r

    # --- long-running processes ----------------------------------------------------------

    def start(self, tree: Tree, name: str, *args: str) -> Proc:
        """``eboard ARGS`` of ``tree`` in the background, logging to ``logs/NAME.log``."""
        log = self.log_dir / f"{len(self.procs):02d}-{name.replace(' ', '_')}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(tree.argv(*args), env=self.env(tree), cwd=tree.root,
                                     stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT)
        proc = Proc(f"{name} [{tree.name}] pid {popen.pid}", popen, log)
        self.procs.append(proc)
        return proc

    def serve_source(self, tree: Tree, name: str, data: Path, tokens: Path, port: int
                     ) -> Server:
        """``eboard serve-source`` on 127.0.0.1:``port``, once it answers HTTP."""
        url = f"http://127.0.0.1:{port}/"
        proc = self.start(tree, name, "serve-source", "--data", str(data), "--host",
                          "127.0.0.1", "--port", str(port), "--tokens", str(tokens))
        self.expect(f"{proc.name} answers HTTP on {url}", lambda: answers(url), 30)
        return Server(proc, url, port)

    # --- waiting -------------------------------------------------------------------------

    def expect(self, what: str, cond: Callable[[], T | None], timeout: float, step: float = 0.2
               ) -> T:
        """``cond()``'s value once true; fails after ``timeout`` s, or at once when a
        process of the test exits unasked. A request refused or a database busy on the way
        counts as not yet (the last such error is in the failure)."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while True:
            try:
                value = cond()
                if value:
                    return value
            except (requests.RequestException, sqlite3.Error, OSError, ValueError,
                    KeyError, TypeError) as e:
                last_error = f"{type(e).__name__}: {e}"
            died = [p for p in self.procs if not p.stopped and not p.alive()]
            if died or time.monotonic() >= deadline:
                why = (f"{', '.join(p.name for p in died)} exited "
                       f"(code {', '.join(str(p.popen.returncode) for p in died)})"
                       if died else f"not within {timeout:g} s")
                note = f" (last error: {last_error})" if last_error else ""
                raise AssertionError(f"{what}: {why}{note}")
            time.sleep(step)

    def report(self) -> str:
        """What every process logged (tails) and what the commands printed, in order."""
        parts = ["", "=" * 30 + " logs of the processes " + "=" * 30]
        for p in self.procs:
            state = "running" if p.alive() else f"exit {p.popen.returncode}"
            parts.append(f"--- {p.name} ({state}), {p.log}:\n{p.tail()}")
        for r in self.runs[-8:]:
            parts.append("--- " + (r if len(r) <= 3000 else r[:3000] + "…"))
        return "\n".join(parts)

    # --- what operators do ----------------------------------------------------------------

    def keys(self, tree: Tree, d: Path) -> tuple[Path, Path]:
        """``eboard keys generate`` of ``tree``: (private key, public key)."""
        self.run(tree, "keys", "generate", "--out", str(d))
        return d / "eboard-signing.key", d / "eboard-signing.pub"

    def publish(self, tree: Tree, url: str, board: str, key: Path, playlist: Playlist,
                operator_token: Path) -> int:
        """``eboard publish --to URL`` of ``tree``; the version it published."""
        r = self.run(tree, "publish", "--to", url, "--board", board, "--key", str(key),
                     "--token-file", str(operator_token), str(playlist.path))
        words = r.stdout.split()
        assert "version" in words, f"eboard publish said no version: {r.stdout}"
        return int(words[words.index("version") + 1])


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else out or ""


def answers(url: str) -> bool:
    """The server answers HTTP at all (any status): it is listening."""
    with closing(requests.Session()) as s:
        s.trust_env = False
        s.get(url, timeout=2)
    return True


# --- the server's HTTP API -----------------------------------------------------------------

@dataclass
class Api:
    """The source server over HTTP: the operator's calls and a board's, by token."""

    url: str
    operator: str
    boards: dict[str, str]
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False  # loopback, never through a proxy

    def get(self, path: str, token: str | None = None, **kw: Any) -> requests.Response:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.session.get(self.url + path, headers=headers, timeout=kw.pop("timeout", 10),
                                **kw)

    def _json(self, r: requests.Response) -> Any:
        if r.status_code != 200:
            raise ValueError(f"GET {r.url} answered HTTP {r.status_code}: {r.text[:300]}")
        return r.json()

    def listed(self, board: str) -> dict[str, Any] | None:
        """The board's entry in the list of boards seen (``GET boards.json``)."""
        entries = self._json(self.get("boards.json"))
        return next((e for e in entries if e.get("board") == board), None)

    def heartbeat(self, board: str) -> dict[str, Any] | None:
        """The last status the board sent, as the server lists it."""
        entry = self.listed(board)
        status = entry.get("status") if entry else None
        return status if isinstance(status, dict) and status else None

    def reported_version(self, board: str) -> int | None:
        status = self.heartbeat(board)
        manifest = status.get("manifest") if status else None
        return manifest.get("active_version") if isinstance(manifest, dict) else None

    def events(self, board: str, after: int, wait: float = 0) -> dict[str, Any]:
        """A board's long-poll (``GET boards/{id}/events``), with its token."""
        events: dict[str, Any] = self._json(self.get(
            f"boards/{board}/events", self.boards[board], params={"after": after,
                                                                   "wait": int(wait)},
            timeout=wait + 10))
        return events

    def post_command(self, board: str, command: str, **args: Any) -> dict[str, Any]:
        r = self.session.post(f"{self.url}boards/{board}/commands",
                              json={"command": command, "args": args},
                              headers={"Authorization": f"Bearer {self.operator}"}, timeout=10)
        if r.status_code not in (200, 201):
            raise ValueError(f"POST {r.url} answered HTTP {r.status_code}: {r.text[:300]}")
        answer: dict[str, Any] = r.json()
        return answer

    def commands(self, board: str) -> list[dict[str, Any]]:
        commands: list[dict[str, Any]] = self._json(
            self.get(f"boards/{board}/commands", self.operator))
        return commands

    def command(self, board: str, cid: str) -> dict[str, Any] | None:
        return next((c for c in self.commands(board) if c.get("id") == cid), None)

    def answered(self, board: str, cid: str) -> dict[str, Any] | None:
        """The command with its result, once the board's answer reached the server."""
        command = self.command(board, cid)
        return command if command and command.get("state") == "answered" else None

    def plays_summary(self, board: str) -> dict[str, Any]:
        summary: dict[str, Any] = self._json(
            self.get(f"boards/{board}/plays/summary", self.operator))
        return summary


# --- a board of the previous release ---------------------------------------------------------

QUEUE_PLAYS = """
import json, sys
from pathlib import Path
from player.records import PlayRecord, Writer

db, n, item, playlist, version = sys.argv[1], int(sys.argv[2]), *sys.argv[3:5], int(sys.argv[5])
writer = Writer(Path(db))  # the player's own writer thread: one transaction per record
ids = []
for _ in range(n):
    record = PlayRecord(item, playlist, version)
    writer.play(record.close("played"))
    ids.append(record.id)
writer.close()
print(json.dumps(ids))
"""


@dataclass(frozen=True)
class OldBoard:
    """A box of the previous release: config file, token file, state directory.

    Its state is read from that release's own layout: ``{cache.dir}/eboard.db`` (SQLite,
    WAL; ``meta`` rows ``active_version`` and ``sync.events_after``, the long-poll's
    cursor; ``plays``, the proof-of-play outbox; ``command_results``) and
    ``{cache.dir}/media/{sha256}``.
    """

    board: str
    config: Path
    state: Path

    @classmethod
    def write(cls, d: Path, board: str, url: str, token: str, trusted_key: Path,
              poll_interval: int = 600, heartbeat_interval: int = 5) -> OldBoard:
        """The config in the previous release's format (its kiosk_config/eboard.example.toml).

        The manifest poll is long and unjittered (the first poll at start, the next after
        ``poll_interval``): a new version sooner than that came through the long-poll.
        """
        d.mkdir(parents=True, exist_ok=True)
        token_file = secret_file(d / "board.token", token + "\n")
        state = d / "state"
        config = d / "eboard.toml"
        config.write_text(
            f'[board]\nid = "{board}"\nname = "Bảng tin xã (bản 0.1.0)"\n\n'
            f'[source]\nurl = "{url}"\ntoken_file = "{token_file}"\n'
            f'trusted_keys = ["{trusted_key}"]\npoll_interval = {poll_interval}\n'
            'poll_jitter = 0.0\nlong_poll = true\nconnect_timeout = 2.0\nread_timeout = 10.0\n\n'
            f'[cache]\ndir = "{state}"\n\n'
            f'[status]\nheartbeat_interval = {heartbeat_interval}\n', encoding="utf-8")
        return cls(board, config, state)

    @property
    def db_path(self) -> Path:
        return self.state / "eboard.db"

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection | None]:
        if not self.db_path.is_file():  # mode=rw: never create the board's database
            yield None
            return
        conn = sqlite3.connect(f"file:{self.db_path}?mode=rw", uri=True, timeout=5)
        try:
            yield conn
        finally:
            conn.close()

    def meta(self, key: str) -> str | None:
        with self._db() as conn:
            if conn is None:
                return None
            row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            return None if row is None else str(row[0])

    def active_version(self) -> int:
        return int(self.meta("active_version") or 0)

    def events_after(self) -> int:
        """The long-poll's cursor: the last event id the board has taken."""
        return int(self.meta("sync.events_after") or 0)

    def outbox_size(self) -> int:
        with self._db() as conn:
            return 0 if conn is None else int(
                conn.execute("SELECT count(*) FROM plays").fetchone()[0])

    def command_result(self, cid: str) -> dict[str, Any] | None:
        with self._db() as conn:
            if conn is None:
                return None
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM command_results WHERE id=?", (cid,)).fetchone()
            return None if row is None else dict(row)

    def cached_media(self, sha: str) -> bytes | None:
        """A media file as the board keeps it, when its database counts it as verified."""
        with self._db() as conn:
            if conn is None or conn.execute(
                    "SELECT 1 FROM media WHERE sha256=? AND verified_at IS NOT NULL",
                    (sha,)).fetchone() is None:
                return None
        path = self.state / "media" / sha
        return path.read_bytes() if path.is_file() else None

    def queue_plays(self, lab: Lab, tree: Tree, n: int, item: str, playlist: str,
                    version: int) -> list[str]:
        """``n`` proof-of-play records put in the outbox by the release's player code."""
        r = lab.python(tree, QUEUE_PLAYS, str(self.db_path), str(n), item, playlist,
                       str(version))
        ids: list[str] = json.loads(r.stdout.strip().splitlines()[-1])
        return ids
