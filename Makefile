# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DEMO := runs/demo

.PHONY: install test demo model-garden test-model-garden benchmark clean

install: $(INSTALLED)

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -e .
	touch $@

test: $(INSTALLED)
	$(PY) -m pytest tests

demo: $(INSTALLED)
	$(PY) scripts/make_demo_data.py --out $(DEMO)/data --num 64 --size 160 240
	$(PY) scripts/inspect_views.py --config configs/demo.py --config.data.path=$(DEMO)/data/images --out $(DEMO)/views.png

# Optional extra: TF Model Garden (Keras 2, pins TF 2.20) beside TF 2.21, for the Model Garden exporter test.
model-garden: $(INSTALLED)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-model-garden.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps tf-models-official==2.20.0 tf-keras==2.21.0 tensorflow-hub

test-model-garden: model-garden
	$(PY) -m pytest tests/export

benchmark: $(INSTALLED)
	$(PY) scripts/benchmark.py --what input

clean:
	rm -rf $(VENV) runs
