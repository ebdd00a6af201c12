# Ops Console — the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

# `make test` runs on real PostgreSQL and Redis; override these to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/opsconsole
TEST_REDIS_URL ?= redis://127.0.0.1:6379/1
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2

.PHONY: run test install lint format clean bench

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

install: $(INSTALLED)

# Web + Celery worker + Celery beat on http://127.0.0.1:$PORT (8000), started by
# honcho (a dev extra: `install` puts it in .venv). Without
# DATABASE_URL / REDIS_URL: SQLite and a file-based broker, no server needed.
# PORT is exported because honcho would otherwise give the web process 5000;
# the three processes share one metrics directory, so /metrics shows the
# worker's task counters too.
run: install
	@export DEBUG=$${DEBUG:-true} CONSOLE_BASE_URL=$${CONSOLE_BASE_URL:-http://127.0.0.1:$${PORT:-8000}}; \
	export PORT=$${PORT:-8000}; \
	export PROMETHEUS_MULTIPROC_DIR=$${PROMETHEUS_MULTIPROC_DIR:-$(CURDIR)/var/prometheus-multiproc}; \
	mkdir -p "$$PROMETHEUS_MULTIPROC_DIR" && rm -f "$$PROMETHEUS_MULTIPROC_DIR"/*.db; \
	$(BIN)/python manage.py migrate --noinput && \
	$(BIN)/python manage.py seed_demo && \
	echo "Ops Console: http://127.0.0.1:$${PORT:-8000}/  (Ctrl-C stops web, worker and beat)" && \
	exec $(BIN)/honcho --procfile Procfile --no-prefix start

# Two phases: Playwright's sync API keeps an asyncio loop running in its
# process, which would break asyncio.run() in later tests of the same worker,
# so browser tests run in worker processes of their own. Exit 5 ("no tests
# collected" in one phase when PYTEST_ARGS narrows the run) is not a failure.
test: install
	@export DEBUG=false SECRET_KEY=test-only-secret-key-not-for-production-0123456789abcdef \
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL= METRICS_TOKEN= \
	DATABASE_POOL_MAX_SIZE=$${DATABASE_POOL_MAX_SIZE:-0}; \
	unset PROMETHEUS_MULTIPROC_DIR; \
	status=0; \
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not browser" $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -ne 0 ] && [ $$status -ne 5 ]; then exit $$status; fi; \
	browser=0; \
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -m browser $(PYTEST_ARGS) || browser=$$?; \
	if [ $$browser -ne 0 ] && [ $$browser -ne 5 ]; then exit $$browser; fi; \
	if [ $$status -eq 5 ] && [ $$browser -eq 5 ]; then echo "no tests were collected"; exit 5; fi

# ruff: pyflakes, pycodestyle, isort, bugbear (B), pyupgrade, Django (DJ) rules,
# and the formatter's check (line length 120, pyproject.toml). bandit: medium
# severity and up; a `# nosec Bxxx  # reason` needs its reason.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -c pyproject.toml -r . --severity-level medium --quiet

format: install
	$(BIN)/ruff format .

# Issue 14's figures, one bench after the other so that none shares the
# machine with another (about 6 minutes; needs local PostgreSQL and Redis, and
# the Debian prometheus-alertmanager and prometheus-blackbox-exporter). The
# servers' JSON log lines are left out; each bench prints the load average.
BENCHES := "checklists_bench.py --clients 32" "incidents_bench.py" \
	"alert_storm_bench.py --alerts 10000 --groups 500" \
	"healthchecks_bench.py --probes 20000 --duration 60 --checks 50000 --workers 2" \
	"healthchecks_bench.py --skip-compare --checks 10000 --duration 30" \
	"load_bench.py --users 50"
bench: install
	@for bench in $(BENCHES); do \
		echo "== bench/$$bench  (load average $$(cut -d' ' -f1-3 /proc/loadavg))"; \
		$(BIN)/python bench/$$bench 2>&1 | grep -v '^{'; \
		test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

clean:
	rm -rf var/ $(VENV)
