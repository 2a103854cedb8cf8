# The two commands a newcomer needs: `make book` and `make test`.
# Only Python 3.11+, pip and make are assumed; everything else is installed into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: book lab test venv info normalise clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[all,test,book]"
	touch $@

# Executes the chapters, then builds the site _build/html/ (book/) and prints its index.html.
book: venv
	$(BIN)/python -m kdl run   # backend: $$KERAS_BACKEND, else kdl's default (README)

test: venv
	$(BIN)/python tools/run_tests.py

# JupyterLab on the chapters for reading and changing them (`kdl lab`): backend from $KERAS_BACKEND,
# else kdl's default (as for `make book`), and the kernel environment `kdl run` gives its kernels.
lab: venv
	$(BIN)/python -m kdl lab $(LAB_ARGS)

info: venv
	$(BIN)/python -m kdl info

normalise: venv
	$(BIN)/python tools/normalise_notebooks.py chapters/*.ipynb

clean:
	rm -rf _build
