"""The `make test-distributed` rig's own promises, without starting Airflow: it stops what it starts.

Each service leads its own process group; stopping it must leave no process of the group behind,
children included, also one that ignores SIGTERM. The worker-name hostname callable is checked too.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from misuse_warehouse import distributed, hostname

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
        deadline = time.monotonic() + 30
        while len(distributed.session_members(service.pid)) < 2 and time.monotonic() < deadline:
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
