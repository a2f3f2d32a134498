"""The demo: the whole chain on one machine — source server, sync daemon, player.

State lives in ``.demo/`` (demo signing key made on first run, published source,
board cache); screenshots go to ``demo-output/``. Every process started here is
stopped when the demo ends, whatever the reason.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from content_sync.protocol import PRIVATE_NAME, PUBLIC_NAME, generate_keys
from content_sync.server import new_token

log = logging.getLogger("eboard.demo")
ROOT = Path(__file__).resolve().parents[1]
BOARD = "demo.board-01"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def prepare_state(state: Path, port: int) -> Path:
    """Keys (first run only), tokens and the box config; returns the config path."""
    keys = state / "keys"
    if not (keys / PRIVATE_NAME).exists():
        generate_keys(keys)
        print(f"demo: made a demo signing key in {keys}")
    (state / "source").mkdir(parents=True, exist_ok=True)
    board_token, operator_token = new_token(), new_token()
    _write_secret(state / "board.token", board_token + "\n")
    _write_secret(state / "operator.token", operator_token + "\n")
    _write_secret(
        state / "tokens.toml",
        f'operator = "{operator_token}"\n[boards]\n"{BOARD}" = "{board_token}"\n',
    )
    config = state / "eboard.toml"
    config.write_text(
        f"""# Made by `eboard demo`.
[board]
id = "{BOARD}"
name = "UBND xã Pa Vệ Sử — Bảng tin điện tử"

[source]
url = "http://127.0.0.1:{port}/"
token_file = "board.token"
trusted_keys = ["keys/{PUBLIC_NAME}"]
poll_interval = 10

[cache]
dir = "cache"

[display]
geometry = "1280x720+0+0"

[status]
heartbeat_interval = 10
screenshot_interval = 30
""",
        encoding="utf-8",
    )
    return config


def _wait_port(port: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.1)
    return False


def _start(stack: ExitStack, name: str, cmd: list[str], env: dict[str, str] | None = None,
           log_dir: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log_dir / f"{name}.log", "wb") if log_dir else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log_dir:
            out.close()  # type: ignore[union-attr]

    stack.callback(stop)
    return proc


def start_xvfb(stack: ExitStack, log_dir: Path) -> str:
    """Start Xvfb on a free display number; returns the DISPLAY value."""
    if not shutil.which("Xvfb"):
        raise RuntimeError("no display and no Xvfb: run 'make setup' (installs xvfb)")
    for n in range(90, 130):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    display = f":{n}"
    _start(stack, "xvfb", ["Xvfb", display, "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
           log_dir=log_dir)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{n}").exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"Xvfb did not start on {display}; see {log_dir / 'xvfb.log'}")
        time.sleep(0.1)
    return display


def run_demo(duration: float, root: Path = ROOT, screenshot_interval: float = 5.0) -> int:
    state = root / ".demo"
    output = root / "demo-output"
    output.mkdir(parents=True, exist_ok=True)
    logs = output / "logs"
    logs.mkdir(exist_ok=True)
    port = free_port()
    config = prepare_state(state, port)
    eboard = [sys.executable, "-m", "eboard"]
    env = dict(os.environ)
    with ExitStack() as stack:
        _start(stack, "source", eboard + ["serve-source", "--data", str(state / "source"),
               "--port", str(port), "--tokens", str(state / "tokens.toml")], log_dir=logs)
        if not _wait_port(port):
            print(f"demo: the source server did not start; see {logs / 'source.log'}",
                  file=sys.stderr)
            return 1
        print(f"demo: reference source server on http://127.0.0.1:{port}/ "
              f"(operators' status page: http://127.0.0.1:{port}/status)")
        published = subprocess.run(
            eboard + ["publish", "--to", f"http://127.0.0.1:{port}/", "--board", BOARD,
                      "--key", str(state / "keys" / PRIVATE_NAME),
                      "--token-file", str(state / "operator.token"),
                      str(root / "assets" / "demo" / "playlist.toml")],
            check=False,
        )
        if published.returncode != 0:
            return 1
        _start(stack, "sync", eboard + ["sync", "--config", str(config)], log_dir=logs)
        headless = not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
        if headless:
            env["DISPLAY"] = start_xvfb(stack, logs)
            env["QT_QPA_PLATFORM"] = "xcb"
            print(f"demo: no display found; the player runs under Xvfb {env['DISPLAY']} and "
                  f"saves a screenshot every {screenshot_interval:g} s into {output}/")
        play = eboard + ["play", "--config", str(config)]
        if headless:
            play += ["--screenshot-dir", str(output),
                     "--screenshot-interval", str(screenshot_interval)]
        if duration > 0:
            play += ["--duration", str(duration)]
            print(f"demo: running for {duration:g} s")
        else:
            print("demo: running until Ctrl-C")
        player = _start(stack, "player", play, env=env, log_dir=logs)
        try:
            code = player.wait()
        except KeyboardInterrupt:
            code = 0
        print(f"demo: stopped everything it started; logs in {logs}/")
        shots = sorted(output.glob("*.png"))
        if headless:
            print(f"demo: {len(shots)} screenshots in {output}/")
        return code
