# One entry point for every task. `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install migrate demo lint fmt typecheck revision bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/offertrack migrate

demo: migrate
	$(BIN)/offertrack demo

run: demo
	@echo
	@echo "OfferTrack is starting at http://$(HOST):$(PORT)"
	@echo "  API documentation:  http://$(HOST):$(PORT)/docs"
	@echo "  An API key for it:  $(BIN)/offertrack create-api-key my-laptop"
	@echo "  Demo offers:        curl -H 'Authorization: Bearer <key>' http://$(HOST):$(PORT)/api/v1/offers"
	@echo "Stop it with Ctrl+C."
	@echo
	$(BIN)/offertrack serve --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

revision: install
	$(BIN)/alembic revision --autogenerate -m "$(or $(m),change)"

bench: install
	$(BIN)/python bench/pdf.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
