"""`make install-kiosk` into a temporary root (DESTDIR): what lands where, owned
by whom, with which modes; a second run changes nothing; uninstall keeps the
content and the config, and --purge removes them too.

Runs the real scripts/install-kiosk.sh. No running systemd is needed: users,
directories and unit enabling go through systemd-sysusers, systemd-tmpfiles and
systemctl with --root. The installer runs from a snapshot of the project (other
work on the tree must not change files under the test's feet), and installs a
venv with --no-deps (pip still fetches the build backend, as on a real box).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OPT = "opt/eboard"
UNITS = ["eboard-sync.service", "eboard-player.service", "eboard-x11.service",
         "eboard-restart.service", "eboard-restart.timer"]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the install test sets owners: run as root"),
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("systemd-sysusers", "systemd-tmpfiles", "systemctl")),
        reason="systemd-sysusers, systemd-tmpfiles and systemctl are needed (package systemd)",
    ),
]


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project as the installer would find it in a checkout."""
    src = tmp_path_factory.mktemp("checkout")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for d in ("eboard", "player", "content_sync", "kiosk_config", "assets", "scripts",
              "systemd", "docs"):
        shutil.copytree(ROOT / d, src / d, ignore=ignore, symlinks=True)
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / f, src / f)
    return src


def run_installer(snapshot: Path, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop("DESTDIR", None)
    r = subprocess.run(
        ["bash", str(snapshot / "scripts" / "install-kiosk.sh"), "--destdir", str(root), *args],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert r.returncode == 0, f"installer failed:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def installed(snapshot: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("root")
    args = ["--no-deps"]  # the dependencies would come from PyPI; the layout is what counts
    run_installer(snapshot, root, *args)
    return root, args


def ids(root: Path) -> tuple[int, int]:
    """uid and gid of the eboard user in the installed root."""
    for line in (root / "etc/passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == "eboard":
            return int(f[2]), int(f[3])
    raise AssertionError("no eboard user in etc/passwd")


def check(path: Path, mode: int, uid: int, gid: int) -> None:
    st = path.lstat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, uid, gid), (
        f"{path}: mode {stat.S_IMODE(st.st_mode):04o} owner {st.st_uid}:{st.st_gid}, "
        f"expected {mode:04o} {uid}:{gid}"
    )


def tree(root: Path) -> dict[str, tuple[object, ...]]:
    """Everything under root: type, mode, owner, content hash, link target, file mtime."""
    out: dict[str, tuple[object, ...]] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if rel.endswith(".pwd.lock"):
            continue
        st = p.lstat()
        key: tuple[object, ...] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                   st.st_uid, st.st_gid)
        if p.is_symlink():
            key += (os.readlink(p),)
        elif p.is_file():
            key += (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_mtime_ns)
        out[rel] = key
    return out


def test_what_lands_where(installed: tuple[Path, list[str]]) -> None:
    root, _ = installed
    uid, gid = ids(root)
    assert uid != 0 and gid != 0
    passwd = (root / "etc/passwd").read_text()
    assert f"eboard:x:{uid}:{gid}:" in passwd and ":/usr/sbin/nologin" in passwd
    group = (root / "etc/group").read_text()
    for g in ("video", "render", "audio"):
        assert any(line.startswith(f"{g}:") and "eboard" in line.split(":")[3]
                   for line in group.splitlines()), g

    # Content and state: only the eboard user.
    check(root / "var/lib/eboard", 0o750, uid, gid)
    # Config: root writes, the eboard group reads.
    check(root / "etc/eboard", 0o750, 0, gid)
    check(root / "etc/eboard/conf.d", 0o750, 0, gid)
    check(root / "etc/eboard/keys", 0o750, 0, gid)
    check(root / "etc/eboard/eboard.toml", 0o640, 0, gid)
    check(root / "etc/eboard/eboard.example.toml", 0o644, 0, 0)
    assert (root / "etc/eboard/eboard.toml").read_bytes() == (
        ROOT / "kiosk_config/eboard.example.toml").read_bytes()

    for name in UNITS:
        check(root / "etc/systemd/system" / name, 0o644, 0, 0)
    for name in ("eboard-sync.service", "eboard-player.service", "eboard-x11.service"):
        link = root / "etc/systemd/system/multi-user.target.wants" / name
        assert os.readlink(link) == f"/etc/systemd/system/{name}"
    # No nightly restart unless the config asks for one.
    assert not (root / "etc/systemd/system/timers.target.wants/eboard-restart.timer").exists()
    check(root / "etc/sysusers.d/eboard.conf", 0o644, 0, 0)
    check(root / "etc/tmpfiles.d/eboard.conf", 0o644, 0, 0)
    check(root / "etc/polkit-1/rules.d/50-eboard.rules", 0o644, 0, 0)

    # The program: root-owned, not writable by the eboard user.
    check(root / OPT, 0o755, 0, 0)
    for helper in ("eboard-x11", "eboard-wait-x", "eboard-backoff"):
        check(root / OPT / "libexec" / helper, 0o755, 0, 0)
    check(root / OPT / "docs/INSTALL.md", 0o644, 0, 0)
    check(root / OPT / "src/eboard/cli.py", 0o644, 0, 0)
    check(root / OPT / "src/content_sync/runtime/sdnotify.py", 0o644, 0, 0)
    assert os.readlink(root / "usr/local/bin/eboard") == "/opt/eboard/venv/bin/eboard"
    eboard = root / OPT / "venv/bin/eboard"
    assert eboard.is_file() and os.access(eboard, os.X_OK)
    # Installed editable from /opt/eboard/src, so that the player finds assets/fonts.
    r = subprocess.run([str(root / OPT / "venv/bin/python"), "-c",
                        "import importlib.util as u; "
                        "print(u.find_spec('player').submodule_search_locations[0])"],
                       capture_output=True, text=True, timeout=30, cwd=root)
    assert r.stdout.strip() == str(root / OPT / "src/player"), r.stderr
    check(root / OPT / "src/assets/fonts/NotoSans-Regular.ttf", 0o644, 0, 0)
    writable_by_eboard = [
        p for p in (root / OPT).rglob("*")
        if not p.is_symlink() and (p.lstat().st_uid == uid or p.lstat().st_mode & 0o002)
    ]
    assert writable_by_eboard == []


def test_installed_units_pass_systemd_analyze_verify(installed: tuple[Path, list[str]],
                                                     tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    root, _ = installed
    for name in UNITS:
        text = (root / "etc/systemd/system" / name).read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("/opt/eboard/", f"{root / OPT}/"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", *UNITS],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_second_run_changes_nothing(snapshot: Path, installed: tuple[Path, list[str]]) -> None:
    root, args = installed
    # What a technician adds after the first install must survive a re-run too.
    (root / "etc/eboard/eboard.toml").write_text('[board]\nid = "laichau.muongte.pavesu-01"\n')
    token = root / "etc/eboard/token"
    token.write_text("s3cret\n")
    os.chmod(token, 0o600)
    uid, gid = ids(root)
    os.chown(token, uid, gid)
    (root / "var/lib/eboard/eboard.db").write_bytes(b"content")
    before = tree(root)
    r = run_installer(snapshot, root, *args)
    after = tree(root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"a second install changed: {changed[:20]}"
    assert "installing" not in r.stdout and "creating" not in r.stdout


def test_nightly_restart_follows_the_config(snapshot: Path,
                                            installed: tuple[Path, list[str]]) -> None:
    root, args = installed
    conf = root / "etc/eboard/conf.d/50-maintenance.toml"
    dropin = root / "etc/systemd/system/eboard-restart.timer.d/10-restart-at.conf"
    wants = root / "etc/systemd/system/timers.target.wants/eboard-restart.timer"
    conf.write_text('timezone = "Asia/Bangkok"\n[maintenance]\nrestart_at = "03:15"\n')
    run_installer(snapshot, root, *args)
    text = dropin.read_text()
    assert "OnCalendar=\nOnCalendar=*-*-* 03:15:00 Asia/Bangkok\n" in text
    assert wants.is_symlink()
    if shutil.which("systemd-analyze"):
        r = subprocess.run(["systemd-analyze", "calendar", "*-*-* 03:15:00 Asia/Bangkok"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
    conf.write_text('[maintenance]\nrestart_at = ""\n')
    run_installer(snapshot, root, *args)
    assert not dropin.exists() and not wants.exists() and not wants.is_symlink()
    conf.unlink()


def test_uninstall_keeps_content_and_config_then_purge(
        snapshot: Path, installed: tuple[Path, list[str]]) -> None:
    root, _ = installed
    r = run_installer(snapshot, root, "--uninstall")
    assert not (root / OPT).exists()
    for name in UNITS:
        assert not (root / "etc/systemd/system" / name).exists()
    assert not list((root / "etc/systemd/system").rglob("eboard*")), "enable links left behind"
    assert not (root / "etc/tmpfiles.d/eboard.conf").exists()
    assert not (root / "etc/polkit-1/rules.d/50-eboard.rules").exists()
    assert not (root / "usr/local/bin/eboard").is_symlink()
    assert not (root / "etc/eboard/eboard.example.toml").exists()
    # Kept: config, token, content, and the user that owns the content.
    assert (root / "etc/eboard/eboard.toml").read_text().startswith("[board]")
    assert (root / "etc/eboard/token").read_text() == "s3cret\n"
    assert (root / "var/lib/eboard/eboard.db").read_bytes() == b"content"
    assert "eboard:" in (root / "etc/passwd").read_text()
    assert "--purge" in r.stdout
    # Uninstalling again is harmless.
    run_installer(snapshot, root, "--uninstall")

    run_installer(snapshot, root, "--uninstall", "--purge")
    assert not (root / "etc/eboard").exists()
    assert not (root / "var/lib/eboard").exists()
    assert "eboard:" not in (root / "etc/passwd").read_text()
