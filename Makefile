PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test fuzz install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tonghop demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Property tests with fresh random examples, several rounds; the suite itself always draws the same ones.
ROUNDS ?= 5
fuzz: $(STAMP)
	for round in $$(seq $(ROUNDS)); do \
		TONGHOP_HYPOTHESIS=explore $(BIN)/python -m pytest -q -p no:cacheprovider $$(grep -l '@given' tests/*.py) || exit 1; \
	done

clean:
	rm -rf $(VENV) outbox/*/ build *.egg-info
