"""``eboard doctor``: one line per check, OK / WARN / FAIL with what to do.

For the technician at the box (``sudo /opt/eboard/venv/bin/eboard doctor``):
config, token, source, signature, clock, disk, display, libVLC, font, alarm, units,
last sync and heartbeat. Exit status 0 when no check FAILs, 1 otherwise, so a
script or the support hotline can act on it; 2 for a wrong command line (argparse's).
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable

from eboard import checks, checks_screen
from eboard.checks import FAIL, OK, WARN, Result
from eboard.commands.common import add_config_option
from kiosk_config import Config, load

SKIPPABLE = ("access", "source", "clock", "disk", "display", "video", "font", "alarm", "units",
             "sync")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "doctor",
        help="check the box: config, token, source, clock, disk, display, video, font, alarm, "
        "units",
        description="Check everything the board needs and say what to do about each problem. "
        "Exit status 0 when nothing FAILs.",
    )
    add_config_option(p)
    p.add_argument("--display", metavar="DISPLAY",
                   help="X display to test (default: $DISPLAY, else :0 as the kiosk uses)")
    p.add_argument("--skip", metavar="CHECKS", default=frozenset(), type=_skipped,
                   help="comma-separated checks to leave out: " + ", ".join(SKIPPABLE))
    p.set_defaults(func=run)


def _skipped(text: str) -> frozenset[str]:
    """--skip's checks; an unknown one is a usage error (exit status 2, as argparse's),
    not a FAIL line a script would take for a problem of the box."""
    skip = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(skip - set(SKIPPABLE))
    if unknown:
        close = [f"'{m}' for '{u}'" for u in unknown
                 for m in difflib.get_close_matches(u, SKIPPABLE, n=1)]
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise argparse.ArgumentTypeError(
            f"unknown check(s) to skip: {', '.join(unknown)}{hint}; known: "
            f"{', '.join(SKIPPABLE)}")
    return skip


def _config_results(args: argparse.Namespace) -> tuple[Config | None, list[Result]]:
    result = load(getattr(args, "config", None))
    args.config_files = result.files
    files = ", ".join(str(f) for f in result.files) or "packaged defaults only"
    if result.problems or result.config is None:
        out = [Result(FAIL, "config", f"{p}") for p in result.problems[:8]]
        if len(result.problems) > 8:
            out.append(Result(FAIL, "config", f"... and {len(result.problems) - 8} more; "
                              "run 'eboard config check'"))
        return None, out
    warn = [] if result.files else [Result(WARN, "config", "no config file found; using "
                                           "defaults: create /etc/eboard/eboard.toml")]
    return result.config, [Result(OK, "config", f"valid ({files})"), *warn]


def collect(args: argparse.Namespace) -> list[Result]:
    skip: frozenset[str] = args.skip
    config, results = _config_results(args)
    if config is None:
        results.append(Result(WARN, "doctor", "fix the config first; the other checks need it"))
        return results
    cfg = config
    plan: list[tuple[str, Callable[[], list[Result]]]] = [
        ("access", lambda: checks.check_access(cfg, args.config_files)),
        ("token", lambda: checks.check_token(cfg)),
        ("source", lambda: checks.check_source(cfg)),
        ("clock", checks.check_clock),
        ("disk", lambda: checks.check_disk(cfg)),
        ("display", lambda: checks_screen.check_display(cfg, args.display)),
        ("video", checks_screen.check_video),
        ("font", checks_screen.check_font),
        ("alarm", lambda: checks_screen.check_alarm(cfg)),
        ("units", lambda: checks.check_units(cfg)),
        ("sync", lambda: checks.check_activity(cfg)),
    ]
    for name, check in plan:
        if name in skip:
            continue
        try:
            results.extend(check())
        except Exception as e:  # a check must never hide the others
            results.append(Result(FAIL, name, f"the check itself failed ({e.__class__.__name__}:"
                                  f" {e}); please report this"))
    return results


def run(args: argparse.Namespace) -> int:
    results = collect(args)
    tty = sys.stdout.isatty()
    colour = {OK: "\033[32m", WARN: "\033[33m", FAIL: "\033[31m"}
    for r in results:
        label = f"{r.status:<4}"
        if tty:
            label = f"{colour[r.status]}{label}\033[0m"
        print(f"{label} {r.check:<9} {r.message}")
    fails = sum(r.status == FAIL for r in results)
    warns = sum(r.status == WARN for r in results)
    if fails:
        print(f"\n{fails} FAIL, {warns} WARN: fix the FAIL lines first, then run "
              "'eboard doctor' again.")
        return 1
    print(f"\nNo FAIL ({warns} WARN). The box should work.")
    return 0
