# The two commands a newcomer needs; both install everything first (idempotent).
VENV ?= .venv
OUT ?= demo_out

.PHONY: install demo test test-fast bench clean

install:
	./scripts/install.sh

demo: install
	$(VENV)/bin/sonorad demo --out $(OUT)

test: install
	$(VENV)/bin/python -m pytest -q

test-fast: install
	$(VENV)/bin/python -m pytest -q -m "not slow and not data"

clean:
	rm -rf $(OUT) .pytest_cache
