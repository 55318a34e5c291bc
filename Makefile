# Set-up and entry points. `make test` and `make demo` work on a fresh clone: they create the
# virtual environment .venv and install the package (editable) with its pinned dependencies.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test smoke demo clean

install: $(STAMP)

# Re-installs only when pyproject.toml changed (or the venv is new).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

# The analysis scripts at smoke-test lengths (about 20 minutes on 2 cores): they run end to end
# and write analysis/results/*_quick.{json,png} (not committed); gas_anisotropy.py runs nothing
# (it reads the committed archive in seconds) and rewrites its committed results, unchanged.
smoke: install
	for script in fig1_gas_phase fig2_liquid_structure fig3_liquid_dynamics fig4_ice mts_stride \
		group_grids; do \
		$(BIN)/python analysis/$$script.py --quick || exit 1; done
	$(BIN)/python analysis/gas_anisotropy.py > /dev/null

demo: install
	$(BIN)/omm-symbreak demo

clean:
	rm -rf $(VENV) build *.egg-info
