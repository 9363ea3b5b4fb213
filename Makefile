# Misuse Warehouse — `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export GX_ANALYTICS_ENABLED := False
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export DO_NOT_TRACK := 1

.PHONY: install demo test test-backfill test-airflow test-distributed test-unattended chromium postgresql-ssl lint manifest airflow dbt-docs full-refresh lock clean \
	bench bench-load bench-memory bench-incremental bench-bi bench-e2e bench-demo bench-audit

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI here) every dbt and Airflow
# process would otherwise compile its imports again (dbt --version 4.1 s -> 2.5 s).
$(BIN)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==0.13.8
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

install: $(BIN)/.installed

manifest: install
	$(BIN)/dbt parse --quiet --project-dir dbt_project --profiles-dir dbt_project

demo: install manifest
	$(BIN)/misuse-warehouse demo

# Two pytest workers (pytest-xdist), a test file each at a time: every worker starts its own embedded
# Postgres and Airflow home (tests/conftest.py); one worker alone keeps about one of the two cores busy.
TEST_WORKERS ?= 2
test: install manifest chromium postgresql-ssl
	$(BIN)/ruff check src dags tests
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# Not part of `make test`: Airflow's own backfill run by a real scheduler, failed month re-run (about 10 min).
test-backfill: install manifest
	$(BIN)/python -m pytest -m scheduler tests/test_backfill.py

# Not part of `make test`: a quarter run by a real scheduler with nobody starting a run: files landing on
# different days, one refused, one late, data.police.uk down for a month; alerts to local SMTP and webhook
# receivers (about 20 min).
test-unattended: install manifest
	$(BIN)/python -m pytest -m scheduler tests/test_unattended.py

# Not part of `make test`: `make airflow` started, its API asked for the DAGs, then Ctrl-C (about 2 min).
test-airflow: install manifest
	$(BIN)/python -m pytest -m scheduler tests/test_airflow_ui.py

# The performance pack test renders the pack in headless Chromium (Debian's chromium package).
# Installed when missing (as root, else with sudo); CHROMIUM=/path/to/chrome uses another build.
chromium:
	@command -v chromium >/dev/null || [ -n "$$CHROMIUM" ] || { \
	  echo "chromium not found: installing Debian's chromium (the performance pack test renders in it)"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || { echo "could not install chromium: run 'apt-get install chromium' as root, or set CHROMIUM"; exit 1; }; }

# The connection-string tests need a PostgreSQL server built with OpenSSL, which the embedded one is not:
# Debian's postgresql package, installed when missing (as root, else with sudo); SSL_POSTGRES_BIN=/path/bin
# uses another build. The tests start their own cluster from it, never the package's service.
postgresql-ssl:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || [ -n "$$SSL_POSTGRES_BIN" ] || { \
	  echo "no PostgreSQL server found: installing Debian's postgresql (the SSL connection tests start one)"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null; } \
	  || { echo "could not install postgresql: run 'apt-get install postgresql' as root, or set SSL_POSTGRES_BIN"; exit 1; }; }

# Not part of `make test`: CeleryExecutor with Redis, two workers, one killed mid-run (about 10 min).
# Installs Debian's redis-server when none is on PATH (needs root; the target starts its own on loopback).
test-distributed: install manifest
	@command -v redis-server >/dev/null || [ -n "$$REDIS_SERVER" ] || { \
	  echo "redis-server not found: installing Debian's redis-server"; \
	  apt-get install -y -qq redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }; }
	$(BIN)/python -m misuse_warehouse.distributed

airflow: install manifest
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m misuse_warehouse.airflow_ui

dbt-docs: install
	eval "$$($(BIN)/python -m misuse_warehouse.dbt_env)" && \
	  $(BIN)/dbt docs generate --quiet --project-dir dbt_project --profiles-dir dbt_project

# Every month of the month-keyed incremental models recomputed (after an upgrade that changes a macro
# they use; a change to their own SQL is noticed by the next build). The next run publishes them.
full-refresh: install manifest
	eval "$$($(BIN)/python -m misuse_warehouse.dbt_env)" && \
	  $(BIN)/dbt build --quiet --full-refresh --select config.materialized:incremental \
	  --project-dir dbt_project --profiles-dir dbt_project

# Benchmarks (bench/, not part of `make test`): each writes its section of bench/RESULTS.md.
# Heavy ones last: a national month through the DAG, then `make demo` from a fresh clone.
BENCH := $(BIN)/python bench
bench: bench-load bench-memory bench-incremental bench-bi bench-audit bench-e2e bench-demo

bench-load: install manifest
	$(BENCH)/bench_load.py

bench-memory: install manifest
	$(BENCH)/bench_loader_memory.py

bench-incremental: install manifest
	$(BENCH)/bench_incremental.py

bench-bi: install manifest
	$(BENCH)/bench_bi_queries.py --national

bench-audit: install manifest
	$(BENCH)/bench_disclosure_audit.py

bench-e2e: install manifest
	$(BENCH)/bench_e2e.py

bench-demo: install manifest
	$(BENCH)/bench_demo.py

lock:
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements.lock

clean:
	rm -rf .local dbt_project/target
