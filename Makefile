# Set-up and entry points. `make test` and `make demo` work on a fresh clone: they create the
# virtual environment .venv and install the package (editable) with its pinned dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo clean

install: $(STAMP)

# Re-installs only when pyproject.toml changed (or the venv is new).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/omm-symbreak demo

clean:
	rm -rf $(VENV) build *.egg-info
