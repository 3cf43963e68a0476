# Two commands for a newcomer: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
PYTEST_WORKERS ?= 2

.PHONY: install demo test lint bench browser postgres clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bounceback demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -n $(PYTEST_WORKERS) --durations=15

# Every bench in bench/ once, at quick, bounded sizes (a few minutes in all on a 2-core machine):
# a smoke run that each still measures against its baseline and ends with `ratio=`. The README's
# Speed table names the larger arguments behind its figures. scale.py needs PostgreSQL's server
# binaries (`make postgres`) and says so instead when they are absent; esp_smtp.py runs maildev
# and smtp-sink when installed (README, Speed).
bench: $(STAMP)
	$(BIN)/python bench/adversarial.py --rounds 2
	$(BIN)/python bench/dkim_sign.py --rounds 3 --messages 20
	$(BIN)/python bench/end_to_end.py --rounds 1 --messages 1000
	$(BIN)/python bench/esp_auth.py --rounds 3 --messages 50
	$(BIN)/python bench/esp_smtp.py --rounds 1 --messages 1000
	$(BIN)/python bench/reads.py --sizes 1000,10000 --reads 10
	$(BIN)/python bench/receiver.py --rounds 1 --burst 10 --flood 40
	$(BIN)/python bench/reply_check.py --rounds 3
	$(BIN)/python bench/scale.py --rounds 1 --seconds 5 --users 2 --skip-without-postgres
	$(BIN)/python bench/sender.py --rounds 2 --messages 500

# Optional: Debian's headless Chromium, for the test that opens a certification report in a browser
# (skipped, with its reason, when Chromium is absent). Needs root and Debian's package archive.
browser:
	command -v chromium >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

# Optional: Debian's PostgreSQL server binaries, for the tests that run the receiver on PostgreSQL
# (each starts a throwaway cluster of its own; skipped, with the reason, when no server is
# installed). Needs root and Debian's package archive. The service it installs is not used.
postgres:
	command -v pg_ctl >/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis *.egg-info
