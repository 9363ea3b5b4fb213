"""`make airflow`: the UI and API come up on the warehouse's DAGs, and Ctrl-C stops all of it.

On demand with the other scheduler tests (`make test-backfill`): Airflow standalone starts an
api-server, scheduler, dag-processor and triggerer, which takes a minute or two on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from misuse_warehouse.ports import free_port

pytestmark = pytest.mark.scheduler

STARTUP_SECONDS = 300


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _until(check, seconds: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except (requests.RequestException, ValueError, KeyError):
            found = None
        if found:
            return found
        time.sleep(2)
    raise AssertionError(f"not within {seconds} s: {what}")


def test_make_airflow_serves_the_dags_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    api_port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "WAREHOUSE_URL", "MISUSE_WAREHOUSE_HOME"))
    }
    env |= {
        "MISUSE_WAREHOUSE_HOME": str(home),
        "AIRFLOW__API__PORT": str(api_port),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "misuse_warehouse.airflow_ui"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # our own group, so Ctrl-C is sent to this command only, as a terminal does
    )
    base = f"http://127.0.0.1:{api_port}"
    output: list[str] = []
    try:
        passwords = home / "airflow" / "simple_auth_manager_passwords.json.generated"
        _until(passwords.exists, STARTUP_SECONDS, "standalone wrote the login")
        user, password = next(iter(json.loads(passwords.read_text()).items()))
        _until(lambda: requests.get(f"{base}/api/v2/monitor/health", timeout=5).ok, STARTUP_SECONDS, "api-server up")
        login = {"username": user, "password": password}
        token = requests.post(f"{base}/auth/token", json=login, timeout=10).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        def dag_ids() -> set[str]:
            dags = requests.get(f"{base}/api/v2/dags", headers=headers, timeout=10).json()["dags"]
            return {d["dag_id"] for d in dags} >= {"monthly_pipeline", "benchmarks", "retention"}

        _until(dag_ids, STARTUP_SECONDS, "the dag-processor parsed the project's DAGs")
        warehouse_pid = int((home / "pg" / "data" / "postmaster.pid").read_text().split()[0])
        standalone = int(subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout)
        group = subprocess.run(["pgrep", "-g", str(standalone)], capture_output=True, text=True).stdout.split()
        assert len(group) > 2, "standalone runs its components in its own process group"
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        output.append(process.communicate(timeout=120)[0])
    text = "".join(output)
    assert f"Airflow UI: http://127.0.0.1:{api_port}" in text and "login (user: password)" in text, text
    _until(lambda: not _group_alive(standalone), 60, "every Airflow process stopped")
    _until(lambda: not Path(f"/proc/{warehouse_pid}").exists(), 60, "the embedded warehouse it started stopped")
    assert "stopped the embedded warehouse this command started" in text
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", api_port))  # the UI's port is free again
