# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
# Which TensorFlow build the venv holds: cpu (tensorflow-cpu, or tensorflow where tensorflow-cpu
# has no wheel) or gpu (tensorflow[and-cuda]); pyproject's extras of the same names.
TF ?= cpu
INSTALLED := $(VENV)/.installed-$(TF)
MODEL_GARDEN := $(VENV)/.model-garden
TORCH := $(VENV)/.torch-reference
WAYMO_V2 := $(VENV)/.waymo-v2
TFDS := $(VENV)/.tfds
PROFILE := $(VENV)/.profile
DEMO := runs/demo

.PHONY: install install-gpu test demo model-garden test-model-garden torch-reference \
	test-torch-reference waymo-v2 tfds profile bench-deps benchmark clean

install: $(INSTALLED)

install-gpu:
	$(MAKE) install TF=gpu

# Switching builds removes the other one first: two TensorFlows in one venv overwrite each other.
$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if ls $(VENV)/.installed-* 2>/dev/null | grep -qvx '$(INSTALLED)'; then \
	  $(PY) -m pip uninstall -q -y tensorflow tensorflow-cpu; rm -f $(VENV)/.installed-*; fi
	$(PIP) -e '.[$(TF),dev]'
	touch $@

# Two lanes: every test in float32, then the model and training runs again in mixed_bfloat16
# (native on CPUs with AVX512-BF16 or AMX, emulated elsewhere), so any host checks both paths.
test: $(INSTALLED)
	$(PY) -m pytest -n 2 --dist loadfile tests
	MULTISIAM_TEST_PRECISION=mixed_bfloat16 $(PY) -m pytest -n 2 --dist loadfile tests/models tests/train

# Synthetic scenes -> BYOL and MultiSiam pretraining -> fine-tuning and dense probe of both and of
# a random init (scripts/study.py) -> SavedModel -> clusters.
DEMO_RUN := $(DEMO)/table1/multisiam/seed0
demo: $(INSTALLED)
	$(PY) scripts/make_demo_data.py --out $(DEMO)/data --num 256 --size 160 240
	$(PY) scripts/make_demo_data.py --out $(DEMO)/heldout --num 48 --size 160 240 --seed 1000
	$(PY) scripts/inspect_views.py --config configs/demo.py --out $(DEMO)/views.png --num 4
	$(PY) scripts/study.py --rows table1/byol,table1/multisiam --scale demo --seeds 0 --out $(DEMO) \
	    --eval_train $(DEMO)/data --eval_val $(DEMO)/heldout --num_classes 9 --eval_size 96 144 \
	    --finetune_steps 300
	$(PY) scripts/export.py --workdir $(DEMO_RUN) --format saved_model --out saved_models/demo --overwrite
	$(PY) scripts/visualize.py --workdir $(DEMO_RUN) --images $(DEMO)/heldout/images --num 6 \
	    --size 160 240 --out $(DEMO)/clusters.png
	@echo "demo outputs: $(DEMO)/views.png $(DEMO)/study.md $(DEMO)/study.png $(DEMO)/clusters.png saved_models/demo/"

# Optional extra: TF Model Garden (Keras 2, pins TF 2.20) beside TF 2.21, for its exporter tests.
# --no-deps: tf-models-official pins tensorflow~=2.20 and tf-keras pulls `tensorflow`.
model-garden: $(MODEL_GARDEN)

$(MODEL_GARDEN): $(INSTALLED) pyproject.toml
	$(PIP) -e '.[$(TF),model-garden]'
	$(PIP) --no-deps tf-models-official==2.20.0 tf-keras==2.21.0 tensorflow-hub==0.16.1
	touch $@

test-model-garden: $(MODEL_GARDEN)
	$(PY) -m pytest tests/export

# Optional extra: PyTorch (CPU) for the peer reference, multisiam_tf/reference/ and
# scripts/compare_reference.py; the core never imports it.
torch-reference: $(TORCH)

$(TORCH): $(INSTALLED) pyproject.toml
	$(PIP) -e '.[$(TF),bench]'
	touch $@

test-torch-reference: $(TORCH)
	$(PY) -m pytest -n 0 tests/reference

# Optional extras of two data formats: pyarrow (waymo_v2 parquet files), tensorflow-datasets (tfds).
waymo-v2: $(WAYMO_V2)

$(WAYMO_V2): $(INSTALLED) pyproject.toml
	$(PIP) -e '.[$(TF),waymo-v2]'
	touch $@

tfds: $(TFDS)

$(TFDS): $(INSTALLED) pyproject.toml
	$(PIP) -e '.[$(TF),tfds]'
	touch $@

# Optional extra: TensorBoard's Profile tab, which shows `scripts/pretrain.py --profile_steps` traces.
profile: $(PROFILE)

$(PROFILE): $(INSTALLED) pyproject.toml
	$(PIP) -e '.[$(TF),profile]'
	touch $@

# docs/BENCHMARKS.md: the training step (beside PyTorch's, with bench-deps) and the input pipeline.
bench-deps: torch-reference

benchmark: $(INSTALLED)
	$(PY) scripts/benchmark.py --what all --json runs/benchmark.json

clean:
	rm -rf $(VENV) runs
