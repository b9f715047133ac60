# dfstream: `make demo` and `make test` work from nothing (they create .venv).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := .cache/demo

.PHONY: install chromium test test-fast demo bench audit clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "dfstream needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned (the CPU build); then the project, whose torch range 2.13 satisfies.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium, which the HTML report test opens reports in (tests/browser.py); root or sudo.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: install chromium
	$(BIN)/python -m pytest -q

test-fast: install chromium
	$(BIN)/python -m pytest -q -m "not slow"

demo: install
	@test -f $(DEMO)/data/metadata.json || $(BIN)/dfstream toyset --out $(DEMO)/data --files 96
	@test -f $(DEMO)/model/dfstream.json || $(BIN)/dfstream train --meta $(DEMO)/data/metadata.json \
		--root $(DEMO)/data --out $(DEMO)/model \
		--data-description "SYNTHETIC toy signals from dfstream toyset (formant tones, not speech)"
	@test -f $(DEMO)/index/dfstream.index.json || $(BIN)/dfstream index build $(DEMO)/index \
		--meta $(DEMO)/data/metadata.json --root $(DEMO)/data --model $(DEMO)/model
	$(BIN)/dfstream replay $(DEMO)/data/test --root $(DEMO)/data --model $(DEMO)/model \
		--index $(DEMO)/index --out $(DEMO)/out
	$(BIN)/dfstream eval --pred $(DEMO)/out/predictions.json --scores $(DEMO)/out/scores.csv \
		--verdicts $(DEMO)/out/verdicts.jsonl --index $(DEMO)/index \
		--meta $(DEMO)/data/metadata.json --split test --out $(DEMO)/out/metrics.json

bench: install
	$(BIN)/python bench/replay_speed.py
	$(BIN)/python bench/attribution.py

# Known vulnerabilities of every package installed in .venv (pip-audit, from its own venv so that .venv stays
# as installed; asks PyPI's vulnerability data, so it needs PyPI). Exit 1 when any is found.
AUDIT := .cache/audit
audit: install
	@test -x $(AUDIT)/bin/pip-audit || { $(PYTHON) -m venv $(AUDIT) && $(AUDIT)/bin/pip install --quiet "pip-audit>=2.7"; }
	$(BIN)/pip freeze --exclude-editable > $(AUDIT)/requirements.txt
	$(AUDIT)/bin/pip-audit --requirement $(AUDIT)/requirements.txt --no-deps --disable-pip \
		--format json --output $(AUDIT)/report.json
	@$(BIN)/python -c 'import json, sys; d = json.load(open("$(AUDIT)/report.json"))["dependencies"]; \
		skipped = [x["name"] for x in d if "skip_reason" in x]; \
		print(len(d) - len(skipped), "of", len(d), "packages audited,", \
		      sum(len(x.get("vulns", [])) for x in d), "known vulnerabilities"); \
		skipped and sys.exit(f"not audited (no vulnerability data reachable for them): {len(skipped)}")'

clean:
	rm -rf $(VENV) .cache .pytest_cache dfstream-out
