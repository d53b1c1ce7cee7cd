PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint test-windows fuzz install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tonghop demo

test: lint
	$(BIN)/python -m pytest -q

# The linter and the type checker, over the package.
lint: $(STAMP)
	$(BIN)/ruff check pipeline
	$(BIN)/mypy

# The suite again as Windows would run it (tests/windows/sitecustomize.py: spawn only, no resource or
# fcntl, selectors on sockets only, ctypes.CDLL(None) raising, a cp1252 console), then the sample inbox
# and the test corpora consolidated both ways, compared.
test-windows: $(STAMP)
	TONGHOP_SIMULATE_WINDOWS=1 PYTHONPATH=tests/windows PYTHONIOENCODING=cp1252 PYTHONWARNDEFAULTENCODING=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider --tb=short
	$(BIN)/python scripts/windows_check.py

# Property tests with fresh random examples, several rounds; the suite itself always draws the same ones.
ROUNDS ?= 5
fuzz: $(STAMP)
	for round in $$(seq $(ROUNDS)); do \
		TONGHOP_HYPOTHESIS=explore $(BIN)/python -m pytest -q -p no:cacheprovider $$(grep -l '@given' tests/*.py) || exit 1; \
	done

clean:
	rm -rf $(VENV) outbox/*/ build *.egg-info
