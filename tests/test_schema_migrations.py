"""Versioned migrations against real Postgres databases: the baseline, stamping, upgrades, the lock.

"Today's main" is the code of BASELINE_COMMIT itself, taken from git and run in a subprocess: the
warehouse it builds (and the files it loads) are what partnerships running the unversioned code
have. Catalogs are compared from pg_catalog, rows by count and checksum.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from feeds import treatment_row, write_feed_file, write_treatment_file
from psycopg import sql

from misuse_warehouse import contracts, migrations, roles

REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = "86b29f497a4a01c4bb40427621d0e6fe27eb2f35"
"""main when the unversioned migrations.py was last the schema (2026-12-07): revision 0001 is its schema."""

WAREHOUSE_SCHEMAS = ("raw", "ops", "marts", "marts_person")


# Databases of their own, beside the session's warehouse


@pytest.fixture
def new_database(warehouse_url: str) -> Iterator[Any]:
    """Makes empty databases in the session's cluster on request; drops them after the test."""
    made: list[str] = []

    def make(name: str) -> str:
        with psycopg.connect(warehouse_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        made.append(name)
        return warehouse_url.rsplit("/", 1)[0] + "/" + name

    yield make
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def legacy_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package (and raw expectations) as of BASELINE_COMMIT, from this repository's history."""
    root = tmp_path_factory.mktemp("legacy")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BASELINE_COMMIT, "src", "expectations", "dbt_project"],
        capture_output=True,
        check=False,
    )
    assert archive.returncode == 0, f"the baseline commit must be in this clone's history: {archive.stderr.decode()}"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return root


LEGACY_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import psycopg
    from misuse_warehouse import migrations, pipeline
    assert migrations.__file__.startswith(os.environ["LEGACY_ROOT"]), migrations.__file__
    assert not hasattr(migrations, "alembic_config")  # the unversioned code, not this branch's
    with psycopg.connect(os.environ["WAREHOUSE_URL"]) as conn:
        migrations.migrate(conn)
    print(json.dumps(pipeline.ingest_files(sys.argv[1:], "legacy-run") if sys.argv[1:] else []))
    """
)


def build_with_main(legacy_src: Path, url: str, files: list[Path] = ()) -> list[dict[str, Any]]:
    """Migrate `url` with the unversioned code of BASELINE_COMMIT, then ingest `files` with its pipeline."""
    env = {
        **os.environ,
        "PYTHONPATH": str(legacy_src / "src"),
        "LEGACY_ROOT": str(legacy_src),
        "WAREHOUSE_URL": url,
    }
    done = subprocess.run(
        [sys.executable, "-c", LEGACY_SCRIPT, *map(str, files)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# What a warehouse is: its catalog, and its rows


def catalog(url: str) -> dict[str, list[tuple]]:
    """Every schema object of the warehouse zones as pg_catalog describes it, names and definitions.

    Owners, privileges (table and column), row-level security and policies included; oids and the
    database's own name left out, so two databases built the same way compare equal.
    """
    zones = list(WAREHOUSE_SCHEMAS)
    queries = {
        "schemas": """select nspname, pg_get_userbyid(nspowner), coalesce(nspacl::text[], '{}')
                      from pg_namespace where nspname = any(%(zones)s)""",
        "relations": """select n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner),
                               coalesce(c.relacl::text[], '{}'), c.relrowsecurity, c.relpersistence
                        from pg_class c join pg_namespace n on n.oid = c.relnamespace
                        where n.nspname = any(%(zones)s)""",
        "columns": """select n.nspname, c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
                             a.attnotnull, a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid),
                             coalesce(a.attacl::text[], '{}')
                      from pg_attribute a join pg_class c on c.oid = a.attrelid
                      join pg_namespace n on n.oid = c.relnamespace
                      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
                      where n.nspname = any(%(zones)s) and a.attnum > 0 and not a.attisdropped""",
        "constraints": """select n.nspname, c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid)
                          from pg_constraint k join pg_class c on c.oid = k.conrelid
                          join pg_namespace n on n.oid = c.relnamespace where n.nspname = any(%(zones)s)""",
        "indexes": """select schemaname, tablename, indexname, indexdef
                      from pg_indexes where schemaname = any(%(zones)s)""",
        "sequences": """select schemaname, sequencename, data_type::text, start_value, increment_by, cache_size, cycle
                        from pg_sequences where schemaname = any(%(zones)s)""",
        "functions": """select n.nspname, p.proname, pg_get_functiondef(p.oid), p.prosecdef,
                               coalesce(p.proacl::text[], '{}'), pg_get_userbyid(p.proowner)
                        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                        where n.nspname = any(%(zones)s)""",
        "policies": """select schemaname, tablename, policyname, permissive, roles::text[], cmd, qual, with_check
                       from pg_policies where schemaname = any(%(zones)s)""",
        "database": "select coalesce(datacl::text[], '{}') from pg_database where datname = current_database()",
    }
    with psycopg.connect(url) as conn:
        described = {name: sorted(conn.execute(query, {"zones": zones}).fetchall()) for name, query in queries.items()}
    version_table = ("ops", migrations.VERSION_TABLE)
    for name in ("relations", "columns", "constraints", "indexes"):
        described[name] = [r for r in described[name] if r[:2] != version_table and r[1] != "alembic_version_pkc"]
    return described


def tables(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Every table of raw and ops, with its columns in order."""
    rows = conn.execute(
        """select table_schema || '.' || table_name, array_agg(column_name::text order by ordinal_position)
           from information_schema.columns where table_schema in ('raw', 'ops') and table_name <> %s
           group by 1 order by 1""",
        (migrations.VERSION_TABLE,),
    ).fetchall()
    return dict(rows)


def contents(conn: psycopg.Connection, columns: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """(rows, md5 over every row of the given columns, in a fixed order) of each table."""
    found = {}
    for table, names in columns.items():
        query = sql.SQL(
            "select count(*), md5(coalesce(string_agg(r::text, '|' order by r::text), '')) from (select {} from {}) r"
        ).format(sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(*table.split(".")))
        found[table] = conn.execute(query).fetchone()
    return found


def oids(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        """select n.nspname || '.' || c.relname, c.oid::bigint from pg_class c
           join pg_namespace n on n.oid = c.relnamespace where n.nspname in ('raw', 'ops') and c.relkind = 'r'"""
    ).fetchall()
    return dict(rows)


def version(url: str) -> str | None:
    with psycopg.connect(url, autocommit=True) as conn:
        return migrations.revisions(conn).current


def files_to_load(landing: Path) -> list[Path]:
    """Real feed files: two treatment submissions (one restating the other), a prison file, a refused file."""
    return [
        write_treatment_file(landing, "P0001", "2025-03", [treatment_row(), treatment_row(episode_id="E2")]),
        write_feed_file(
            landing,
            "prison-releases",
            "E06000035",
            "2025-03",
            [
                {
                    "release_id": "R1",
                    "release_date": "2025-03-04",
                    "prison_code": "BWI",
                    "area_code": "E06000035",
                    "client_initials": "CD",
                    "client_dob": "1975-06-30",
                    "client_sex": "f",
                    "treatment_need": "yes",
                    "treated_in_custody": "yes",
                    "referred_to_community": "yes",
                }
            ],
        ),
        write_treatment_file(landing, "P0002", "2025-03", [treatment_row(client_sex="unknown-sex")]),
    ]


# The tests


POST_UPGRADE = {("ops", "analyst_areas"), ("ops", "analyst_areas_pkey"), ("ops", "analyst_area_codes")}
"""Made by roles.secure_zones after every upgrade to head (with owners and grants), not by a revision."""


def structure(described: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The catalog without what the post-upgrade code owns: owners, privileges and the area look-up."""
    keep = {
        "relations": lambda r: r[:3] + r[5:],
        "columns": lambda r: r[:-1],
        "constraints": lambda r: r,
        "indexes": lambda r: r,
        "sequences": lambda r: r,
        "functions": lambda r: r[:4],
    }
    return {part: [pick(r) for r in described[part] if r[:2] not in POST_UPGRADE] for part, pick in keep.items()}


def test_the_baseline_builds_exactly_the_schema_the_unversioned_code_built(legacy_src: Path, new_database) -> None:
    """Tables, columns, types, defaults, identities, constraints, indexes, sequences: the revision's part.

    Owners, grants and the area look-up are the post-upgrade code's, compared in the upgrade test below
    (a warehouse of the unversioned code, upgraded, against one built new)."""
    by_main = new_database("built_by_main")
    by_baseline = new_database("built_by_baseline")
    build_with_main(legacy_src, by_main)
    with psycopg.connect(by_baseline) as conn:
        assert migrations.migrate(conn, target=migrations.BASELINE) == (migrations.BASELINE,)
    main, baseline = structure(catalog(by_main)), structure(catalog(by_baseline))
    assert len(main["relations"]) > 20 and len(main["columns"]) > 200 and len(main["indexes"]) > 15
    for part in main:
        assert baseline[part] == main[part], part
    assert version(by_baseline) == migrations.BASELINE and version(by_main) is None


def test_a_warehouse_the_unversioned_code_made_is_stamped_and_upgraded_in_place(
    legacy_src: Path, new_database, landing: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Files loaded by the old code stay byte for byte; no table is re-created; then it is at head."""
    url = new_database("running_partnership")
    outcomes = build_with_main(legacy_src, url, files_to_load(landing))
    assert [o["status"] for o in outcomes] == ["loaded", "loaded", "refused"]
    with psycopg.connect(url, autocommit=True) as conn:
        columns = tables(conn)
        before, tables_before = contents(conn, columns), oids(conn)
        assert before["raw.treatment_episodes"][0] == 2 and before["raw.submissions"][0] == 3
        assert before["ops.task_runs"][0] == 3 and before["ops.gate_results"][0] > 0
        head = migrations.revisions(conn).head
        caplog.set_level("INFO", logger=migrations.__name__)
        ran = migrations.migrate(conn)
        assert ran[0] == migrations.BASELINE and ran[-1] == head
        assert "unversioned warehouse" in caplog.text
        assert contents(conn, columns) == before
        assert {t: o for t, o in oids(conn).items() if t in tables_before} == tables_before
        assert migrations.revisions(conn).current == head
        assert migrations.migrate(conn) == ()  # the next run finds nothing to do
        assert contents(conn, columns) == before
    fresh = new_database("new_partnership")
    with psycopg.connect(fresh) as conn:
        migrations.migrate(conn)
    upgraded, built_new = catalog(url), catalog(fresh)  # owners, grants, functions and policies too
    for part in built_new:
        assert upgraded[part] == built_new[part], part


def test_the_head_revision_matches_the_feed_contracts(db: psycopg.Connection) -> None:
    """A contract change without its revision fails here, with the SQL the revision needs."""
    problems = migrations.contract_mismatches(db, contracts.all_contracts().values())
    assert problems == [], "write a revision (misuse-warehouse migrate --new-revision ...):\n" + "\n".join(problems)
    raw_tables = {
        r[0] for r in db.execute("select table_name from information_schema.tables where table_schema = 'raw'")
    }
    assert {c.table for c in contracts.all_contracts().values()} <= raw_tables


def test_the_revisions_are_one_chain() -> None:
    """Two branches each adding a revision after the same head must be renumbered into one line when merged."""
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert len(script.get_heads()) == 1, f"more than one head: {script.get_heads()}"
    chain = [r.revision for r in script.walk_revisions()]
    assert chain[-1] == migrations.BASELINE
    assert all(r.isdigit() and len(r) == 4 for r in chain)


NEW_COLUMN = "housing_support"

CONTRACT_COLUMN_REVISION = '''
"""Test only: the treatment contract gains {column}."""

from alembic import op

revision = "9001"
down_revision = {head!r}
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute('alter table raw.treatment_episodes add column "{column}" text')


def downgrade() -> None:
    raise NotImplementedError
'''


def contracts_gaining_a_column(tmp_path: Path) -> Path:
    """The shipped contracts with one more optional treatment column, as a release would bring them."""
    folder = tmp_path / "contracts"
    folder.mkdir()
    for path in contracts.CONTRACTS_DIR.glob("*.yaml"):
        text = path.read_text()
        if path.name == "treatment.yaml":
            anchor = "  - {name: housing_problem, type: code, required: false}\n"
            assert anchor in text
            text = text.replace(anchor, anchor + f"  - {{name: {NEW_COLUMN}, type: text, required: false}}\n")
        (folder / path.name).write_text(text)
    return folder


def upgrade_with_the_new_contract(
    url: str,
    columns: dict[str, list[str]],
    before: dict[str, tuple[int, str]],
    head: str,
    with_revision: Config,
    landing: Path,
) -> None:
    from misuse_warehouse import pipeline as runs

    with psycopg.connect(url) as conn, pytest.raises(migrations.SchemaError) as refused:
        migrations.migrate(conn)  # the contract changed, no revision shipped with it
    assert f"raw.treatment_episodes lacks {NEW_COLUMN} (alter table raw.treatment_episodes add column" in str(
        refused.value
    )
    with psycopg.connect(url, autocommit=True) as conn:
        assert contents(conn, columns) == before and migrations.revisions(conn).current == head
        assert migrations.migrate(conn, config=with_revision) == ("9001",)
        assert contents(conn, columns) == before
        assert migrations.revisions(conn, with_revision).current == "9001"
        assert conn.execute(
            """select data_type from information_schema.columns
               where table_schema = 'raw' and table_name = 'treatment_episodes' and column_name = %s""",
            (NEW_COLUMN,),
        ).fetchall() == [("text",)]
    new_file = write_treatment_file(
        landing, "P0003", "2025-04", [treatment_row(episode_id="E9", **{NEW_COLUMN: "supported"})]
    )
    assert runs.ingest_files([str(new_file)], "after-upgrade")[0]["status"] == "loaded"


def test_a_contract_that_gains_a_column_reaches_a_loaded_warehouse(
    pipeline, landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Head built and loaded through the loader; the contract gains a column; migrate refuses until its
    revision ships, then adds it: every raw and ops row as before, and the next file fills the column."""
    from misuse_warehouse import pipeline as runs

    pipeline.reset()
    with psycopg.connect(pipeline.url) as conn:
        migrations.migrate(conn)
    outcomes = runs.ingest_files([str(p) for p in files_to_load(landing)], "before-upgrade")
    assert [o["status"] for o in outcomes] == ["loaded", "loaded", "refused"]
    with psycopg.connect(pipeline.url, autocommit=True) as conn:
        columns = tables(conn)
        before = contents(conn, columns)
        head = migrations.revisions(conn).head
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "9001_treatment_gains_a_column.py").write_text(
        CONTRACT_COLUMN_REVISION.format(column=NEW_COLUMN, head=head)
    )
    with_revision = migrations.alembic_config([versions])

    try:
        with monkeypatch.context() as release:
            release.setattr(contracts, "CONTRACTS_DIR", contracts_gaining_a_column(tmp_path))
            contracts.all_contracts.cache_clear()
            upgrade_with_the_new_contract(pipeline.url, columns, before, head, with_revision, landing)
    finally:
        contracts.all_contracts.cache_clear()
    with psycopg.connect(pipeline.url) as conn:
        assert conn.execute(
            sql.SQL("select episode_id, {} from raw.treatment_episodes order by submission_id, source_row").format(
                sql.Identifier(NEW_COLUMN)
            )
        ).fetchall() == [("E1", None), ("E2", None), ("E9", "supported")]
    pipeline.reset()  # the next test's warehouse is built from the shipped revisions again


def test_two_migrations_started_together_take_turns(new_database) -> None:
    """`misuse-warehouse migrate` twice at once on a new warehouse: one upgrades, the other waits, finds it done."""
    url = new_database("migrated_twice")
    env = {**os.environ, "WAREHOUSE_URL": url}
    command = [str(Path(sys.executable).parent / "misuse-warehouse"), "migrate"]

    def run(results: list[subprocess.CompletedProcess]) -> None:
        results.append(subprocess.run(command, env=env, capture_output=True, text=True, check=False))

    results: list[subprocess.CompletedProcess] = []
    threads = [threading.Thread(target=run, args=(results,)) for _ in range(2)]
    with psycopg.connect(url) as holder:  # the lock held elsewhere: both must queue for it
        holder.execute("select pg_advisory_xact_lock(hashtext(%s))", (migrations.LOCK_KEY,))
        for thread in threads:
            thread.start()
        waiting = 0
        for _ in range(600):
            waiting = holder.execute(
                "select count(*) from pg_locks where locktype = 'advisory' and not granted and database = "
                "(select oid from pg_database where datname = current_database())"
            ).fetchone()[0]
            if waiting == 2 or not any(t.is_alive() for t in threads):
                break
            threading.Event().wait(0.1)
        assert waiting == 2, "both migrations wait for the advisory lock"
        holder.commit()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0], [r.stderr[-2000:] for r in results]
    said = sorted(" ".join(r.stdout.split()) for r in results)
    assert said[0].startswith("warehouse migrated (already at head)"), said
    assert said[1].startswith(f"warehouse migrated (ran {migrations.BASELINE}"), said
    shown = subprocess.run([*command, "--show"], env=env, capture_output=True, text=True, check=True).stdout
    head = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
    assert f"current revision: {head}" in shown and f"head revision: {head}" in shown
    assert "pending: nothing, up to date" in shown


def test_a_new_revision_follows_head_and_fails_until_written(tmp_path: Path, new_database) -> None:
    """`migrate --new-revision` numbers the file after head; run unwritten, it stops and changes nothing."""
    versions = tmp_path / "versions"
    versions.mkdir()
    for path in (migrations.SCRIPT_LOCATION / "versions").glob("*.py"):
        (versions / path.name).write_text(path.read_text())
    config = migrations.alembic_config()
    config.set_main_option("version_locations", str(versions))
    head = ScriptDirectory.from_config(config).get_current_head()
    written = migrations.new_revision("ops table for the writer lease", config)
    following = f"{int(head) + 1:04d}"
    assert written == versions / f"{following}_ops_table_for_the_writer_lease.py"
    script = ScriptDirectory.from_config(config)
    assert script.get_current_head() == following and script.get_revision(following).down_revision == head
    url = new_database("unwritten_revision")
    with psycopg.connect(url) as conn:
        with pytest.raises(NotImplementedError, match=f"revision {following}: write its SQL"):
            migrations.migrate(conn, config=config)
        assert migrations.revisions(conn).current is None
        assert conn.execute("select to_regclass('raw.submissions')").fetchone() == (None,)


def test_every_run_prepares_the_warehouse_at_head(pipeline) -> None:
    """The DAGs' `prepare` task is the upgrade: a new warehouse is at head after it, and again after a second."""
    from misuse_warehouse import pipeline as runs

    pipeline.reset()
    head = ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()
    for _ in range(2):
        runs.prepare()
        assert pipeline.query("select version_num from ops.alembic_version") == [(head,)]
    owner = "select pg_get_userbyid(relowner) from pg_class where oid = 'ops.alembic_version'::regclass"
    assert pipeline.query(owner) == [(roles.OWNER,)]  # like every ops table: secure_zones runs after the upgrade
