# Two commands do all the set-up (README): `make demo` runs the main job, `make test` runs the tests.
# Both create .venv and install vst with pinned versions (constraints.txt) when needed.
PYTHON ?= python3
VENV ?= .venv
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-all install benchmark clean

$(INSTALLED): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(VENV)/bin/python -c "from vst.scene.render import create_context; create_context().release()"
	touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(VENV)/bin/vst demo

test: $(INSTALLED)
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest

test-all: $(INSTALLED)
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -m ""

benchmark: $(INSTALLED)
	$(VENV)/bin/python benchmarks/render.py

clean:
	rm -rf $(VENV) runs .pytest_cache
