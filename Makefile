# Two entry points (see README): `make demo` and `make test`. Both install what they need first.
PYTHON ?= python
DATA ?= ./data
OUTPUT ?= ./output
export DATA OUTPUT

.PHONY: install install-dev demo test lint scripts

install:
	$(PYTHON) -m pip install -q -r requirements.txt

install-dev: install
	$(PYTHON) -m pip install -q -r requirements-dev.txt

# Base-to-new on the embedded demo (no downloads), seed 1, then the results table.
demo: install
	bash scripts/zsclip/base2new.sh demo 1
	bash scripts/coop/base2new_train.sh demo 1
	bash scripts/coop/base2new_test.sh demo 1
	bash scripts/cocoop/base2new_train.sh demo 1
	bash scripts/cocoop/base2new_test.sh demo 1
	bash scripts/kgcoop/base2new_train.sh demo 1
	bash scripts/kgcoop/base2new_test.sh demo 1
	bash scripts/sep/base2new_train.sh demo 1
	bash scripts/sep/base2new_test.sh demo 1
	$(PYTHON) parse_test_res.py $(OUTPUT)/base2new

test: install-dev
	$(PYTHON) -m pytest

lint: install-dev
	$(PYTHON) -m ruff check .

scripts:
	$(PYTHON) scripts/generate.py
