"""The systemd units: they pass `systemd-analyze verify`, and keep their promises.

No running systemd is needed. `verify` wants every ExecStart= binary to exist,
so the units are checked in a temporary tree where /opt/eboard points at the
real programs: the project's venv `eboard` command and systemd/libexec/.
The helper scripts (back-off, wait for X) run for real.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNITS_DIR = ROOT / "systemd"
UNITS = ["eboard-sync.service", "eboard-player.service", "eboard-x11.service",
         "eboard-restart.service", "eboard-restart.timer"]
LIBEXEC = UNITS_DIR / "libexec"

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed"
)


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """Parse a unit file; repeated keys are kept as lists."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (UNITS_DIR / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key, []).append(value)
    return sections


@pytest.fixture(scope="module")
def unit_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The units with /opt/eboard rewritten to a tree whose programs exist."""
    base = tmp_path_factory.mktemp("units")
    opt = base / "opt" / "eboard"
    (opt / "venv" / "bin").mkdir(parents=True)
    eboard = ROOT / ".venv" / "bin" / "eboard"
    if not eboard.exists():
        pytest.skip("the project's venv has no eboard command yet: run 'make setup'")
    (opt / "venv" / "bin" / "eboard").symlink_to(eboard)
    shutil.copytree(LIBEXEC, opt / "libexec")
    out = base / "units"
    out.mkdir()
    for name in UNITS:
        text = (UNITS_DIR / name).read_text(encoding="utf-8")
        (out / name).write_text(text.replace("/opt/eboard/", f"{opt}/"), encoding="utf-8")
    return out


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_unit_passes_systemd_analyze_verify(unit_tree: Path, name: str) -> None:
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit_tree / name)],
        capture_output=True, text=True, timeout=60, cwd=unit_tree,
    )
    # verify exits 0 on unknown keys and only warns: any output is a defect too.
    assert r.returncode == 0 and r.stderr.strip() == "" and r.stdout.strip() == "", (
        f"rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    )


@needs_analyze
def test_verify_catches_a_broken_unit(unit_tree: Path, tmp_path: Path) -> None:
    """The check above can fail: a typo and a missing binary are reported."""
    bad = tmp_path / "eboard-bad.service"
    text = (unit_tree / "eboard-sync.service").read_text(encoding="utf-8")
    bad.write_text(text.replace("WatchdogSec=", "WachdogSec=")
                   .replace("venv/bin/eboard", "venv/bin/eboard-missing"), encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(bad)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "WachdogSec" in r.stderr
    assert r.returncode != 0 and "eboard-missing" in r.stderr


@pytest.mark.parametrize("name", ["eboard-sync.service", "eboard-player.service"])
def test_daemons_are_watched_restarted_and_confined(name: str) -> None:
    s = unit(name)["Service"]
    assert s["Type"] == ["notify"]
    assert int(s["WatchdogSec"][0]) > 0
    assert s["Restart"] == ["always"]
    assert "StartLimitIntervalSec" in unit(name)["Unit"]  # never give up restarting
    assert any("eboard-backoff" in x for x in s["ExecStartPre"])
    assert s["User"] == ["eboard"]
    assert s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == ["/var/lib/eboard"]
    assert s["StateDirectory"] == ["eboard"]
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "ProtectKernelTunables",
                "ProtectControlGroups", "RestrictSUIDSGID", "LockPersonality"):
        assert s[key] == ["yes"], key
    assert s["CapabilityBoundingSet"] == [""]


def test_player_gets_the_display_and_no_network() -> None:
    u = unit("eboard-player.service")
    assert "eboard-x11.service" in u["Unit"]["Requires"]
    assert "eboard-x11.service" in " ".join(u["Unit"]["After"])
    env = " ".join(u["Service"]["Environment"])
    assert "DISPLAY=:0" in env and "XAUTHORITY=/run/eboard-x11/Xauthority" in env
    assert any("eboard-wait-x" in x for x in u["Service"]["ExecStartPre"])
    # GPU and sound: nothing may close the device list (ProtectClock= implies DeviceAllow=).
    for key in ("PrivateDevices", "DeviceAllow", "DevicePolicy", "ProtectClock"):
        assert key not in u["Service"], key
    # The player never speaks HTTP (DESIGN.md §1): the unit enforces it.
    assert "AF_INET" not in u["Service"]["RestrictAddressFamilies"][0]
    assert u["Service"]["ExecStart"] == ["/opt/eboard/venv/bin/eboard play"]
    sync = unit("eboard-sync.service")["Service"]
    assert sync["ExecStart"] == ["/opt/eboard/venv/bin/eboard sync"]


def test_unit_files_parse_as_ini() -> None:
    for name in UNITS:
        cp = configparser.ConfigParser(strict=False, interpolation=None)
        cp.optionxform = str  # type: ignore[assignment,method-assign]
        cp.read(UNITS_DIR / name, encoding="utf-8")
        assert cp.sections(), name


@needs_analyze
@pytest.mark.parametrize("name", ["eboard-sync.service", "eboard-player.service"])
def test_security_exposure_of_the_daemons_is_low(unit_tree: Path, name: str) -> None:
    # Both score about 1.7 of 10 ("OK"); 2.5 leaves room, and catches a lost block.
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=25", "--no-pager",
         str(unit_tree / name)],
        capture_output=True, text=True, timeout=60, cwd=unit_tree,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr


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


def _backoff(state_dir: Path, env_extra: dict[str, str] | None = None) -> tuple[float, str]:
    env = dict(os.environ, RUNTIME_DIRECTORY=str(state_dir), EBOARD_BACKOFF_MAX="1",
               **(env_extra or {}))
    t0 = time.monotonic()
    r = subprocess.run([str(LIBEXEC / "eboard-backoff"), "eboard-test"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return time.monotonic() - t0, r.stderr


def test_backoff_waits_longer_after_quick_restarts(tmp_path: Path) -> None:
    took, err = _backoff(tmp_path)
    assert took < 0.5 and err == ""            # a first start: no wait
    took, err = _backoff(tmp_path)             # died at once: wait (capped at 1 s here)
    assert took >= 0.9 and "started again 1 time(s)" in err
    assert (tmp_path / "backoff").read_text().split()[0] == "1"
    _, err = _backoff(tmp_path)
    assert "started again 2 time(s)" in err
    # A start long after the previous one resets the count.
    (tmp_path / "backoff").write_text("5 1000\n")
    took, err = _backoff(tmp_path)
    assert took < 0.5 and err == ""
    # A damaged state file is not fatal.
    (tmp_path / "backoff").write_text("garbage\n")
    took, _ = _backoff(tmp_path)
    assert took < 0.5


def test_wait_x_gives_up_with_a_message_when_there_is_no_display() -> None:
    if shutil.which("xdpyinfo") is None:
        pytest.skip("xdpyinfo (x11-utils) is not installed")
    env = dict(os.environ, DISPLAY=unused_display())
    r = subprocess.run([str(LIBEXEC / "eboard-wait-x"), "1"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "did not answer within 1 s" in r.stderr and "eboard-x11" in r.stderr


def test_wait_x_returns_once_the_display_answers(tmp_path: Path) -> None:
    if shutil.which("Xvfb") is None or shutil.which("xdpyinfo") is None:
        pytest.skip("Xvfb or xdpyinfo is not installed")
    xvfb, display = start_xvfb()
    try:
        env = dict(os.environ, DISPLAY=display)
        r = subprocess.run([str(LIBEXEC / "eboard-wait-x"), "20"], env=env,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)


def test_x_session_script_gives_the_player_a_cookie_protected_display(tmp_path: Path) -> None:
    """eboard-x11 with Xvfb standing in for Xorg (no GPU here): the cookie it writes
    lets a client in, and a client without it is refused."""
    if shutil.which("Xvfb") is None or shutil.which("xdpyinfo") is None \
            or shutil.which("xauth") is None:
        pytest.skip("Xvfb, xdpyinfo or xauth is not installed")
    fake_xorg = tmp_path / "Xorg"
    fake_xorg.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" > {tmp_path}/args\n"
        "display=$1; shift\n"
        "keep=''\n"
        "while [ $# -gt 0 ]; do\n"
        "  case $1 in vt*|-novtswitch|-keeptty|-background) ;;\n"
        "    none) ;;\n"
        "    *) keep=\"$keep $1\" ;; esac\n"
        "  shift\n"
        "done\n"
        "exec Xvfb $display $keep\n"
    )
    fake_xorg.chmod(0o755)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    display = unused_display()
    env = dict(os.environ, EBOARD_XORG=str(fake_xorg), EBOARD_DISPLAY=display,
               RUNTIME_DIRECTORY=str(run_dir))
    proc = subprocess.Popen([str(LIBEXEC / "eboard-x11")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = dict(os.environ, DISPLAY=display, XAUTHORITY=str(run_dir / "Xauthority"))
        r = subprocess.run([str(LIBEXEC / "eboard-wait-x"), "20"], env=client,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        cookie = run_dir / "Xauthority"
        assert cookie.stat().st_mode & 0o777 == 0o640
        args = (tmp_path / "args").read_text().split()
        assert args[:2] == [display, "vt7"]
        for flag in ("-nolisten", "-nocursor", "-novtswitch", "-auth"):
            assert flag in args
        assert args[args.index("-auth") + 1] == str(cookie)
        stranger = dict(client, XAUTHORITY=str(tmp_path / "no-cookie"))
        r = subprocess.run(["xdpyinfo", "-display", display], env=stranger,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, "a client without the cookie got in"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
