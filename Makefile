# The course's commands. Each sets up .venv first (pinned packages, kernel) if it is missing
# or requirements.txt changed. Override the interpreter with `make PYTHON=python3.11 ...`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUTPUT := output
TEST_WORKERS ?= 2
export PYTHONDONTWRITEBYTECODE := 1
# Idle OpenMP threads sleep instead of spinning: on a shared CPU, spinning made training up to 10x slower.
export OMP_WAIT_POLICY ?= PASSIVE
# nbgrader runs `alembic` and Jupyter finds kernels through PATH.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup release student demo test test-browser lab hub calibrate bench clean help

help:
	@echo "make setup     install the pinned environment in $(VENV) and register its kernel"
	@echo "make demo      run the instructor notebooks headless into $(OUTPUT)/ (make release first after editing source/)"
	@echo "make test      run the whole test suite (unit tests, nbval, release sync, autograding)"
	@echo "make release   regenerate release/ (students) and notebooks/ (instructors) from source/"
	@echo "make student   build what students get, without anything secret: build/student/ and build/student.zip"
	@echo "make lab       start JupyterLab on the course"
	@echo "make hub       (as root) set up and start JupyterHub for a class on this machine: README, 'Running a class on JupyterHub'"
	@echo "make calibrate rerun the grading-threshold calibrations (autograder/calibration/)"
	@echo "make bench     time the course's training against the lesson plan's recipe (benchmarks/)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@# The oldest Python is pyproject.toml's requires-python, read here so that it is said once.
	@$(PYTHON) -c 'import re, sys; need = tuple(map(int, re.search(r"requires-python = \">=(\d+)\.(\d+)", open("pyproject.toml").read()).groups())); sys.exit(0 if sys.version_info[:2] >= need else "Python %d.%d+ needed, found %s" % (*need, sys.version.split()[0]))' \
		|| { echo "Set PYTHON to a newer interpreter: make PYTHON=/path/to/python3.11 setup"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	# The kernel "python3" inside the venv runs the venv's Python, so notebooks find the pins.
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (deepnets course)"
	$(BIN)/python tools/build_course.py --sources-only
	touch $(STAMP)

release: setup
	$(BIN)/python tools/build_course.py

# The student distribution: release notebooks, the VGG demo, the deepnets wheel, pinned requirements.
student: setup
	$(BIN)/python tools/build_student.py

# The committed instructor notebooks (tests prove them in sync with source/; after editing
# source/ or demos/, `make release` first). DEMO_ARGS="--record benchmarks/results/demo_timings.json"
# also records each part's seconds, which the overviews print.
demo: setup
	$(BIN)/python tools/run_notebooks.py --output $(OUTPUT) $(DEMO_ARGS) notebooks/*.ipynb

test: setup
	# nbval runs each notebook once: the instructor copies in notebooks/ hold the solutions and the
	# hidden tests, so running source/*.ipynb as well only repeated them.
	# Two pytest workers (TEST_WORKERS=...), each taking whole modules and notebooks (nbval needs
	# a notebook's cells in order on one kernel); the class run goes first (tests/conftest.py).
	$(BIN)/python -m pytest --nbval-lax notebooks tests -p no:cacheprovider --durations=25 \
		-n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder

# Only the JupyterLab browser test (part of `make test`): needs Debian's chromium.
test-browser: setup
	$(BIN)/python -m pytest tests/test_browser.py -p no:cacheprovider

# JupyterLab refuses to run as root unless told to (containers, CI).
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=. $(ALLOW_ROOT) $(LAB_ARGS)

# JupyterHub for a class on this machine (as root): hub/setup_hub.py, then hub/jupyterhub_config.py.
HUB_ROOT ?= /srv/deepnets-hub
HUB_INSTRUCTOR ?= instructor
HUB_STUDENTS ?= student1 student2 student3
HUB_PORT ?= 8000
HUB_IP ?= 127.0.0.1
hub: setup
	@test -n "$(HUB_PASSWORD)" -a -n "$(HUB_ADMIN_PASSWORD)" || { echo "Set HUB_PASSWORD (students, 8+ characters) and HUB_ADMIN_PASSWORD (instructor, 32+)"; exit 1; }
	@test -x hub/node_modules/.bin/configurable-http-proxy || npm ci --prefix hub --no-audit --no-fund
	$(BIN)/python hub/setup_hub.py --root $(HUB_ROOT) --instructor $(HUB_INSTRUCTOR) --students $(HUB_STUDENTS)
	cd $(HUB_ROOT) && DEEPNETS_HUB_ROOT=$(HUB_ROOT) DEEPNETS_HUB_PORT=$(HUB_PORT) DEEPNETS_HUB_IP=$(HUB_IP) \
		DEEPNETS_HUB_PASSWORD='$(HUB_PASSWORD)' DEEPNETS_HUB_ADMIN_PASSWORD='$(HUB_ADMIN_PASSWORD)' \
		$(HUB_ROOT)/venv/bin/jupyterhub -f $(abspath hub/jupyterhub_config.py)

calibrate: setup
	$(BIN)/python autograder/calibrate.py --workers 2
	$(BIN)/python autograder/calibrate_day13.py

# BENCH_ARGS: e.g. --quick (a smoke test), --data-root DIR, --compile; see benchmarks/bench.py.
bench: setup
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(OUTPUT) build gradebook.db submitted autograded feedback
