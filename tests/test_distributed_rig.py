"""The `make test-distributed` rig's own promises, without starting Airflow: it stops what it starts, kills right.

Each service leads its own process group; stopping it must leave no process of the group behind,
children included, also one that ignores SIGTERM. The worker-name hostname callable is checked too.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from misuse_warehouse import distributed, faults, hostname

# a leader with a child that ignores SIGTERM (as a busy task process might)
STUBBORN = (
    "import os, signal, subprocess, sys, time\n"
    "child = 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)'\n"
    "subprocess.Popen([sys.executable, '-c', child])\n"
    "time.sleep(300)\n"
)


def _start_stubborn(supervisor: distributed.Supervisor, name: str) -> distributed.Service:
    service = supervisor.start(name, [sys.executable, "-c", STUBBORN], dict(os.environ))
    deadline = time.monotonic() + 30
    while len(distributed.group_members(service.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(distributed.group_members(service.pid)) == 2, "leader and child both running"
    return service


def test_stop_all_empties_every_process_group(tmp_path: Path) -> None:
    supervisor = distributed.Supervisor(tmp_path, grace=1)
    services = [_start_stubborn(supervisor, f"stubborn-{i}") for i in range(2)]
    supervisor.stop_all()
    for service in services:
        assert distributed.group_members(service.pid) == []
        assert service.process.returncode == -signal.SIGTERM
    assert supervisor.services == {}


def test_kill_takes_the_whole_group_at_once(tmp_path: Path) -> None:
    supervisor = distributed.Supervisor(tmp_path, grace=1)
    service = _start_stubborn(supervisor, "worker-x")
    try:
        assert supervisor.kill("worker-x") == service.pid
        deadline = time.monotonic() + 10
        while distributed.group_members(service.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert distributed.group_members(service.pid) == []
        assert service.process.returncode == -signal.SIGKILL
        supervisor.check_alive()  # a killed service is not a failure
    finally:
        supervisor.stop_all()


# a leader whose child moves to a process group of its own, as Airflow starts each task process
ESCAPING = (
    "import subprocess, sys, time\n"
    "child = 'import os, time; os.setpgid(0, 0); time.sleep(300)'\n"
    "subprocess.Popen([sys.executable, '-c', child])\n"
    "time.sleep(300)\n"
)


def test_kill_takes_task_processes_in_their_own_group_too(tmp_path: Path) -> None:
    """A lost host or container loses every process: the session, not only the worker's group."""
    supervisor = distributed.Supervisor(tmp_path, grace=1)
    service = supervisor.start("worker-y", [sys.executable, "-c", ESCAPING], dict(os.environ))
    try:

        def child_has_left_the_group() -> bool:
            # the child is in the session as soon as it is forked, but in its own group only once its
            # interpreter has started and called setpgid (seconds on a loaded machine)
            return (
                len(distributed.session_members(service.pid)) == 2 and len(distributed.group_members(service.pid)) == 1
            )

        deadline = time.monotonic() + 60
        while not child_has_left_the_group() and time.monotonic() < deadline:
            time.sleep(0.1)
        members = distributed.session_members(service.pid)
        assert len(members) == 2 and len(distributed.group_members(service.pid)) == 1, "the child left the group"
        supervisor.kill("worker-y")
        deadline = time.monotonic() + 10
        while distributed.session_members(service.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert distributed.session_members(service.pid) == []
    finally:
        supervisor.stop_all()


def test_worker_hostname_is_the_configured_name(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv(hostname.WORKER_NAME_ENV, "worker-a")
    assert hostname.worker_hostname() == "worker-a"
    monkeypatch.delenv(hostname.WORKER_NAME_ENV)
    assert hostname.worker_hostname()  # the FQDN, as Airflow's default


# a stand-in for a Celery worker process: takes a "task" every 0.1 s, parking it while armed
TAKES_TASKS = (
    "import time\n"
    "from misuse_warehouse import faults\n"
    "n = 0\n"
    "while True:\n"
    "    n += 1\n"
    "    faults.park(faults.WORKER_RECEIVED, 'worker-a', f'celery-task-{n}')\n"
    "    time.sleep(0.1)\n"
)


def _try(task_id: str, state: str, hostname: str, max_tries: int = 1) -> distributed.TaskTry:
    return distributed.TaskTry(task_id, -1, 1, max_tries, state, hostname, None, None)


def _step_until_kill(plan: distributed.KillPlan, tries: list[distributed.TaskTry]) -> distributed.Kill | None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        kill = plan.step(tries)
        if kill:
            return kill
        time.sleep(0.1)
    return None


def test_kill_plan_kills_the_worker_holding_a_task_it_has_not_started(tmp_path: Path) -> None:
    """Both workers armed once both have worked; the first to take a task is killed holding it."""
    supervisor = distributed.Supervisor(tmp_path, grace=1)
    env = dict(os.environ) | {faults.HOLD_ENV: faults.WORKER_RECEIVED}
    worker_a = supervisor.start("worker-a", [sys.executable, "-c", TAKES_TASKS], env)
    supervisor.start("worker-b", [sys.executable, "-c", "import time; time.sleep(300)"], env)
    try:
        plan = distributed.KillPlan(supervisor)
        busy = [_try("prepare", "success", "worker-a"), _try("ingest", "running", "worker-a")]
        assert plan.step(busy) is None, "worker-b has not finished a task yet"
        assert not faults.armed(faults.WORKER_RECEIVED, "worker-a").exists()
        tries = [*busy, _try("reporting_month", "success", "worker-b")]
        kill = _step_until_kill(plan, tries)
        assert kill is not None and kill.worker == "worker-a" and kill.survivor == "worker-b"
        assert kill.celery_task_id.startswith("celery-task-")
        assert [t.task_id for t in kill.running] == ["ingest"]
        assert kill.parked_at <= kill.at
        assert distributed.session_members(worker_a.pid) == []
        assert not faults.armed(faults.WORKER_RECEIVED, "worker-b").exists(), "the survivor is disarmed"
        assert plan.step(tries) is None, "one kill"
    finally:
        supervisor.stop_all()


def test_kill_plan_never_kills_a_try_that_may_not_retry(tmp_path: Path) -> None:
    """A dbt model (no retries) running on the worker: its parked task goes on and it is armed again."""
    supervisor = distributed.Supervisor(tmp_path, grace=1)
    env = dict(os.environ) | {faults.HOLD_ENV: faults.WORKER_RECEIVED}
    worker_a = supervisor.start("worker-a", [sys.executable, "-c", TAKES_TASKS], env)
    supervisor.start("worker-b", [sys.executable, "-c", "import time; time.sleep(300)"], env)
    try:
        plan = distributed.KillPlan(supervisor)
        worked = [_try("prepare", "success", "worker-a"), _try("reporting_month", "success", "worker-b")]
        model = [*worked, _try("transform.kpi_monthly", "running", "worker-a", max_tries=0)]
        parked = faults.parked(faults.WORKER_RECEIVED, "worker-a")
        taken = set()
        deadline = time.monotonic() + 30
        while len(taken) < 3 and time.monotonic() < deadline:
            if parked.exists() and parked.read_text():
                taken.add(parked.read_text())
            assert plan.step(model) is None
            time.sleep(0.05)
        assert len(taken) >= 3, f"the parked task was let go and another taken each time: {taken}"
        assert worker_a.process.poll() is None
        kill = _step_until_kill(plan, [*worked, _try("ingest", "running", "worker-a")])
        assert kill is not None and kill.worker == "worker-a"
    finally:
        supervisor.stop_all()


def test_the_rig_hands_out_warehouse_logins_and_the_key_as_docker_does() -> None:
    """init alone has the admin login, workers the step logins and the key, the dag-processor the transformer's."""
    from misuse_warehouse import connection_string, settings

    admin = "postgresql://postgres:admin-password@127.0.0.1:5432/warehouse"
    given = distributed.service_environments(admin)
    assert set(given["init"]) == {settings.WAREHOUSE_URL_ENV, settings.LOADER_URL_ENV, settings.TRANSFORMER_URL_ENV}
    assert set(given["worker"]) == {settings.LOADER_URL_ENV, settings.TRANSFORMER_URL_ENV, settings.PSEUDONYM_KEY_ENV}
    assert set(given["dag-processor"]) == {settings.TRANSFORMER_URL_ENV}
    assert given["other"] == {}
    for name in (settings.LOADER_URL_ENV, settings.TRANSFORMER_URL_ENV):
        assert given["worker"][name] == given["init"][name], "init creates the logins the workers use"
    users = {connection_string.parse(given["worker"][n])["user"] for n in distributed.STEP_LOGINS_ENVS}
    assert users == set(distributed.STEP_LOGINS.values())
    assert len(given["worker"][settings.PSEUDONYM_KEY_ENV].encode()) >= 32
    common = distributed._airflow_env(Path("/tmp/rig"), "postgresql://m@h/airflow", "redis://h/0", 8080, "http://p")
    assert not {settings.WAREHOUSE_URL_ENV, settings.PSEUDONYM_KEY_ENV, *distributed.STEP_LOGINS_ENVS} & set(common)
