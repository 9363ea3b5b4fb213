"""`make airflow`: Airflow standalone on the same warehouse and DAGs; Ctrl-C stops all of it.

Standalone starts the api-server, scheduler, dag-processor and triggerer as children; the
only clean stop is to signal its whole process group, which is what we do on Ctrl-C. The embedded
warehouse is stopped too when this command started it (a warehouse already running, e.g. after
`make demo`, stays up for psql and BI tools).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from misuse_warehouse import pseudonymise, runtime, settings, warehouse
from misuse_warehouse.ports import free_port


def main() -> None:
    airflow_home = runtime.configure(parallelism=2)
    os.environ.setdefault(settings.PSEUDONYM_KEY_ENV, pseudonymise.demo_secret(settings.home()))
    os.environ.setdefault("AIRFLOW__API__PORT", "8080")
    # the worker's log server; another Airflow on this machine may hold the default 8793
    os.environ.setdefault("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(free_port(8793)))
    embedded = None if warehouse.configured_url() else warehouse.embedded()
    started_warehouse = embedded is not None and not embedded.is_running()
    url = warehouse.url()
    runtime.ensure_airflow_db()
    runtime.ensure_manifest()
    airflow = str(Path(sys.executable).parent / "airflow")
    process = subprocess.Popen([airflow, "standalone"], start_new_session=True)
    passwords = airflow_home / "simple_auth_manager_passwords.json.generated"
    try:
        deadline = time.monotonic() + 120
        while not passwords.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(1)
        print(f"\nAirflow UI: http://127.0.0.1:{os.environ['AIRFLOW__API__PORT']}")
        if passwords.exists():
            print(f"login (user: password): {passwords.read_text().strip()}")
        print(f"warehouse: {warehouse.display(url)}\nCtrl-C stops Airflow and everything it started.\n")
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if started_warehouse and embedded is not None:
            embedded.stop()
            print("stopped the embedded warehouse this command started")


if __name__ == "__main__":
    main()
