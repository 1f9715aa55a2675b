# One entry point for every task. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test fuzz install browser fonts migrate demo lint fmt revision bench clean i18n

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/offertrack migrate

# The demo's links, and the QR codes in the PDFs it serves, point at the server `make run`
# starts, on whatever HOST and PORT it is given (unless OFFERTRACK_PUBLIC_BASE_URL says otherwise).
demo run: export OFFERTRACK_PUBLIC_BASE_URL ?= http://$(HOST):$(PORT)

demo: migrate fonts
	$(BIN)/offertrack demo

run: demo
	@echo
	@echo "OfferTrack is starting at http://$(HOST):$(PORT)"
	@echo "  Track a code:       http://$(HOST):$(PORT)/  (or open a demo link above)"
	@echo "  API documentation:  http://$(HOST):$(PORT)/docs"
	@echo "  Staff admin:        http://$(HOST):$(PORT)/admin/"
	@echo "  Campaign dashboard: http://$(HOST):$(PORT)/admin/analytics/  (a demo trade fair campaign: a month of scans)"
	@echo "  Your first login:   $(BIN)/offertrack create-user you@example.com --role admin   (in another terminal; asks for a password)"
	@echo "  An API key for it:  $(BIN)/offertrack create-api-key my-laptop   (in another terminal)"
	@echo "Stop it with Ctrl+C."
	@echo
	$(BIN)/offertrack serve --host $(HOST) --port $(PORT)

test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The schema fuzzer with many more examples than make test runs (12 per operation there).
FUZZ_EXAMPLES ?= 1000
fuzz: install
	OFFERTRACK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest tests/api $(PYTEST_ARGS)

# Debian packages the suite needs: chromium for the browser tests (Playwright cannot download
# browsers here), Pango, which WeasyPrint cannot render without (a minimal Debian lacks it),
# HarfBuzz's subset library, which WeasyPrint warns about (and the suite turns warnings into
# errors) when it is missing, the Noto fonts the PDF prints Latin, Greek, Cyrillic, Arabic and
# CJK names with (without them: empty boxes), and pg_dump and pg_restore for the backup tests.
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-core fonts-noto-cjk
SYSTEM_PACKAGES := chromium postgresql-client $(PDF_PACKAGES)
browser: PACKAGES = $(SYSTEM_PACKAGES)
fonts: PACKAGES = $(PDF_PACKAGES)
browser fonts:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing $$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Missing Debian packages: $$missing (sudo apt-get install $$missing)"; \
	  fi; fi

# Message catalogs: extract the marked strings of the customer's pages, the PDF and the mails
# (babel.cfg), merge them into each language's .po (translate the new ones there), compile the
# .mo files the app reads. Both are committed, so a fresh checkout runs without this step.
LOCALE_DIR := app/locale
i18n: install
	$(BIN)/pybabel extract -F babel.cfg -k translate:2 -k translate_plural:2,3 \
	  --no-location --sort-output --project OfferTrack -o $(LOCALE_DIR)/messages.pot .
	for lang in de el; do \
	  if [ -f $(LOCALE_DIR)/$$lang/LC_MESSAGES/messages.po ]; then \
	    $(BIN)/pybabel update --no-fuzzy-matching -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -l $$lang; \
	  else \
	    $(BIN)/pybabel init -i $(LOCALE_DIR)/messages.pot -d $(LOCALE_DIR) -l $$lang; \
	  fi; done
	$(BIN)/pybabel compile --statistics -d $(LOCALE_DIR)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app tests bench
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

revision: install
	$(BIN)/alembic revision --autogenerate -m "$(or $(m),change)"

bench: install
	$(BIN)/python bench/pdf.py
	command -v wrk >/dev/null 2>&1 || apt-get install -y -qq wrk >/dev/null
	$(BIN)/python bench/tracking.py
	$(BIN)/python bench/burst.py
	$(BIN)/python bench/analytics.py
	$(BIN)/python bench/feed.py
	$(BIN)/python bench/export_memory.py
	command -v haproxy >/dev/null 2>&1 || apt-get install -y -qq haproxy >/dev/null
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/notify.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
