"""What the box can say about itself: uptime, memory, temperature, load, disk, network, modem.

Every reader returns None (or leaves a field None) when the value cannot be read on
this machine — a field is never guessed. Linux only: /proc, /sys, the sysinfo(2)
system call, ModemManager's ``mmcli`` and ``timedatectl`` where they are installed.

The sync daemon runs hardened (systemd ``ProcSubset=pid`` hides /proc/uptime,
/proc/meminfo and /proc/net; ``SystemCallFilter=@system-service`` kills a process
that calls adjtimex), so every reader has a fallback that works there: clocks and
sysinfo(2) instead of /proc, timesyncd's flag file or timedated instead of adjtimex.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from ctypes import CDLL, Structure, byref, c_char, c_long, c_uint, c_ulong, c_ushort
from ctypes.util import find_library
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROC = Path("/proc")
SYS_THERMAL = Path("/sys/class/thermal")
SYS_NET = Path("/sys/class/net")
MMCLI_TIMEOUT_S = 5.0
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


class _SysInfo(Structure):
    """struct sysinfo of sysinfo(2)."""

    _fields_ = [("uptime", c_long), ("loads", c_ulong * 3), ("totalram", c_ulong),
                ("freeram", c_ulong), ("sharedram", c_ulong), ("bufferram", c_ulong),
                ("totalswap", c_ulong), ("freeswap", c_ulong), ("procs", c_ushort),
                ("pad", c_ushort), ("totalhigh", c_ulong), ("freehigh", c_ulong),
                ("mem_unit", c_uint), ("_f", c_char * 64)]


def _sysinfo() -> _SysInfo | None:
    try:
        libc = CDLL(find_library("c") or "libc.so.6", use_errno=True)
        info = _SysInfo()
        rc: int = libc.sysinfo(byref(info))
    except (OSError, AttributeError):
        return None
    return info if rc == 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None


def uptime_s() -> float | None:
    text = _read(PROC / "uptime")
    try:
        if text:
            return float(text.split()[0])
    except (ValueError, IndexError):
        pass
    try:
        return round(time.clock_gettime(time.CLOCK_BOOTTIME), 2)
    except (AttributeError, OSError):
        return None


def boot_time() -> str | None:
    """Boot time (UTC ISO 8601): /proc/stat's btime, else now minus CLOCK_BOOTTIME."""
    text = _read(PROC / "stat") or ""
    for line in text.splitlines():
        if line.startswith("btime "):
            try:
                return datetime.fromtimestamp(int(line.split()[1]), UTC).isoformat()
            except (ValueError, IndexError, OverflowError):
                return None
    up = uptime_s()
    return None if up is None else datetime.fromtimestamp(int(time.time() - up), UTC).isoformat()


def memory() -> dict[str, int | None]:
    """Total, free and available memory in MB (available only where /proc/meminfo is read)."""
    out: dict[str, int | None] = {"total_mb": None, "free_mb": None, "available_mb": None}
    info = _sysinfo()
    if info is not None:
        unit = info.mem_unit or 1
        out["total_mb"] = info.totalram * unit // 1048576
        out["free_mb"] = (info.freeram + info.bufferram) * unit // 1048576
    text = _read(PROC / "meminfo")
    if not text:
        return out
    fields = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0])
    if "MemTotal" in fields:
        out["total_mb"] = fields["MemTotal"] // 1024
    if "MemAvailable" in fields:
        out["available_mb"] = fields["MemAvailable"] // 1024
    return out


def cpu_temperature_c() -> float | None:
    """The hottest readable thermal zone (°C); None where the box exposes none."""
    best: float | None = None
    if not SYS_THERMAL.is_dir():
        return None
    for zone in sorted(SYS_THERMAL.glob("thermal_zone*")):
        text = _read(zone / "temp")
        try:
            milli = int(text) if text else None
        except ValueError:
            milli = None
        if milli is None or milli <= -50_000 or milli >= 150_000:
            continue  # unreadable or a sensor reporting nonsense
        value = round(milli / 1000, 1)
        best = value if best is None else max(best, value)
    return best


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    info = _sysinfo()
    return None if info is None else [round(x / 65536, 2) for x in info.loads]


def disk(path: Path) -> dict[str, int | None]:
    """Free and total MB of the filesystem holding ``path``."""
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return {"free_mb": None, "total_mb": None}
    return {"free_mb": usage.free // (1024 * 1024), "total_mb": usage.total // (1024 * 1024)}


def default_interface() -> str | None:
    """The interface of the default IPv4 route, from /proc/net/route."""
    text = _read(PROC / "net" / "route")
    if not text:
        return None
    best: tuple[int, str] | None = None
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 7 or parts[1] != "00000000":
            continue
        try:
            metric = int(parts[6])
        except ValueError:
            continue
        if best is None or metric < best[0]:
            best = (metric, parts[0])
    return None if best is None else best[1]


def interfaces_up() -> list[str]:
    """Interfaces whose operstate is up (not loopback), from /sys/class/net."""
    try:
        names = sorted(p.name for p in SYS_NET.iterdir())
    except OSError:
        return []
    return [n for n in names if n != "lo" and _read(SYS_NET / n / "operstate") == "up"]


def network() -> dict[str, Any]:
    """Default-route interface, its kind (mobile, wifi, ethernet) and its carrier state.

    Where the routing table is hidden, the one interface that is up, if there is one.
    """
    iface = default_interface()
    if iface is None:
        up = interfaces_up()
        iface = up[0] if len(up) == 1 else None
    out: dict[str, Any] = {"interface": iface, "kind": None, "operstate": None,
                           "hostname": socket.gethostname()}
    if iface is None:
        return out
    base = SYS_NET / iface
    out["operstate"] = _read(base / "operstate")
    if (base / "wireless").exists():
        out["kind"] = "wifi"
    elif iface.startswith(("wwan", "ppp", "usb", "cdc-wdm")) or (base / "qmi").exists():
        out["kind"] = "mobile"
    elif (base / "device").exists():
        out["kind"] = "ethernet"
    else:
        out["kind"] = "virtual"
    return out


def _mmcli_json(*args: str) -> dict[str, Any] | None:
    exe = shutil.which("mmcli")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "-J", *args], capture_output=True, text=True,
                              timeout=MMCLI_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def modem() -> dict[str, Any] | None:
    """The first modem's state, access technology, operator and signal, via ModemManager.

    None when mmcli is absent or lists no modem.
    """
    listing = _mmcli_json("-L")
    if not listing:
        return None
    paths = listing.get("modem-list") or []
    if not paths:
        return None
    path = str(paths[0])
    info = _mmcli_json("-m", path.rsplit("/", 1)[-1])
    if not info:
        return {"present": True, "state": None, "signal_percent": None}
    gen = (info.get("modem") or {}).get("generic") or {}
    gpp = (info.get("modem") or {}).get("3gpp") or {}
    quality = gen.get("signal-quality") or {}
    tech = gen.get("access-technologies") or []
    return {
        "present": True,
        "state": gen.get("state"),
        "access_technology": ",".join(tech) if isinstance(tech, list) else str(tech) or None,
        "operator": gpp.get("operator-name") or None,
        "signal_percent": _num(quality.get("value")),
        "signal_recent": quality.get("recent") == "yes" if "recent" in quality else None,
    }


def clock_synchronised() -> bool | None:
    """Whether NTP has synchronised the clock: timesyncd's flag, else timedated; or None.

    Never adjtimex(2) here: the hardened sync unit kills a process that calls it.
    """
    if TIMESYNC_FLAG.exists():
        return True
    exe = shutil.which("timedatectl")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "show", "-p", "NTPSynchronized", "--value"],
                              capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = proc.stdout.strip()
    if proc.returncode != 0 or value not in ("yes", "no"):
        return None
    return value == "yes"


def local_time(tz: Any) -> dict[str, Any]:
    now = datetime.now(tz)
    offset = now.utcoffset()
    return {"local_time": now.isoformat(timespec="seconds"),
            "utc_offset_s": int(offset.total_seconds()) if offset is not None else None,
            "monotonic_s": round(time.monotonic(), 1)}
