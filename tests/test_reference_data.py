"""misuse_warehouse.reference_data: the seeds loaded and tested when they changed, not every month.

Real dbt on the embedded Postgres: the project's seeds, then a copy of the project whose seeds
are edited, dropped and broken.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from misuse_warehouse import reference_data, settings


def loads(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute("select fingerprint, dag_run_id from ops.reference_data_loads order by 1, 2").fetchall()


def test_seeds_load_when_changed_or_missing(db: psycopg.Connection, warehouse_url: str, tmp_path: Path) -> None:
    db.commit()
    first = reference_data.load("run_1")
    assert first["loaded"] and first["seeds"] == reference_data.seed_names()
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        assert conn.execute("select count(*) from reference.ref_population_mid_year").fetchone()[0] > 0
        # the same files again: nothing run, nothing recorded
        assert reference_data.load("run_2") == {"loaded": False, "fingerprint": first["fingerprint"]}
        assert loads(conn) == [(first["fingerprint"], "run_1")]

        project = tmp_path / "dbt_project"
        shutil.copytree(settings.DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
        population = project / "seeds" / "ref_population_mid_year.csv"
        population.write_text(population.read_text().rstrip("\n") + "\nE06000035,2030,1,1\n")
        edited = reference_data.load("run_3", project)
        assert edited["loaded"] and edited["fingerprint"] != first["fingerprint"]
        assert conn.execute("select count(*) from reference.ref_population_mid_year where year = 2030").fetchone() == (
            1,
        )

        # a seed table dropped (a schema restored by hand, say) is loaded again though the files are the same
        conn.execute("drop table reference.ref_kpi_targets cascade")
        assert reference_data.load("run_4", project)["loaded"]
        assert conn.execute("select to_regclass('reference.ref_kpi_targets') is not null").fetchone() == (True,)

        # a seed that fails its tests stops the load, names the test, and records nothing
        scorecard = project / "seeds" / "ref_scorecard_kpis.csv"
        header, first_row, *rest = scorecard.read_text().splitlines()
        scorecard.write_text("\n".join([header, first_row, first_row, *rest]) + "\n")
        before = loads(conn)
        with pytest.raises(reference_data.ReferenceDataError, match="unique_combination_of_columns_ref_scorecard_kpis"):
            reference_data.load("run_5", project)
        assert loads(conn) == before
        assert not reference_data.is_current(conn, reference_data.fingerprint(project), project)


def test_a_seed_that_gains_a_column_in_an_upgrade_is_recreated(
    db: psycopg.Connection, warehouse_url: str, tmp_path: Path
) -> None:
    """An existing warehouse whose seed table predates a new column (ref_scorecard_kpis.trend_test)."""
    db.commit()
    reference_data.load("before_upgrade")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute("alter table reference.ref_scorecard_kpis drop column trend_test")
        conn.execute("delete from ops.reference_data_loads")  # as before the upgrade changed the files
        assert reference_data.reshaped_seeds(conn) == ["ref_scorecard_kpis"]
        done = reference_data.load("after_upgrade")
        assert done["loaded"] and done["recreated"] == ["ref_scorecard_kpis"]
        assert conn.execute("select count(trend_test) > 0 from reference.ref_scorecard_kpis").fetchone() == (True,)
        assert reference_data.reshaped_seeds(conn) == []
