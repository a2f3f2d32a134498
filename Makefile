# eboard — the two front doors are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DURATION ?= 0
FUZZ_TIME ?= 60
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian/Ubuntu packages the box and the tests need: libVLC with its video outputs,
# Xvfb and the xcb libraries Qt needs, fonts with every Vietnamese letter, ffmpeg
# for test media, nginx for the "any web server" test, chromium for the status page,
# gcc to build the clock-step shim (tests/native/clockshift.c), postgresql: the
# server's tests start a throwaway cluster from it (tests/kit/postgres.py; the package's
# own "main" cluster is not used).
DEB_PACKAGES := vlc-bin vlc-plugin-base vlc-plugin-video-output libvlc5 \
	xvfb xauth x11-utils x11-xserver-utils ffmpeg fonts-noto-core fonts-dejavu-core \
	libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
	libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 \
	libegl1 libgl1 libfontconfig1 libdbus-1-3 nginx-light curl wget \
	python3-venv chromium gcc libc6-dev postgresql

.PHONY: setup deb-packages venv demo test soak bench fuzz lint clean install-kiosk uninstall-kiosk

setup: deb-packages venv

deb-packages:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

demo: setup
	$(VENV)/bin/eboard demo --duration $(DURATION)

test: setup
	$(PY) -m pytest -q

soak: setup
	$(PY) -m pytest -q -m soak

bench: setup
	$(PY) -m bench

# Coverage-guided fuzzing (atheris) of the manifest path, the config loader and the CAP
# reader, FUZZ_TIME seconds each; the corpus grows in fuzz/corpus/, a failing input is
# written to fuzz/artifacts/, each run's whole output to fuzz/artifacts/NAME.log (see
# fuzz/_harness.py; docs/RELIABILITY.md, Hostile input).
fuzz: setup
	@mkdir -p fuzz/artifacts; status=0; for h in manifest config cap; do \
	  echo "== fuzz/fuzz_$$h.py for $(FUZZ_TIME) s"; \
	  if $(PY) fuzz/fuzz_$$h.py -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	      > fuzz/artifacts/$$h.log 2>&1; then \
	    grep -E '^#[0-9]+[[:space:]]+DONE|^Done |^stat::(number_of_executed_units|peak_rss_mb)' \
	      fuzz/artifacts/$$h.log; \
	  else \
	    tail -n 60 fuzz/artifacts/$$h.log; echo "== fuzz/fuzz_$$h.py FAILED"; status=1; \
	  fi; \
	done; exit $$status

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy eboard player content_sync kiosk_config fuzz
	scripts/check-commits.sh

clean:
	rm -rf $(VENV) demo-output build *.egg-info

# The box: install eboard as a kiosk (units, user, directories, /opt/eboard venv).
# DESTDIR=/some/root installs into a test root (no apt, nothing started).
# uninstall-kiosk keeps /etc/eboard and /var/lib/eboard; PURGE=1 removes them too.
install-kiosk:
	$(SUDO) scripts/install-kiosk.sh $(if $(DESTDIR),--destdir $(DESTDIR))

uninstall-kiosk:
	$(SUDO) scripts/install-kiosk.sh --uninstall $(if $(DESTDIR),--destdir $(DESTDIR)) $(if $(filter 1,$(PURGE)),--purge)
