"""The pseudonymisation key is treated as a secret: long enough to be beyond guessing, masked wherever Airflow logs.

Whoever holds the key can reverse every person_key by trying initials x date of birth x sex, so a
short key is refused, the Airflow Variable has a name Airflow masks, and a key read from the
environment (which Airflow never masks by itself) is registered with Airflow's secrets masker. The
last is proven on a real task log: a task that prints the key, run by Airflow's own task supervisor
(the code a Celery worker runs: a forked task process whose log lines the supervisor writes to the
task's log file), not in-process as `dag.test()` runs tasks, whose console output is not masked.
"""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from misuse_warehouse import pseudonymise, settings

STRONG = "0123456789abcdef" * 4  # 64 characters, as secrets.token_hex(32) gives


def test_a_key_shorter_than_32_bytes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.PSEUDONYM_KEY_ENV, "x" * 31)
    with pytest.raises(pseudonymise.WeakSecretError, match="31 bytes; at least 32") as refused:
        pseudonymise.secret()
    assert isinstance(refused.value, pseudonymise.MissingSecretError), "every caller that refuses a missing key"
    assert "x" * 31 not in str(refused.value), "the refusal does not repeat the key"
    monkeypatch.setenv(settings.PSEUDONYM_KEY_ENV, "x" * 32)
    assert pseudonymise.secret() == b"x" * 32
    # bytes, not characters: 11 three-byte characters are 33 bytes
    monkeypatch.setenv(settings.PSEUDONYM_KEY_ENV, "€" * 11)
    assert len(pseudonymise.secret()) == 33


def test_the_demo_key_is_long_enough(tmp_path: Path) -> None:
    assert len(pseudonymise.demo_secret(tmp_path).encode()) >= pseudonymise.MIN_SECRET_BYTES


def test_the_cli_refuses_a_short_key_before_anything_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from misuse_warehouse import cli

    monkeypatch.setenv(settings.PSEUDONYM_KEY_ENV, "short-key")
    result = CliRunner().invoke(cli.app, ["run", "--month", "2025-03"])
    assert result.exit_code == 2
    assert "at least 32" in " ".join(result.output.split())  # rich wraps long lines


def test_the_variable_is_named_so_airflow_masks_it() -> None:
    from airflow.sdk._shared.secrets_masker.secrets_masker import should_hide_value_for_key

    assert should_hide_value_for_key(pseudonymise.AIRFLOW_VARIABLE)
    # why it was renamed: Airflow's UI and REST API showed the old name's value
    assert not should_hide_value_for_key(pseudonymise.DEPRECATED_AIRFLOW_VARIABLE)


def test_the_old_variable_name_still_works_for_one_release_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.PSEUDONYM_KEY_ENV)
    monkeypatch.delenv(f"AIRFLOW_VAR_{pseudonymise.AIRFLOW_VARIABLE.upper()}", raising=False)
    monkeypatch.setenv(f"AIRFLOW_VAR_{pseudonymise.DEPRECATED_AIRFLOW_VARIABLE.upper()}", STRONG)
    with pytest.warns(DeprecationWarning, match=pseudonymise.AIRFLOW_VARIABLE):
        assert pseudonymise.secret() == STRONG.encode()
    # the new name wins, silently
    monkeypatch.setenv(f"AIRFLOW_VAR_{pseudonymise.AIRFLOW_VARIABLE.upper()}", STRONG[::-1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert pseudonymise.secret() == STRONG[::-1].encode()


PROBE_DAG = textwrap.dedent(
    """
    import logging

    import pendulum
    from airflow.sdk import DAG, task

    from misuse_warehouse import pseudonymise

    with DAG("pseudonym_key_probe", schedule=None, start_date=pendulum.datetime(2025, 1, 1)):

        @task
        def print_the_key():
            key = pseudonymise.secret().decode()
            logging.getLogger("probe").warning("the key is %s", key)

        print_the_key()
    """
)


def test_a_key_from_the_environment_is_masked_in_the_task_log(
    pipeline: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task that logs the key leaves *** in its log file, as a worker's task would."""
    from airflow.configuration import conf
    from airflow.dag_processing.dagbag import DagBag
    from airflow.executors.workloads import BundleInfo
    from airflow.models.taskinstance import TaskInstance
    from airflow.sdk.execution_time import supervisor
    from airflow.utils.session import create_session

    key = "an-environment-key-of-more-than-32-bytes-" + STRONG
    monkeypatch.setenv(settings.PSEUDONYM_KEY_ENV, key)
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probe.py").write_text(PROBE_DAG)
    # the probe DAG in a bundle of its own: dag.test() serializes the DAG from its bundle, and the task
    # process parses it from there, as on a worker
    bundles = json.loads(conf.get("dag_processor", "dag_bundle_config_list"))
    probe_bundle = {
        "name": "pseudonym-key-probe",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(dags)},
    }
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([*bundles, probe_bundle]))
    log_path = tmp_path / "task.log"

    def supervised(ti: Any, task: Any, client: Any = None) -> SimpleNamespace:
        """dag.test()'s task step, through the supervisor a worker uses instead of in-process."""
        supervisor.supervise_task(
            ti=ti,
            bundle_info=BundleInfo(name=probe_bundle["name"], version=None),
            dag_rel_path="probe.py",
            token="",
            client=client or supervisor.InProcessTestSupervisor._api_client(task.dag),
            log_path=str(log_path),
        )
        with create_session() as session:
            state = session.get(TaskInstance, ti.id).state
        return SimpleNamespace(ti=SimpleNamespace(state=state, task=task), msg=None, error=None)

    monkeypatch.setattr(supervisor, "run_task_in_process", supervised)
    bag = DagBag(str(dags))
    assert not bag.import_errors
    run = bag.get_dag("pseudonym_key_probe").test()
    assert str(run.state) == "success"
    events = [json.loads(line)["event"] for line in log_path.read_text().splitlines() if line.strip()]
    assert "the key is ***" in events
    assert key not in log_path.read_text()
