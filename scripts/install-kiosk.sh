#!/bin/bash
# Install (or remove) eboard on a Debian 12 / Ubuntu 24.04 box as a kiosk:
#   sudo make install-kiosk          = sudo scripts/install-kiosk.sh
#   sudo make uninstall-kiosk        = sudo scripts/install-kiosk.sh --uninstall
#
# What lands where (DESTDIR, when given, is prefixed to every path):
#   /opt/eboard/src/          the project's source, as installed
#   /opt/eboard/venv/         its own Python virtual environment (eboard command)
#   /opt/eboard/libexec/      helper scripts the units run
#   /opt/eboard/docs/         INSTALL.md
#   /usr/local/bin/eboard     a link to /opt/eboard/venv/bin/eboard
#   /etc/systemd/system/      eboard-sync, eboard-player, eboard-x11 units, nightly restart timer
#   /etc/sysusers.d/eboard.conf, /etc/tmpfiles.d/eboard.conf   the eboard user, the directories
#   /etc/polkit-1/rules.d/50-eboard.rules   lets user eboard reboot (remote command, if allowed)
#   /etc/eboard/              eboard.toml (created once, never overwritten), eboard.example.toml,
#                             conf.d/, keys/ — root:eboard 0750
#   /var/lib/eboard/          content and state — eboard:eboard 0750
#
# Running it twice changes nothing. --uninstall removes everything above except
# /etc/eboard (config) and /var/lib/eboard (content) and the eboard user that owns
# the content; --uninstall --purge removes those too.
#
# Options:
#   --destdir DIR   install under DIR (a test root): no apt, no starting of units;
#                   systemctl/sysusers/tmpfiles work offline on DIR
#   --no-apt        do not install Debian packages
#   --no-start      enable the units but do not (re)start them
#   --wheel FILE    install this wheel instead of /opt/eboard/src (editable, the default);
#                   the bundled fonts in assets/ are then not found (fonts-noto-core is used)
#   --no-deps       pip --no-deps: do not install the Python dependencies
#   --uninstall [--purge]
set -euo pipefail
umask 022

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DESTDIR="${DESTDIR:-}"
APT=1
START=1
WHEEL=""
NODEPS=0
MODE=install
PURGE=0
PYTHON="${PYTHON:-python3}"

while [ $# -gt 0 ]; do
    case "$1" in
        --destdir) DESTDIR="$2"; shift ;;
        --destdir=*) DESTDIR="${1#*=}" ;;
        --no-apt) APT=0 ;;
        --no-start) START=0 ;;
        --wheel) WHEEL="$2"; shift ;;
        --no-deps) NODEPS=1 ;;
        --uninstall) MODE=uninstall ;;
        --purge) PURGE=1 ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d'; exit 0 ;;
        *) echo "install-kiosk: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [ -n "$DESTDIR" ]; then
    DESTDIR="$(mkdir -p "$DESTDIR" && cd "$DESTDIR" && pwd)"
    APT=0
    START=0
fi
R="$DESTDIR"
OPT=/opt/eboard
UNITS="eboard-sync.service eboard-player.service eboard-x11.service eboard-restart.service eboard-restart.timer"
ENABLE="eboard-sync.service eboard-player.service eboard-x11.service"
LIBEXEC="eboard-x11 eboard-wait-x eboard-backoff"

# Debian packages the box needs at run time (not the test tools).
DEB_RUNTIME="python3 python3-venv ca-certificates util-linux xauth x11-utils x11-xserver-utils \
xserver-xorg-core xserver-xorg-video-all xserver-xorg-input-libinput \
libvlc5 vlc-plugin-base vlc-plugin-video-output ffmpeg fonts-noto-core fontconfig \
libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 \
libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1 libfontconfig1 \
libdbus-1-3 polkitd"

say() { echo "install-kiosk: $*"; }
die() { echo "install-kiosk: $*" >&2; exit 1; }

systemd_running() { [ -z "$R" ] && [ -d /run/systemd/system ]; }

# numeric UID:GID of OWNER:GROUP from the target root's passwd and group files
# (under DESTDIR the names are not the host's).
ids() {
    local user="${1%%:*}" group="${1#*:}" uid gid
    uid="$(awk -F: -v n="$user" '$1 == n {print $3; exit}' "$R/etc/passwd" 2>/dev/null)"
    gid="$(awk -F: -v n="$group" '$1 == n {print $3; exit}' "$R/etc/group" 2>/dev/null)"
    [ -n "$uid" ] || { [ "$user" = root ] && uid=0; }
    [ -n "$gid" ] || { [ "$group" = root ] && gid=0; }
    [ -n "$uid" ] && [ -n "$gid" ] || die "user or group '$1' missing in $R/etc (sysusers failed?)"
    echo "$uid:$gid"
}

# put SRC DEST MODE OWNER:GROUP — copy only when different, then fix mode/owner.
put() {
    local src="$1" dest="$R$2" mode="$3" owner
    owner="$(ids "$4")"
    mkdir -p "$(dirname "$dest")"
    if ! cmp -s "$src" "$dest" 2>/dev/null; then
        install -m "$mode" "$src" "$dest.eboard-new"
        mv -f "$dest.eboard-new" "$dest"
        CHANGED=1
    fi
    chmod "$mode" "$dest"
    chown "$owner" "$dest"
}

CHANGED=0

# Every file of the project that the box runs (tracked or not, no caches).
project_files() {
    (cd "$HERE" && find eboard player content_sync kiosk_config assets \
        -name __pycache__ -prune -o -name '*.pyc' -prune -o -type f -print | LC_ALL=C sort
     echo pyproject.toml; [ -f README.md ] && echo README.md; true)
}

install_packages() {
    [ "$APT" = 1 ] || return 0
    local missing="" p
    for p in $DEB_RUNTIME; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        say "installing Debian packages:$missing"
        apt-get update -q
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    fi
}

install_source() {
    local f
    while IFS= read -r f; do
        put "$HERE/$f" "$OPT/src/$f" 0644 root:root
    done < <(project_files)
    # Files that are no longer part of the project.
    if [ -d "$R$OPT/src" ]; then
        local keep
        keep="$(project_files)"
        (cd "$R$OPT/src" && find . -type f ! -path '*/__pycache__/*' ! -path './build/*' \
            ! -path '*.egg-info/*' | sed 's#^\./##') | while IFS= read -r f; do
            grep -qxF "$f" <<<"$keep" || { rm -f "$R$OPT/src/$f"; say "removed stale $OPT/src/$f"; }
        done
    fi
    put "$HERE/docs/INSTALL.md" "$OPT/docs/INSTALL.md" 0644 root:root
    for f in $LIBEXEC; do
        put "$HERE/systemd/libexec/$f" "$OPT/libexec/$f" 0755 root:root
    done
}

install_venv() {
    local venv="$R$OPT/venv" stamp want
    if [ ! -x "$venv/bin/python" ]; then
        say "creating the virtual environment $OPT/venv"
        "$PYTHON" -m venv "$venv"
    fi
    want="$( { (cd "$R$OPT/src" && project_files | xargs -d '\n' sha256sum);
               [ -n "$WHEEL" ] && sha256sum "$WHEEL" | cut -d' ' -f1; echo "nodeps=$NODEPS"; } \
             | sha256sum | cut -d' ' -f1)"
    stamp="$venv/.eboard-installed"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/eboard" ]; then
        return 0
    fi
    local args=(--quiet --disable-pip-version-check --no-cache-dir)
    [ "$NODEPS" = 1 ] && args+=(--no-deps)
    say "installing eboard into $OPT/venv"
    if [ -n "$WHEEL" ]; then
        "$venv/bin/python" -m pip install "${args[@]}" --force-reinstall "$WHEEL"
    else
        # Editable from /opt/eboard/src, so that the code finds assets/ (fonts) beside it.
        "$venv/bin/python" -m pip install "${args[@]}" --editable "$R$OPT/src"
    fi
    echo "$want" > "$stamp"
    CHANGED=1
}

# /usr/local/bin/eboard, so that a technician can type 'sudo eboard doctor'.
link_command() {
    local link="$R/usr/local/bin/eboard"
    if [ "$(readlink "$link" 2>/dev/null)" != "$OPT/venv/bin/eboard" ]; then
        if [ -e "$link" ] && [ ! -L "$link" ]; then
            say "WARNING: $link exists and is not ours; leaving it"
            return 0
        fi
        mkdir -p "$(dirname "$link")"
        ln -sfn "$OPT/venv/bin/eboard" "$link"
    fi
}

install_system() {
    local u
    put "$HERE/systemd/eboard.sysusers" /etc/sysusers.d/eboard.conf 0644 root:root
    put "$HERE/systemd/eboard.tmpfiles" /etc/tmpfiles.d/eboard.conf 0644 root:root
    if [ -n "$R" ]; then
        systemd-sysusers --root="$R" >/dev/null
        systemd-tmpfiles --root="$R" --create "$R/etc/tmpfiles.d/eboard.conf"
    else
        systemd-sysusers /etc/sysusers.d/eboard.conf >/dev/null
        systemd-tmpfiles --create /etc/tmpfiles.d/eboard.conf
    fi
    for u in $UNITS; do
        put "$HERE/systemd/$u" "/etc/systemd/system/$u" 0644 root:root
    done
    put "$HERE/systemd/eboard-polkit.rules" /etc/polkit-1/rules.d/50-eboard.rules 0644 root:root
    put "$HERE/kiosk_config/eboard.example.toml" /etc/eboard/eboard.example.toml 0644 root:root
    if [ ! -e "$R/etc/eboard/eboard.toml" ]; then
        say "creating /etc/eboard/eboard.toml from the example: edit board.id, source.url, source.trusted_keys"
        put "$HERE/kiosk_config/eboard.example.toml" /etc/eboard/eboard.toml 0640 root:eboard
    fi
}

# The nightly restart time from the config files (last one wins), or "".
restart_at() {
    "$PYTHON" - "$R/etc/eboard" <<'PY'
import sys, tomllib, pathlib
etc = pathlib.Path(sys.argv[1])
value = ""
for f in [etc / "eboard.toml", *sorted((etc / "conf.d").glob("*.toml"))]:
    try:
        data = tomllib.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        continue
    m = data.get("maintenance")
    if isinstance(m, dict) and isinstance(m.get("restart_at"), str):
        value = m["restart_at"]
print(value)
PY
}

TIMER=disable
config_timer() {
    local at dropin tz
    at="$(restart_at)"
    dropin="/etc/systemd/system/eboard-restart.timer.d/10-restart-at.conf"
    if [ -n "$at" ] && [[ "$at" =~ ^([01][0-9]|2[0-3]):[0-5][0-9]$ ]]; then
        tz="$("$PYTHON" - "$R/etc/eboard" <<'PY'
import sys, tomllib, pathlib
etc = pathlib.Path(sys.argv[1]); tz = "Asia/Ho_Chi_Minh"
for f in [etc / "eboard.toml", *sorted((etc / "conf.d").glob("*.toml"))]:
    try:
        tz = tomllib.loads(f.read_text(encoding="utf-8")).get("timezone", tz)
    except (OSError, ValueError):
        pass
print(tz)
PY
)"
        local tmp
        tmp="$(mktemp)"
        printf '# Written by install-kiosk.sh from maintenance.restart_at; re-run it after a change.\n[Timer]\nOnCalendar=\nOnCalendar=*-*-* %s:00 %s\n' "$at" "$tz" > "$tmp"
        put "$tmp" "$dropin" 0644 root:root
        rm -f "$tmp"
        TIMER=enable
    else
        [ -n "$at" ] && echo "install-kiosk: maintenance.restart_at='$at' is not HH:MM; no nightly restart" >&2
        if [ -e "$R$dropin" ]; then
            rm -f "$R$dropin"
            rmdir "$(dirname "$R$dropin")" 2>/dev/null || true
            CHANGED=1
        fi
        TIMER=disable
    fi
}

systemctl_() {
    if [ -n "$R" ]; then systemctl --root="$R" --quiet "$@"; else systemctl --quiet "$@"; fi
}

enable_units() {
    config_timer
    local timer="$TIMER"
    systemd_running && systemctl daemon-reload
    # shellcheck disable=SC2086
    systemctl_ enable $ENABLE
    if [ "$timer" = enable ]; then
        systemctl_ enable eboard-restart.timer
    else
        systemctl_ disable eboard-restart.timer 2>/dev/null || true
    fi
    if [ "$START" = 1 ] && systemd_running; then
        if [ "$CHANGED" = 1 ]; then
            say "(re)starting the eboard units"
            # shellcheck disable=SC2086
            systemctl restart $ENABLE
        else
            # shellcheck disable=SC2086
            systemctl start $ENABLE
        fi
        [ "$timer" = enable ] && systemctl start eboard-restart.timer
    fi
    if [ -z "$R" ] && systemctl is-enabled --quiet display-manager.service 2>/dev/null; then
        say "WARNING: a desktop display manager is enabled and will fight eboard-x11 for the screen;"
        say "         disable it: systemctl disable display-manager.service && systemctl set-default multi-user.target"
    fi
}

do_install() {
    [ -n "$R" ] || [ "$(id -u)" = 0 ] || die "run as root: sudo make install-kiosk"
    if [ -z "$R" ] && [ -r /etc/os-release ]; then
        # shellcheck disable=SC1091
        . /etc/os-release
        case "${ID:-}-${VERSION_ID:-}" in
            debian-12|ubuntu-24.04) ;;
            *) say "WARNING: tested on Debian 12 and Ubuntu 24.04, this is ${PRETTY_NAME:-unknown}" ;;
        esac
    fi
    install_packages
    install_source
    install_system
    install_venv
    link_command
    enable_units
    say "done. Next: edit /etc/eboard/eboard.toml, put the token in /etc/eboard/token"
    say "(chown eboard:eboard, chmod 600), then run: sudo eboard doctor"
}

do_uninstall() {
    [ -n "$R" ] || [ "$(id -u)" = 0 ] || die "run as root: sudo make uninstall-kiosk"
    local u
    if systemd_running; then
        # shellcheck disable=SC2086
        systemctl stop eboard-restart.timer $ENABLE 2>/dev/null || true
    fi
    # shellcheck disable=SC2086
    systemctl_ disable eboard-restart.timer $ENABLE 2>/dev/null || true
    for u in $UNITS; do rm -f "$R/etc/systemd/system/$u"; done
    rm -rf "$R/etc/systemd/system/eboard-restart.timer.d"
    systemd_running && systemctl daemon-reload
    rm -rf "${R:?}$OPT"
    if [ "$(readlink "$R/usr/local/bin/eboard" 2>/dev/null)" = "$OPT/venv/bin/eboard" ]; then
        rm -f "$R/usr/local/bin/eboard"
    fi
    rm -f "$R/etc/tmpfiles.d/eboard.conf" "$R/etc/sysusers.d/eboard.conf" \
        "$R/etc/polkit-1/rules.d/50-eboard.rules" \
        "$R/etc/eboard/eboard.example.toml"
    if [ "$PURGE" = 1 ]; then
        say "purging config /etc/eboard, content /var/lib/eboard and the eboard user"
        rm -rf "$R/etc/eboard" "$R/var/lib/eboard"
        if [ -n "$R" ]; then
            userdel --root "$R" eboard 2>/dev/null || true
            groupdel --root "$R" eboard 2>/dev/null || true
        else
            userdel eboard 2>/dev/null || true
            groupdel eboard 2>/dev/null || true
        fi
    else
        say "kept /etc/eboard (config), /var/lib/eboard (content) and the eboard user;"
        say "remove them too with: sudo scripts/install-kiosk.sh --uninstall --purge"
    fi
    say "eboard removed"
}

if [ "$MODE" = uninstall ]; then do_uninstall; else do_install; fi
