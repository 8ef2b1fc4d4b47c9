# Two commands on a fresh machine with Python 3.11+ and make:
#   make dev    installs everything and starts the embedded stack
#   make test   installs everything and runs the whole test suite
#
# uv is installed into a private tools venv, so nothing has to be installed by
# hand; the project's own venv is .venv, pinned by uv.lock.

PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
RUN := $(UV) run --frozen

.PHONY: dev test test-full lint typecheck fmt install record-histories screenshots chromium clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==0.13.9"

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode
	@touch $@

install: $(VENV)/.installed

dev: install
	$(RUN) ordersaga dev

# The browser tests drive Debian's Chromium (Playwright cannot download its
# own build here); installed when missing: as root, or through sudo. A
# preinstalled Google Chrome (hosted CI runners) is used as it is.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || command -v google-chrome >/dev/null \
		|| ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# The whole suite: lint, types, then tests (fast cases; see test-full).
test: install lint typecheck chromium
	$(RUN) pytest -q

# The shop's screenshots in the README, taken by the browser tests.
screenshots: install chromium
	ORDERSAGA_SCREENSHOTS=docs/screenshots $(RUN) pytest -q tests/api/test_shop_browser.py tests/api/console/test_console_browser.py tests/api/console/test_console_products_browser.py

# The longer matrices (marked slow) on top of the fast suite.
test-full: install chromium
	$(RUN) pytest -q --run-slow

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) lint-imports

typecheck: install
	$(RUN) mypy

fmt: install
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

# Re-record the replay corpus in tests/workflows/histories/ from the current workflow.
record-histories: install
	$(RUN) python -m tests.workflows.record_histories

clean:
	rm -rf $(TOOLS) $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache
