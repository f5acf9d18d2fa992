# Mawid: `make run` and `make test` are the two commands of the README.
# Everything lives in .venv; nothing outside the project is installed.

PYTHON ?= $(shell command -v python3 2>/dev/null || command -v python 2>/dev/null)
VENV := .venv
BIN := $(VENV)/bin
# The stamp makes the install re-run only when pyproject.toml changes.
STAMP := $(VENV)/.installed
LOCALE_DIR := service/locale
POT := $(LOCALE_DIR)/messages.pot
# Catalogs to maintain; English is the source language (the msgids).
LANGUAGES := ar fr es zgh

.PHONY: venv install run test browser-deps lint mutate bench i18n-extract i18n-update i18n-compile compile-translations clean

venv install: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "python3 not found; Python >= 3.11 is required" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "$(PYTHON) is older than 3.11; set PYTHON=/path/to/python3.11+" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
	  { rm -rf $(VENV); echo "'$(PYTHON) -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP) compile-translations
	$(BIN)/mawid dev

test: $(STAMP) compile-translations browser-deps
	$(BIN)/pytest -q

# axe-core for the accessibility checks of the browser tests (npm, no network
# at test time). Without npm the browser tests skip, except under CI.
browser-deps:
	@if [ ! -f tests/browser/node_modules/axe-core/axe.min.js ] && command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

# Mutation testing (tests/mutate.py): slow, so not part of `make test`.
# MUTATE_CHILDREN=n runs n mutants at a time (default: one per core);
# MUTANTS='pattern ...' tries only those mutants again, after a full run.
mutate: $(STAMP) compile-translations
	$(BIN)/python -m tests.mutate $(MUTANTS)

# Each bench script measures its own baseline in the same run and prints ratios.
bench: $(STAMP) compile-translations
	@set -e; for script in bench/*.py; do \
	  [ -e "$$script" ] || continue; \
	  case "$${script##*/}" in _*) continue;; esac; \
	  echo "== $$script"; $(BIN)/python "$$script"; \
	done

# Compiling is a no-op until the first catalogs exist.
compile-translations: $(STAMP)
	@if ls $(LOCALE_DIR)/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
	  $(BIN)/pybabel compile -d $(LOCALE_DIR) -D messages; \
	fi

i18n-extract: $(STAMP)
	@mkdir -p $(LOCALE_DIR)
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k Nn_:1,2 --sort-output --no-wrap --add-location=file \
	  --project=mawid -o $(POT) .

# Update existing catalogs from the template; create the missing ones.
i18n-update: i18n-extract
	@set -e; for lang in $(LANGUAGES); do \
	  if [ -f $(LOCALE_DIR)/$$lang/LC_MESSAGES/messages.po ]; then \
	    $(BIN)/pybabel update --no-wrap -i $(POT) -d $(LOCALE_DIR) -D messages -l $$lang; \
	  else \
	    $(BIN)/pybabel init --no-wrap -i $(POT) -d $(LOCALE_DIR) -D messages -l $$lang; \
	  fi; \
	done

i18n-compile: compile-translations

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
