"""`eboard doctor` against a good box and broken ones.

The box is real: a signed manifest served by an HTTP server on 127.0.0.1, a
token file, trusted keys made with content_sync.protocol.keys, a real SQLite database
written with content_sync.db.store, an Xvfb display, libVLC decoding an
ffmpeg-made clip. The doctor runs through the real CLI.
"""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from content_sync.db import store
from content_sync.protocol import dsse, keys
from eboard.cli import main

ROOT = Path(__file__).resolve().parents[1]
BOARD = "laichau.muongte.pavesu-01"


def start_xvfb(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    """An Xvfb on a display number it picks itself (-displayfd): tests run side by side."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-nolisten", "tcp", *args],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def unused_display() -> str:
    """A display number no X server uses now."""
    n = 400 + os.getpid() % 400
    while os.path.exists(f"/tmp/.X{n}-lock") or os.path.exists(f"/tmp/.X11-unix/X{n}"):
        n += 1
    return f":{n}"


@pytest.fixture(autouse=True)
def _drop_cli_log_handler() -> Iterator[None]:
    """main() installs its logging handler on the root logger; take it off again."""
    yield
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "_eboard", False)]:
        root.removeHandler(h)


class Handler(SimpleHTTPRequestHandler):
    skew = 0.0  # seconds the server's clock is ahead of ours

    def date_time_string(self, timestamp: float | None = None) -> str:
        return format_datetime(datetime.now(UTC) + timedelta(seconds=self.skew), usegmt=True)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Box:
    dir: Path
    config: Path
    token: Path
    www: Path
    url: str

    def write_config(self, **source: str) -> None:
        values = {"url": self.url, "token_file": "token",
                  "trusted_keys": '["keys/eboard-signing.pub"]'} | source
        lines = [f"{k} = {v}" if v.startswith("[") else f'{k} = "{v}"'
                 for k, v in values.items()]
        self.config.write_text(f'[board]\nid = "{BOARD}"\n[source]\n' + "\n".join(lines)
                               + '\n[cache]\ndir = "cache"\n', encoding="utf-8")

    def record_activity(self, sync_age: float = 5, player_age: float = 5,
                        heartbeat_error: str = "") -> None:
        conn = store.connect(self.dir / "cache" / "eboard.db")
        try:
            def ago(s: float) -> str:
                return (datetime.now(UTC) - timedelta(seconds=s)).isoformat()

            with store.transaction(conn):
                store.set_status(conn, "sync", {"state": "up_to_date", "reason": "version 7",
                                                "last_success": ago(sync_age)})
                store.set_status(conn, "player", {"state": "playing"})
                store.set_meta(conn, "heartbeat.last_error", heartbeat_error)
            conn.execute("UPDATE status SET updated_at=? WHERE component='player'",
                         (ago(player_age),))
        finally:
            conn.close()


@pytest.fixture
def box(tmp_path: Path) -> Iterator[Box]:
    """A good box: everything in order."""
    priv_path, _ = keys.generate(tmp_path / "keys")
    www = tmp_path / "www"
    manifest = {"format": "eboard.manifest/1", "board": BOARD, "version": 7,
                "issued_at": "2026-11-24T08:00:00+07:00", "media": {}, "playlists": [],
                "ticker": [{"id": "t-1", "text": "Lịch tiêm chủng"}]}
    envelope = dsse.sign(json.dumps(manifest).encode(), keys.load_private(priv_path))
    (www / "boards" / BOARD).mkdir(parents=True)
    (www / "boards" / BOARD / "manifest.json").write_bytes(envelope)
    handler = type("H", (Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(www)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    token = tmp_path / "token"
    token.write_text("board-token\n")
    os.chmod(token, 0o600)
    try:  # on a box where the eboard user exists, the doctor wants it to own the token
        ids = pwd.getpwnam("eboard")
        os.chown(token, ids.pw_uid, ids.pw_gid)
    except KeyError:
        pass
    b = Box(tmp_path, tmp_path / "eboard.toml", token, www,
            f"http://127.0.0.1:{server.server_address[1]}/")
    b.write_config()
    b.record_activity()
    b.handler = handler  # type: ignore[attr-defined]
    try:
        yield b
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def xvfb() -> Iterator[str]:
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (make setup)")
    proc, display = start_xvfb("-screen", "0", "1280x720x24")
    try:
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def doctor(capsys: pytest.CaptureFixture[str], box: Box, *extra: str
           ) -> tuple[int, dict[str, list[str]]]:
    rc = main(["doctor", "--config", str(box.config), *extra])
    lines = capsys.readouterr().out.splitlines()
    by_check: dict[str, list[str]] = {}
    for line in lines:
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] in ("OK", "WARN", "FAIL"):
            by_check.setdefault(parts[1], []).append(f"{parts[0]} {parts[2]}")
    return rc, by_check


QUICK = ("--skip", "video,display,units,clock")


def test_good_box_passes(capsys: pytest.CaptureFixture[str], box: Box, xvfb: str) -> None:
    rc, out = doctor(capsys, box, "--display", xvfb)
    assert out["config"][0].startswith("OK valid")
    assert out["token"] == [f"OK {box.token} present, mode 0600"]
    assert out["source"] == [f"OK {box.url} reachable (plain http)"]
    assert out["signature"][0].startswith("OK manifest signed by trusted key")
    assert out["skew"][0].startswith("OK box clock within")
    assert out["disk"][0].startswith("OK ")
    assert out["display"] == [f"OK X display {xvfb} answers (1280x720)"]
    assert out["font"][0].startswith("OK ")
    assert out["sync"][0].startswith("OK last successful sync")
    assert out["heartbeat"] == ["OK last heartbeat delivered"]
    assert out["player"][0].startswith("OK player status written")
    # No systemd and no NTP daemon here: those say so, as WARN, not FAIL.
    assert all(not line.startswith("FAIL") for lines in out.values() for line in lines), out
    if shutil.which("ffmpeg"):
        assert out["video"][0].startswith("OK libVLC"), out["video"]
    assert rc == 0


def test_the_command_is_installed(box: Box) -> None:
    r = subprocess.run([sys.executable, "-m", "eboard", "doctor", "--config", str(box.config),
                        *QUICK], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK   signature" in r.stdout and "No FAIL" in r.stdout


def test_token_readable_by_others_fails(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    os.chmod(box.token, 0o644)
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1
    assert out["token"] == [f"FAIL token file {box.token} has mode 0644; others may read it: "
                            f"run 'chmod 600 {box.token}'"]
    assert out["signature"][0].startswith("OK")  # the static part needs no token


def test_missing_token_fails(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    box.token.unlink()
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1 and "does not exist" in out["token"][0]


def test_unreachable_source_fails(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box.write_config(url=f"http://127.0.0.1:{port}/")
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1
    assert out["source"][0].startswith(f"FAIL cannot reach http://127.0.0.1:{port}/boards/")
    assert "Connection refused" in out["source"][0] and "source.url" in out["source"][0]
    assert "signature" not in out


def test_wrong_key_fails(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    keys.generate(box.dir / "other")
    box.write_config(trusted_keys='["other/eboard-signing.pub"]')
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1
    assert out["source"][0].startswith("OK")
    assert out["signature"][0].startswith(f"FAIL manifest for '{BOARD}' refused: no valid "
                                          "signature by a trusted key")


def test_unknown_board_fails(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    shutil.rmtree(box.www / "boards" / BOARD)
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1 and "answers 404" in out["source"][0] and "board.id" in out["source"][0]


def test_clock_far_from_the_source_fails(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    box.handler.skew = 3600  # type: ignore[attr-defined]
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1
    assert out["skew"][0].startswith("FAIL box clock is 60 min behind the source's")


def test_stale_sync_and_lost_heartbeat(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    box.record_activity(sync_age=3 * 86400, player_age=3600,
                        heartbeat_error="HTTP 401 from the source")
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1
    assert out["sync"][0].startswith("FAIL no successful sync for 3.0 days")
    assert out["heartbeat"] == ["WARN last heartbeat not delivered: HTTP 401 from the source"]
    assert out["player"][0].startswith("WARN player status is 60 min old")


def test_no_database_yet_is_a_warning(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    shutil.rmtree(box.dir / "cache")
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 0 and out["sync"][0].startswith("WARN no database at")


def test_a_database_of_a_newer_release_fails(capsys: pytest.CaptureFixture[str],
                                             box: Box) -> None:
    from content_sync.db import schema

    db = box.dir / "cache" / "eboard.db"
    conn = store.connect(db)
    with store.transaction(conn):
        conn.execute("UPDATE meta SET value=? WHERE key='schema'",
                     (str(schema.SCHEMA_VERSION + 1),))
    conn.close()
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1
    assert out["sync"] == [f"FAIL {db} has schema version {schema.SCHEMA_VERSION + 1}, from a "
                           f"newer release; this one reads up to {schema.SCHEMA_VERSION}: "
                           "reinstall the newer release (eboard-sync and eboard-player refuse "
                           "to open it)"]


def test_usb_folder_source(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    box.write_config(url=box.www.as_uri() + "/", token_file="")
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 0, out
    assert out["source"][0].startswith("OK file://") and out["signature"][0].startswith("OK")
    assert out["token"] == ["OK none needed for a folder or USB source"]
    shutil.rmtree(box.www / "boards")
    rc, out = doctor(capsys, box, *QUICK)
    assert rc == 1 and "is the USB stick mounted" in out["source"][0]


def test_bad_config_fails_and_stops(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    box.config.write_text('[board]\nid = "Bad Id"\n[sourse]\nurl = "x"\n')
    rc, out = doctor(capsys, box)
    assert rc == 1
    assert any("did you mean 'source'" in line for line in out["config"])
    assert set(out) == {"config", "doctor"}


def test_no_display_fails(capsys: pytest.CaptureFixture[str], box: Box) -> None:
    if shutil.which("xdpyinfo") is None:
        pytest.skip("xdpyinfo (x11-utils) is not installed")
    display = unused_display()
    rc, out = doctor(capsys, box, "--display", display, "--skip", "video,units,clock")
    assert rc == 1 and out["display"][0].startswith(f"FAIL no X display answers at {display}")


def test_geometry_outside_the_screen_warns(capsys: pytest.CaptureFixture[str], box: Box,
                                           xvfb: str) -> None:
    with box.config.open("a") as f:
        f.write('[display]\ngeometry = "1920x96+0+700"\n')
    rc, out = doctor(capsys, box, "--display", xvfb, "--skip", "video,units,clock")
    assert rc == 0 and out["display"][0].startswith(f"WARN display {xvfb} is 1280x720")


def test_unknown_skip_name_is_a_usage_error(capsys: pytest.CaptureFixture[str], box: Box
                                            ) -> None:
    """Exit status 2, as argparse's own usage errors: it was 1, a FAILed check to a script."""
    with pytest.raises(SystemExit) as e:
        main(["doctor", "--config", str(box.config), "--skip", "vidoe,units"])
    assert e.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert ("eboard doctor: error: argument --skip: unknown check(s) to skip: vidoe (did you "
            "mean 'video' for 'vidoe'?); known: access, source,") in captured.err


@pytest.fixture
def searchable_dir() -> Iterator[Path]:
    """A folder any user can search (pytest's own tmp folder is 0700)."""
    with tempfile.TemporaryDirectory(prefix="eboard-access-") as d:
        Path(d).chmod(0o755)
        yield Path(d)


def test_files_the_daemon_user_cannot_read(searchable_dir: Path) -> None:
    """The check behind the 'access' line, for an unprivileged user of this machine."""
    from eboard.checks import check_access, readable_by
    from kiosk_config import load

    if os.geteuid() != 0 or readable_by(Path("/"), "nobody") is None:
        pytest.skip("needs root (to own the files) and a user 'nobody'")
    tmp_path = searchable_dir
    open_file, closed_file = tmp_path / "open.toml", tmp_path / "closed.toml"
    open_file.write_text("")
    closed_file.write_text("")
    open_file.chmod(0o644)
    closed_file.chmod(0o600)
    assert readable_by(open_file, "nobody") is True
    assert readable_by(closed_file, "nobody") is False
    config = load(files=[]).config
    assert config is not None
    results = check_access(config, [open_file, closed_file], user="nobody")
    assert [r.status for r in results] == ["FAIL"]
    assert f"cannot read {closed_file}" in results[0].message
    assert check_access(config, [open_file], user="nobody")[0].status == "OK"
    tmp_path.chmod(0o700)  # a folder above that others cannot search
    assert readable_by(open_file, "nobody") is False
    assert readable_by(open_file, "no-such-user-here") is None
