"""`make test-distributed`: the monthly DAG on Airflow's CeleryExecutor, each component its own process.

On loopback: Redis (the Celery broker), a second embedded Postgres for Airflow's metadata and
Celery's results (CeleryExecutor refuses SQLite), the api-server (the workers' execution API),
scheduler, dag-processor, triggerer and two Celery workers named `worker-a` and `worker-b`; the
warehouse on its own embedded Postgres, as in production. Two consecutive reporting months of
simulated feeds are triggered with the REST API, one after the other, on the same services:

1. the first with nothing killed: how long a month takes here, today, on this machine;
2. the second with a worker lost (`KillPlan`). Both workers are armed: the next task either takes
   from the queue parks before Airflow starts it (`faults.park`), so its task instance is still
   `queued` and its message unacknowledged in Redis, as a prefetched task's would be. Everything
   that worker runs then gets SIGKILL at once, as when a host or container dies: any try it was
   running is failed by the scheduler once its heartbeat stops and retried on the other worker; the
   stranded task must come back through Redis (visibility timeout) as the same try, neither spending
   a retry nor waiting for Airflow's queued-task timeout. Parking makes the kill land in that window
   (real, but a second or so long) every time; what follows it is all Airflow, Celery and Redis.

The test fails unless both months publish, any try the killed worker ran is retried to success on the
survivor, the stranded task runs there as the same try within the broker's redelivery time, and the
second month takes at most MAX_EXTRA_SECONDS longer than the first.

The warehouse's logins are Docker's (docker/docker-compose.yml): a one-shot `misuse-warehouse migrate`
with the admin login creates `misuse_loader` and `misuse_transformer` from their URLs, as the `init`
service does; the workers then get those two logins and the pseudonymisation key only, the
dag-processor the transformer's login, and the api-server, scheduler and triggerer no warehouse login
and no key (`service_environments`).

Everything started here is stopped by its process group (or `pg_ctl` for the Postgres clusters),
also on failure, SIGTERM or Ctrl-C. State and every process's log stay in `.local/distributed/`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from misuse_warehouse import connection_string, faults, redelivery, settings, writer_lease
from misuse_warehouse.embedded_pg import EmbeddedPostgres
from misuse_warehouse.hostname import WORKER_NAME_ENV
from misuse_warehouse.ports import free_port

DAG_ID = "monthly_pipeline"
API_USER = "admin"
TASKS_BEFORE_KILL = 1  # per worker, so both have visibly worked before one dies
WORKERS = ("worker-a", "worker-b")
# Seconds without a heartbeat before the scheduler fails a task (default 300; compose 120): the
# running try's cost. The broker's redelivery time and the queued-task timeout are production's.
HEARTBEAT_TIMEOUT = 40
# A stranded task must start on the survivor within the broker's redelivery time plus this (its
# wait for a free worker process on a loaded 2-core machine, and its start).
START_SLACK = 45
# How much longer the month with a worker killed may take than the month without. The kill costs
# at most max(redelivery 70 s, heartbeat 40 s + detection 5 s + retry delay 20 s + the task again);
# the rest of the run has one worker instead of two, and two runs of the same month differ by a
# minute on this shared machine. Airflow's queued-task timeout (300 s, checked every 30 s) is the
# next thing that would rescue a stranded task if the broker did not: four minutes tells them apart.
MAX_EXTRA_SECONDS = 240
RUN_TIMEOUT = 40 * 60
BIN = Path(sys.executable).parent
STARTED = time.monotonic()
DUPLICATE_IGNORED = "Task already running elsewhere, ignoring redelivered message"


class Failed(RuntimeError):
    """The distributed run did not show what it must; the message says what."""


def say(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:7.1f}s] {message}", flush=True)


@dataclass
class Service:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Processes started here, each leading its own process group; stopped by PID, newest first."""

    def __init__(self, log_dir: Path, grace: float = 30) -> None:
        self.log_dir = log_dir
        self.grace = grace
        self.services: dict[str, Service] = {}
        self.killed: set[str] = set()

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Service:
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        service = Service(name, process, log)
        self.services[name] = service
        say(f"started {name:<13} pid {process.pid:<7} log {log}")
        return service

    def kill(self, name: str) -> int:
        """SIGKILL to every process of the service's session at once, as a lost host or container.

        The Celery worker and its pool share its process group, but Airflow starts each task process
        in a group of its own (same session): killing the group alone would leave the task running.
        """
        service = self.services[name]
        os.killpg(service.pid, signal.SIGKILL)
        for pid in session_members(service.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        service.process.wait()
        self.killed.add(name)
        return service.pid

    def check_alive(self) -> None:
        for service in self.services.values():
            if service.name not in self.killed and service.process.poll() is not None:
                raise Failed(f"{service.name} exited with {service.process.returncode}; see {service.log}")

    def stop_all(self) -> None:
        for service in reversed(list(self.services.values())):
            _stop_group(service, self.grace)
            state = "was killed" if service.name in self.killed else f"exit {service.process.returncode}"
            say(f"stopped {service.name:<13} pid {service.pid:<7} ({state}); its process group is empty")
        self.services.clear()


def _stop_group(service: Service, grace: float = 30) -> None:
    """SIGTERM to the group, SIGKILL to whatever is left of it after `grace` seconds."""
    if _group_alive(service.pid):
        os.killpg(service.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _group_alive(service.pid) and time.monotonic() < deadline:
            service.process.poll()
            time.sleep(0.2)
        if _group_alive(service.pid):
            os.killpg(service.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        service.process.wait(10)
    while _group_alive(service.pid):
        time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return bool(group_members(pgid))


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies waiting to be reaped do not count)."""
    return [pid for pid in _all_pids() if _pgid_of(pid) == pgid and not _is_zombie(pid)]


def session_members(sid: int) -> list[int]:
    """Live processes of a session, whatever their process group."""
    return [pid for pid in _all_pids() if _sid_of(pid) == sid and not _is_zombie(pid)]


def _sid_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except ProcessLookupError:
        return None


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _pgid_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _wait(what: str, ready: Callable[[], bool], seconds: float, supervisor: Supervisor) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor.check_alive()
        try:
            if ready():
                say(f"ready: {what}")
                return
        except Exception:  # noqa: BLE001 - not up yet; the deadline decides
            pass
        time.sleep(1)
    raise Failed(f"{what} not ready after {seconds:.0f} s")


def _redis_binary() -> str:
    binary = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if not binary:
        raise Failed(
            "redis-server not found: `make test-distributed` installs Debian's redis-server, or set REDIS_SERVER"
        )
    return binary


def _clean_home(home: Path) -> None:
    """A fresh state folder; clusters a previous interrupted run left running are stopped first."""
    for cluster in ("pg", "airflow-pg"):
        EmbeddedPostgres(home / cluster).stop()
    shutil.rmtree(home, ignore_errors=True)
    for folder in ("logs", "redis", "landing", "airflow"):
        (home / folder).mkdir(parents=True, exist_ok=True)


STEP_LOGINS = {"loader": "misuse_loader", "transformer": "misuse_transformer"}
"""The workers' warehouse logins by group role, as docker/docker-compose.yml names them."""
STEP_LOGINS_ENVS = (settings.LOADER_URL_ENV, settings.TRANSFORMER_URL_ENV)


def service_environments(warehouse_url: str) -> dict[str, dict[str, str]]:
    """The warehouse settings each kind of process gets, on top of the common Airflow environment.

    As docker/docker-compose.yml gives them: the admin login to `init` only, the step logins
    (fresh passwords each run) to the workers and the transformer's to the dag-processor, the
    pseudonymisation key to the workers only.
    """
    step_urls = {
        settings.LOADER_URL_ENV: connection_string.replaced(
            warehouse_url, user=STEP_LOGINS["loader"], password=secrets.token_hex(16)
        ),
        settings.TRANSFORMER_URL_ENV: connection_string.replaced(
            warehouse_url, user=STEP_LOGINS["transformer"], password=secrets.token_hex(16)
        ),
    }
    return {
        "init": {settings.WAREHOUSE_URL_ENV: warehouse_url, **step_urls},
        "worker": {**step_urls, settings.PSEUDONYM_KEY_ENV: secrets.token_hex(32)},
        "dag-processor": {settings.TRANSFORMER_URL_ENV: step_urls[settings.TRANSFORMER_URL_ENV]},
        "other": {},
    }


def _airflow_env(home: Path, metadata_url: str, broker_url: str, api_port: int, police_url: str):
    """The environment every Airflow process shares: what a deployment puts in its `.env`, minus the
    warehouse logins and the pseudonymisation key, which `service_environments` hands out per service."""
    from misuse_warehouse import police

    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AIRFLOW")
        and not name.startswith("MISUSE_WAREHOUSE_")
        and name not in (settings.WAREHOUSE_URL_ENV, WORKER_NAME_ENV)
    }
    # psycopg 3 for Airflow's sync and async engines alike (asyncpg, Airflow's default async driver, is not locked)
    database = metadata_url.replace("postgresql://", "postgresql+psycopg://", 1)
    return inherited | {
        "PATH": f"{BIN}{os.pathsep}{inherited.get('PATH', '')}",
        "MISUSE_WAREHOUSE_HOME": str(home),
        "MISUSE_WAREHOUSE_LANDING": str(home / "landing"),
        "MISUSE_WAREHOUSE_QUARANTINE": str(home / "quarantine"),
        "MISUSE_WAREHOUSE_ARCHIVE": str(home / "archive"),
        police.BASE_URL_ENV: police_url,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "DO_NOT_TRACK": "1",
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.DAGS_DIR),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "8",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "airflow" / "passwords.json"),
        # a loaded 2-core machine answers the workers' first execution-API calls slowly (default 5 s)
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "30",
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "misuse_warehouse.celery_config.CELERY_CONFIG",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
        # runs start only when triggered: this rig proves one chosen month, not the calendar
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        # as docker/docker-compose.yml: the broker's redelivery (celery_config) comes well before this
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": str(redelivery.QUEUED_TIMEOUT),
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "30",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__ENABLE_WATCHER_RELIABLE_RETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
    }


def _airflow(env: dict[str, str], log: Path, *args: str) -> str:
    """A one-shot Airflow CLI command, run to its end; its output is appended to `log`."""
    result = subprocess.run(
        [str(BIN / "airflow"), *args], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    with log.open("a") as out:
        out.write(f"$ airflow {' '.join(args)}\n{result.stdout}{result.stderr}\n")
    if result.returncode:
        raise Failed(f"airflow {args[0]} {args[1] if len(args) > 1 else ''} failed ({result.returncode}); see {log}")
    return result.stdout


def _init_warehouse(env: dict[str, str], log: Path) -> None:
    """`misuse-warehouse migrate` with the admin login and the step URLs: the Docker `init` service's step."""
    result = subprocess.run(
        [str(BIN / "misuse-warehouse"), "migrate"], env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    with log.open("a") as out:
        out.write(f"$ misuse-warehouse migrate\n{result.stdout}{result.stderr}\n")
    if result.returncode:
        raise Failed(f"misuse-warehouse migrate failed ({result.returncode}); see {log}")


class RestApi:
    """Airflow's public REST API (v2) with a bearer token from the simple auth manager."""

    def __init__(self, base: str, user: str, password: str) -> None:
        self.base = base
        token = self._send("POST", "/auth/token", {"username": user, "password": password}, {})
        self.headers = {"Authorization": f"Bearer {token['access_token']}"}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._send(method, path, body, self.headers)

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers={"Content-Type": "application/json", **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise Failed(f"{method} {path}: HTTP {error.code} {error.read().decode(errors='replace')}") from error


@dataclass(frozen=True)
class TaskTry:
    task_id: str
    map_index: int
    try_number: int
    max_tries: int
    state: str | None
    hostname: str | None
    start_date: Any
    end_date: Any

    @property
    def label(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    @property
    def may_retry(self) -> bool:
        return self.max_tries > 0 and self.try_number <= self.max_tries


def _task_tries(meta: psycopg.Connection, run_id: str) -> list[TaskTry]:
    """Every try of every task of the run: the current one and those Airflow moved to history."""
    columns = "task_id, map_index, try_number, max_tries, state, hostname, start_date, end_date"
    rows = meta.execute(
        f"""select {columns} from task_instance where dag_id = %(dag)s and run_id = %(run)s
            union all
            select {columns} from task_instance_history where dag_id = %(dag)s and run_id = %(run)s""",
        {"dag": DAG_ID, "run": run_id},
    ).fetchall()
    return [TaskTry(*row) for row in rows]


@dataclass
class Kill:
    worker: str
    pid: int
    running: list[TaskTry]  # the tries it was running (retryable ones only: KillPlan)
    at: datetime
    celery_task_id: str  # the message it had taken and parked before Airflow started it
    parked_at: datetime
    stranded: TaskTry | None = None  # that message's task instance, found once the worker is dead

    @property
    def keys(self) -> set[tuple[str, int, int]]:
        return {(t.task_id, t.map_index, t.try_number) for t in self.running}

    @property
    def survivor(self) -> str:
        return next(w for w in WORKERS if w != self.worker)


class KillPlan:
    """Arranges the kill: a worker dies holding a task it has taken from the queue and not started.

    Once both workers have finished TASKS_BEFORE_KILL tasks, both are armed at WORKER_RECEIVED: the
    first task either takes next parks before Airflow starts it (its task instance stays `queued`, its
    message unacknowledged in Redis) and its worker is the victim; the other is disarmed. The victim
    is then killed, with whatever else it runs, unless it runs a try that may not retry (a dbt model
    or the gate: the run would fail for the test's sake); then the parked task is let go and both
    workers are armed again.
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.armed = False
        self.done = False

    def step(self, tries: list[TaskTry]) -> Kill | None:
        if self.done:
            for worker in WORKERS:  # a task the other worker parked as it was disarmed goes on
                _release(faults.parked(faults.WORKER_RECEIVED, worker))
            return None
        if not self.armed:
            finished = [t.hostname for t in tries if t.state == "success"]
            if all(finished.count(worker) >= TASKS_BEFORE_KILL for worker in WORKERS):
                for worker in WORKERS:
                    armed = faults.armed(faults.WORKER_RECEIVED, worker)
                    armed.parent.mkdir(parents=True, exist_ok=True)
                    armed.touch()
                self.armed = True
                say(f"armed {' and '.join(WORKERS)}: the next task either takes parks before it starts")
            return None
        for victim in WORKERS:
            parked = faults.parked(faults.WORKER_RECEIVED, victim)
            celery_task_id = _marker_text(parked)
            if not celery_task_id:
                continue
            running = [t for t in tries if t.state == "running" and t.hostname == victim]
            if any(not t.may_retry for t in running):
                _release(parked)
                faults.armed(faults.WORKER_RECEIVED, victim).touch()
                say(f"{victim} runs a try that may not retry: its parked task goes on; armed again")
                return None
            for worker in WORKERS:
                faults.armed(faults.WORKER_RECEIVED, worker).unlink(missing_ok=True)
            self.done = True
            return self._kill(victim, running, celery_task_id, parked)
        return None

    def _kill(self, worker: str, running: list[TaskTry], celery_task_id: str, parked: Path) -> Kill:
        parked_at = datetime.fromtimestamp(parked.stat().st_mtime, UTC)
        pid = self.supervisor.kill(worker)
        at = datetime.now(UTC)
        parked.unlink(missing_ok=True)
        also = f"while it runs {', '.join(f'{t.label} try {t.try_number}' for t in running)}" if running else "idle"
        say(
            f"KILL -9 {worker} (session {pid}: the worker, its pool, its task processes) {also}, holding Celery "
            f"task {celery_task_id}, taken {(at - parked_at).total_seconds():.1f} s ago and not started"
        )
        return Kill(worker, pid, running, at, celery_task_id, parked_at)


def _marker_text(path: Path) -> str:
    """What a parked process wrote in its marker; empty while there is none or it is being written."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def _release(path: Path) -> None:
    """Let a parked process go on (once it has written its marker: deleting it earlier would not)."""
    if _marker_text(path):
        path.unlink(missing_ok=True)
        say(f"let go: the task parked at {path.name}")


def _find_stranded(meta: psycopg.Connection, run_id: str, kill: Kill) -> TaskTry:
    """The task instance of the parked message (Airflow records the Celery task id), `queued` at the kill."""
    columns = "task_id, map_index, try_number, max_tries, state, hostname, start_date, end_date"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        row = meta.execute(
            f"select {columns} from task_instance where dag_id = %s and run_id = %s and external_executor_id = %s",
            (DAG_ID, run_id, kill.celery_task_id),
        ).fetchone()
        if row:
            stranded = TaskTry(*row)
            if stranded.state != "queued":
                raise Failed(f"the parked task {stranded.label} was {stranded.state}, not queued, at the kill")
            say(f"stranded by the kill: {stranded.label} try {stranded.try_number}, queued, its message unacknowledged")
            return stranded
        time.sleep(0.5)
    raise Failed(f"no task instance of {run_id} has Celery task id {kill.celery_task_id}")


def _watch(
    meta: psycopg.Connection, run_id: str, supervisor: Supervisor, plan: KillPlan | None
) -> tuple[str, Kill | None]:
    """Follow the run to its end, printing each finished try; with a plan, kill one worker when it says."""
    reported: set[tuple[str, int, int, str]] = set()
    kill: Kill | None = None
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        tries = _task_tries(meta, run_id)
        for t in sorted(tries, key=lambda t: (str(t.end_date), t.label)):
            key = (t.task_id, t.map_index, t.try_number, str(t.state))
            if t.state in ("success", "failed", "skipped", "upstream_failed") and key not in reported:
                reported.add(key)
                killed = kill and (t.task_id, t.map_index, t.try_number) in kill.keys and t.state == "failed"
                note = f"  <- its worker was killed: no heartbeat for {HEARTBEAT_TIMEOUT} s" if killed else ""
                if (
                    kill
                    and kill.stranded
                    and (t.task_id, t.map_index) == (kill.stranded.task_id, kill.stranded.map_index)
                ):
                    note = "  <- stranded by the kill, redelivered by Redis"
                say(f"{t.state:<8} {t.hostname or '-':<9} try {t.try_number}  {t.label}{note}")
        if plan:
            new_kill = plan.step(tries)
            if new_kill:
                kill = new_kill
                kill.stranded = _find_stranded(meta, run_id, kill)
        state = meta.execute("select state from dag_run where run_id = %s", (run_id,)).fetchone()[0]
        if state in ("success", "failed"):
            return state, kill
        supervisor.check_alive()
        time.sleep(0.5)
    raise Failed(f"run {run_id} not finished after {RUN_TIMEOUT // 60} min")


def _report(tries: list[TaskTry]) -> None:
    """Which worker ran which task."""
    print("\nWhich worker ran which task (task instances' hostname, every try, in start order):", flush=True)
    ordered = sorted(tries, key=lambda t: (str(t.start_date), t.label))
    for worker in (*WORKERS, None):
        mine = [t for t in ordered if t.hostname == worker]
        states = ", ".join(f"{sum(t.state == s for t in mine)} {s}" for s in sorted({str(t.state) for t in mine}))
        name = worker or "no worker (finished by the scheduler: empty marker tasks)"
        print(f"  {name}: {len(mine)} tries ({states})")
        labels = [t.label + ("" if t.try_number == 1 else f" (try {t.try_number})") for t in mine]
        print(textwrap.fill(", ".join(labels), width=116, initial_indent="    ", subsequent_indent="    "))
    for worker in WORKERS:
        if not any(t.hostname == worker and t.state == "success" for t in tries):
            raise Failed(f"{worker} finished no task")


def _check_kill(meta: psycopg.Connection, run_id: str, tries: list[TaskTry], kill: Kill | None) -> dict[str, float]:
    """The running try was retried on the survivor; the stranded task ran there as the same try, via Redis."""
    if kill is None or kill.stranded is None:
        raise Failed("no worker was killed holding a stranded task: nothing was proved")
    survivor = kill.survivor
    for killed_try in kill.running:
        same_task = [t for t in tries if (t.task_id, t.map_index) == (killed_try.task_id, killed_try.map_index)]
        print(f"\nThe killed try {killed_try.label}:", flush=True)
        for t in sorted(same_task, key=lambda t: t.try_number):
            print(f"  try {t.try_number}: {t.state} on {t.hostname}")
        final = max(same_task, key=lambda t: t.try_number)
        if not (final.state == "success" and final.hostname == survivor and final.try_number > killed_try.try_number):
            raise Failed(f"{killed_try.label} was not retried to success on {survivor}: {final}")
    after_kill = [t.label for t in tries if t.hostname == kill.worker and t.start_date and t.start_date > kill.at]
    if after_kill:
        raise Failed(f"{kill.worker} was killed but tasks started on it afterwards: {after_kill}")

    stranded = kill.stranded
    runs = [t for t in tries if (t.task_id, t.map_index) == (stranded.task_id, stranded.map_index)]
    print(f"The stranded task {stranded.label} (Celery task {kill.celery_task_id}):", flush=True)
    for t in sorted(runs, key=lambda t: t.try_number):
        print(f"  try {t.try_number}: {t.state} on {t.hostname}, started {t.start_date}")
    if [(t.try_number, t.state, t.hostname) for t in runs] != [(stranded.try_number, "success", survivor)]:
        raise Failed(f"{stranded.label} did not run once, as the same try, on {survivor}: {runs}")
    external_id = meta.execute(
        "select external_executor_id from task_instance where dag_id = %s and run_id = %s and task_id = %s "
        "and map_index = %s",
        (DAG_ID, run_id, stranded.task_id, stranded.map_index),
    ).fetchone()[0]
    if external_id != kill.celery_task_id:
        raise Failed(f"{stranded.label} ran as Celery task {external_id}: requeued by the scheduler, not redelivered")
    requeued = meta.execute(
        "select count(*) from log where dag_id = %s and run_id = %s and event like 'stuck in queued%%'",
        (DAG_ID, run_id),
    ).fetchone()[0]
    if requeued:
        raise Failed(f"the scheduler found {requeued} task(s) stuck in queued: the broker did not bring them back")
    started = runs[0].start_date
    after_kill_s = (started - kill.at).total_seconds()
    after_taken_s = (started - kill.parked_at).total_seconds()
    limit = redelivery.redelivery_seconds(redelivery.DEFAULT_OPTIONS)
    print(
        f"  taken by {kill.worker} at {kill.parked_at:%H:%M:%S}, "
        f"{kill.worker} killed {(kill.at - kill.parked_at).total_seconds():.1f} s "
        f"later; started on {survivor} {after_taken_s:.0f} s after it was taken, {after_kill_s:.0f} s after the kill "
        f"(visibility timeout {redelivery.VISIBILITY_TIMEOUT} s, redelivery within {limit:.0f} s)",
        flush=True,
    )
    # its delivery came a moment before its worker parked it: a few seconds on a loaded machine
    if after_taken_s < redelivery.VISIBILITY_TIMEOUT - 10:
        raise Failed(f"{stranded.label} started {after_taken_s:.0f} s after it was taken: not the broker's redelivery")
    if after_kill_s > limit + START_SLACK:
        raise Failed(
            f"{stranded.label} started {after_kill_s:.0f} s after the kill (limit {limit + START_SLACK:.0f} s)"
        )
    return {"stranded_start_after_kill": after_kill_s, "stranded_start_after_taken": after_taken_s}


def _duplicates(log_dir: Path) -> dict[str, int]:
    """Redelivered messages of tasks still running that a worker ignored (Airflow: 'already running')."""
    counts = {}
    for worker in WORKERS:
        log = log_dir / f"{worker}.log"
        counts[worker] = log.read_text(errors="replace").count(DUPLICATE_IGNORED) if log.exists() else 0
    return counts


def _duration(meta: psycopg.Connection, run_id: str) -> float:
    start, end = meta.execute("select start_date, end_date from dag_run where run_id = %s", (run_id,)).fetchone()
    return (end - start).total_seconds()


def _published(warehouse_url: str, run_id: str, month: str) -> tuple[int, int]:
    with psycopg.connect(warehouse_url) as conn:
        publication = conn.execute(
            "select publication_id from ops.publications where dag_run_id = %s and reporting_month = %s::date",
            (run_id, f"{month}-01"),
        ).fetchone()
        if not publication:
            raise Failed(f"no publication of {month} by {run_id} in ops.publications")
        rows, areas = conn.execute(
            "select count(*), count(distinct area_code) from marts.kpi_monthly where month = %s::date",
            (f"{month}-01",),
        ).fetchone()
    return rows, areas


def _logical_date(month: str) -> str:
    """A manual run's data interval is the month before its logical date, as in `runner.run_month`."""
    import pendulum

    from misuse_warehouse.runtime import run_after

    due = run_after(month)
    return pendulum.datetime(due.year, due.month, due.day, tz="Europe/London").isoformat()


def run(home: Path, month: str, supervisor: Supervisor, cleanups: list[Callable[[], None]]) -> None:
    """Start everything, run `month` with nothing killed, then the month after it with a worker killed."""
    from celery import Celery
    from redis import Redis

    from misuse_warehouse.months import month_text, parse_month
    from misuse_warehouse.simulate import police_api, write_feeds

    months = [month, month_text(parse_month(month) + 1)]
    say(f"state and logs in {home}")
    files = write_feeds(home / "landing", settings.SEED_AREAS, months, seed=42)
    say(f"simulated {len(files)} feed files for {' and '.join(months)} ({len(settings.SEED_AREAS)} areas)")

    redis_port = free_port()
    supervisor.start(
        "redis",
        [
            _redis_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(home / "redis"),
        ],  # fmt: skip
        dict(os.environ),
    )
    _wait("redis", lambda: bool(Redis(port=redis_port, socket_timeout=1).ping()), 30, supervisor)

    clusters = {name: EmbeddedPostgres(home / name) for name in ("pg", "airflow-pg")}
    for name, cluster in clusters.items():
        cleanups.append(cluster.stop)
        cluster.start()
        say(f"started Postgres {name:<10} on 127.0.0.1:{cluster.port()} (pg_ctl, postmaster.pid in {cluster.data_dir})")
    warehouse_url = clusters["pg"].url()
    with psycopg.connect(clusters["airflow-pg"].url(), autocommit=True) as conn:
        conn.execute("create database airflow")
    metadata_url = clusters["airflow-pg"].url(database="airflow")

    police_url, stop_police = police_api.start(seed=42, latest=months[-1])
    cleanups.append(stop_police)
    say(f"data.police.uk stand-in at {police_url}")

    api_port = free_port()
    password = secrets.token_urlsafe(16)
    (home / "airflow" / "passwords.json").write_text(json.dumps({API_USER: password}))
    env = _airflow_env(home, metadata_url, f"redis://127.0.0.1:{redis_port}/0", api_port, police_url)
    logins = service_environments(warehouse_url)
    cli_log = home / "logs" / "airflow-cli.log"
    started = time.monotonic()
    _airflow(env, cli_log, "db", "migrate")
    _airflow(env, cli_log, "pools", "set", writer_lease.WRITER_POOL, "1", writer_lease.WRITER_POOL_DESCRIPTION)
    say(f"airflow db migrate on Postgres: {time.monotonic() - started:.0f} s")
    _init_warehouse(env | logins["init"], cli_log)
    say(f"warehouse migrated as init does; workers log in as {' and '.join(STEP_LOGINS.values())}")

    airflow = str(BIN / "airflow")
    supervisor.start(
        "api-server", [airflow, "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "2"], env
    )
    health = f"http://127.0.0.1:{api_port}/api/v2/monitor/health"
    _wait(
        "api-server (execution API)", lambda: urllib.request.urlopen(health, timeout=2).status == 200, 180, supervisor
    )
    supervisor.start("scheduler", [airflow, "scheduler"], env)
    supervisor.start("dag-processor", [airflow, "dag-processor"], env | logins["dag-processor"])
    trigger_env = env | {"AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
    supervisor.start("triggerer", [airflow, "triggerer"], trigger_env)
    for worker in WORKERS:
        worker_env = (
            env
            | logins["worker"]
            | {
                WORKER_NAME_ENV: worker,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "misuse_warehouse.hostname.worker_hostname",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                faults.HOLD_ENV: faults.WORKER_RECEIVED,  # parks a task only when armed (KillPlan)
            }
        )
        argv = [airflow, "celery", "worker", "--celery-hostname", f"{worker}@%h", "--queues", "default",
                "--concurrency", "2"]  # fmt: skip
        supervisor.start(worker, argv, worker_env)

    broker = Celery(broker=env["AIRFLOW__CELERY__BROKER_URL"])

    def workers_answer() -> bool:
        names = {name.split("@")[0] for reply in broker.control.ping(timeout=2) for name in reply}
        return set(WORKERS) <= names

    _wait("both Celery workers answer a ping", workers_answer, 240, supervisor)

    with psycopg.connect(metadata_url, autocommit=True) as meta:

        def dag_parsed() -> bool:
            errors = meta.execute("select filename, stacktrace from import_error").fetchall()
            if errors:
                raise Failed(f"DAG import errors: {errors}")
            return bool(meta.execute("select 1 from serialized_dag where dag_id = %s", (DAG_ID,)).fetchone())

        _wait(f"{DAG_ID} parsed by the dag-processor", dag_parsed, 300, supervisor)
        rest = RestApi(f"http://127.0.0.1:{api_port}", API_USER, password)
        rest.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        landing = home / "landing"
        quiet_id, quiet_tries, _ = _run_month(meta, rest, supervisor, landing, months[0], None)
        quiet = _duration(meta, quiet_id)
        _report(quiet_tries)
        say(f"{months[0]}, nothing killed: {quiet:.0f} s from start to end")
        duplicates_before = _duplicates(home / "logs")

        killed_id, killed_tries, kill = _run_month(meta, rest, supervisor, landing, months[1], KillPlan(supervisor))
        killed = _duration(meta, killed_id)
        _report(killed_tries)
        stranded = _check_kill(meta, killed_id, killed_tries, kill)
        say(f"{months[1]}, {kill.worker if kill else '-'} killed: {killed:.0f} s from start to end")
    duplicates = _duplicates(home / "logs")
    for run_id, published in ((quiet_id, months[0]), (killed_id, months[1])):
        rows, areas = _published(warehouse_url, run_id, published)
        say(f"marts.kpi_monthly published for {published}: {rows} rows, {areas} areas")
    extra = killed - quiet
    print(
        f"\nThe month with {kill.worker} killed took {killed:.0f} s, the month with nothing killed {quiet:.0f} s: "
        f"{extra:+.0f} s (at most {MAX_EXTRA_SECONDS} s allowed). The stranded task started "
        f"{stranded['stranded_start_after_kill']:.0f} s after the kill. Redelivered messages of tasks still "
        f"running, ignored by Airflow: {sum(duplicates_before.values())} in the first month, "
        f"{sum(duplicates.values()) - sum(duplicates_before.values())} in the second.",
        flush=True,
    )
    if extra > MAX_EXTRA_SECONDS:
        raise Failed(
            f"the month with a worker killed took {extra:.0f} s longer than without (limit {MAX_EXTRA_SECONDS} s)"
        )
    print(
        f"\nPASSED: {months[0]} and {months[1]} published on CeleryExecutor with {' and '.join(WORKERS)}; "
        f"{kill.worker} was killed with SIGKILL ({len(kill.running)} running tries, retried to success on "
        f"{kill.survivor}); {kill.stranded.label}, which {kill.worker} had taken and not started, ran on "
        f"{kill.survivor} as the same try {stranded['stranded_start_after_kill']:.0f} s after the kill; "
        f"the month took {extra:+.0f} s.\n",
        flush=True,
    )


def _run_month(
    meta: psycopg.Connection,
    rest: RestApi,
    supervisor: Supervisor,
    landing: Path,
    month: str,
    plan: KillPlan | None,
) -> tuple[str, list[TaskTry], Kill | None]:
    """Trigger `month` through the REST API and follow it to its end; with a plan, one worker is killed in it."""
    run_id = f"distributed__{month}__{int(time.time())}"
    conf = {"landing": str(landing)}
    body = {"dag_run_id": run_id, "logical_date": _logical_date(month), "conf": conf}
    created = rest.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body)
    interval = f"{created['data_interval_start']} to {created['data_interval_end']}: {month} in Europe/London"
    say(f"triggered {DAG_ID} run {run_id} through the REST API: data interval {interval}, conf {json.dumps(conf)}")
    state, kill = _watch(meta, run_id, supervisor, plan)
    say(f"run {run_id} ended {state}")
    tries = _task_tries(meta, run_id)
    if state != "success":
        _report(tries)
        raise Failed(f"run {run_id} ended {state}")
    return run_id, tries, kill


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--month", default="2025-04", help="first reporting month (YYYY-MM): run whole; the next has a worker killed"
    )
    parser.add_argument("--home", type=Path, default=settings.PROJECT_ROOT / ".local" / "distributed")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    os.environ["MISUSE_WAREHOUSE_HOME"] = str(home)  # where the workers look for faults' arm files
    _clean_home(home)
    os.environ.pop("MISUSE_WAREHOUSE_PG_PORT", None)  # two clusters: each takes a free port
    supervisor = Supervisor(home / "logs")
    cleanups: list[Callable[[], None]] = []

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupted)
    try:
        run(home, args.month, supervisor, cleanups)
        return 0
    except Failed as failure:
        say(f"FAILED: {failure}")
        return 1
    except KeyboardInterrupt:
        say("interrupted: stopping everything this run started")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        supervisor.stop_all()
        for cleanup in reversed(cleanups):
            cleanup()
        say("stopped the Postgres clusters (pg_ctl stop) and the police stand-in")


if __name__ == "__main__":
    sys.exit(main())
