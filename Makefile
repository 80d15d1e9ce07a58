# OnAir — `make run` starts the station on this machine, `make test` runs the suite.
# Both install what they need: uv (from PyPI), the Debian packages (as root; otherwise
# they print the apt command and stop) and the locked Python environment.

SHELL := /bin/bash
.DEFAULT_GOAL := help

RUN_APT  := libvlc5 vlc-plugin-base
TEST_APT := $(RUN_APT) postgresql chromium icecast2
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
export UV_PYTHON := 3.11
export DEBIAN_FRONTEND := noninteractive

.PHONY: help run test lint messages bench uv env system-run system-test

help:
	@echo "make run    start every OnAir process on this machine (embedded default)"
	@echo "make test   run the test suite on a private PostgreSQL and Redis"
	@echo "make lint   ruff"

uv:
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

# apt-install the named Debian packages that are missing (root), or say how to.
define apt_ensure
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "OnAir needs these Debian packages:$$missing"; \
	    echo "Run: sudo apt-get install --no-install-recommends$$missing"; exit 1; \
	  fi; \
	fi
endef

system-run:
	$(call apt_ensure,$(RUN_APT))

system-test:
	$(call apt_ensure,$(TEST_APT))

env: uv
	@$(UV) sync --frozen --quiet

run: system-run env
	$(UV) run --frozen python manage.py run_station

test: system-test env
	$(UV) run --frozen pytest

lint: env
	$(UV) run --frozen ruff check .

messages: env
	$(UV) run --frozen python manage.py makemessages -l he --ignore=.venv --ignore=tests --ignore=bench
	$(UV) run --frozen python manage.py compilemessages --ignore=.venv
