"""The contract-driven loader against the embedded Postgres: COPY, audit, idempotency, quarantine."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from feeds import treatment_row, write_treatment_file

from misuse_warehouse import loader, pseudonymise, settings
from misuse_warehouse.file_checks import read_file
from misuse_warehouse.refusal import Refusal


def _load(db: psycopg.Connection, path: Path) -> loader.Outcome:
    return loader.load(db, read_file(path), "test-run")


def test_load_copies_rows_with_pseudonym_and_audit(db: psycopg.Connection, landing: Path) -> None:
    path = write_treatment_file(
        landing, "P0001", "2025-03", [treatment_row(), treatment_row(episode_id="E2", client_initials="xx")]
    )
    sent = path.read_bytes()
    outcome = _load(db, path)
    assert outcome.status == "loaded" and outcome.rows == 2
    audit = db.execute(
        "select feed, source_code, period_start::text, file_name, row_count, status, length(file_sha256)"
        " from raw.submissions"
    ).fetchall()
    assert audit == [("treatment", "P0001", "2025-03-01", path.name, 2, "loaded", 64)]
    rows = db.execute(
        "select source_row, submission_month::text, referral_date::text, person_key"
        " from raw.treatment_episodes order by source_row"
    ).fetchall()
    key = pseudonymise.secret()
    assert rows == [
        (2, "2025-03-01", "2025-01-10", pseudonymise.person_key(key, "AB", "1980-01-01", "m")),
        (3, "2025-03-01", "2025-01-10", None),
    ]
    archived = list(settings.archive_dir().rglob("*.csv"))
    assert len(archived) == 1 and archived[0].read_bytes() == sent
    assert not path.exists(), "an accepted file is moved out of landing, not copied"


def test_same_bytes_twice_change_nothing(db: psycopg.Connection, landing: Path) -> None:
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    sent = path.read_bytes()
    first = _load(db, path)
    path.write_bytes(sent)  # the sender sends the same bytes again
    second = _load(db, path)
    assert second.status == "duplicate" and second.submission_id == first.submission_id
    assert db.execute("select count(*) from raw.submissions").fetchone() == (1,)
    assert db.execute("select count(*) from raw.treatment_episodes").fetchone() == (1,)


def test_resubmission_is_a_new_submission_that_supersedes(db: psycopg.Connection, landing: Path) -> None:
    first = _load(
        db, write_treatment_file(landing, "P0001", "2025-03", [treatment_row(), treatment_row(episode_id="E2")])
    )
    second = _load(db, write_treatment_file(landing, "P0001", "2025-03", [treatment_row(referral_source="gp")]))
    assert second.status == "loaded" and second.submission_id > first.submission_id
    assert f"supersedes {first.submission_id}" in second.message
    # raw keeps both; the latest per feed, source and month is the current one
    counts = db.execute("select submission_id, count(*) from raw.treatment_episodes group by 1 order by 1").fetchall()
    assert counts == [(first.submission_id, 2), (second.submission_id, 1)]


def test_refused_file_is_quarantined_with_reasons_and_audited(db: psycopg.Connection, landing: Path) -> None:
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    outcome = loader.refuse(db, path, Refusal("rule_broken:x", "a readable reason", [{"row": 2}]), "run-1")
    assert outcome.status == "refused" and not path.exists()
    folder = settings.quarantine_dir() / "treatment" / "2025-03"
    assert (folder / path.name).exists()
    reason = json.loads((folder / f"{path.name}.reason.json").read_text())
    assert reason["code"] == "rule_broken:x" and reason["details"] == [{"row": 2}]
    assert "a readable reason" in (folder / f"{path.name}.reason.txt").read_text()
    audit = db.execute("select status, refusal_code, row_count from raw.submissions").fetchall()
    assert audit == [("refused", "rule_broken:x", None)]
    assert db.execute("select count(*) from raw.treatment_episodes").fetchone() == (0,)


def test_hostile_values_are_stored_as_text(db: psycopg.Connection, landing: Path) -> None:
    hostile = "E1'); drop table raw.submissions; --"
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row(episode_id=hostile)])
    parsed = read_file(path)
    loader.load(db, parsed)
    assert db.execute("select episode_id from raw.treatment_episodes").fetchone() == (hostile,)


def test_values_that_are_copy_syntax_are_stored_as_sent(db: psycopg.Connection, landing: Path) -> None:
    """Backslashes, tabs and (in a quoted field) line breaks are escaped for COPY, on either reading path."""
    unquoted = ["E\\N", "E1\tx", "E2\\tx"]
    path = write_treatment_file(landing, "P0001", "2025-03", [treatment_row(episode_id=e) for e in unquoted])
    assert b'"' not in path.read_bytes()  # read by Arrow's reader
    _load(db, path)
    quoted = ["E3\nx", "E4\r\ny", "E5\\"]
    path = write_treatment_file(landing, "P0002", "2025-03", [treatment_row(episode_id=e) for e in quoted])
    assert b'"' in path.read_bytes()  # read by the exact path
    _load(db, path)
    stored = db.execute("select episode_id from raw.treatment_episodes order by submission_id, source_row").fetchall()
    assert [episode for (episode,) in stored] == unquoted + quoted


def test_pseudonym_is_hmac_sha256_of_the_attributor(db: psycopg.Connection, landing: Path) -> None:
    """person_key = HMAC-SHA256(secret, "INITIALS|YYYY-MM-DD|sex") (../shared/kpis.md), checked against hmac.new."""
    _load(db, write_treatment_file(landing, "P0001", "2025-03", [treatment_row(client_initials=" ab ")]))
    stored = db.execute("select person_key from raw.treatment_episodes").fetchone()[0]
    assert stored == hmac.new(pseudonymise.secret(), b"AB|1980-01-01|m", hashlib.sha256).hexdigest()


def test_person_keys_of_a_column_equal_person_key_of_each_row() -> None:
    """The vectorised keys must never differ from the row-by-row definition, or people stop linking."""
    initials = ["AB", " ab ", "xx", " Xx", None, "ß", "éa", "AB"]
    dobs = ["1980-01-01", "1980-01-01", "1990-02-03", None, "1970-05-06", "2001-01-01", None, "1980-01-01"]
    sexes = ["m", "m", "f", None, "f", "1", "2", "f"]
    key = b"k" * 32
    columns = [pa.chunked_array([values[:3], values[3:]], pa.string()) for values in (initials, dobs, sexes)]
    expected = [
        pseudonymise.person_key(key, i or "", d or "", s or "") for i, d, s in zip(initials, dobs, sexes, strict=True)
    ]
    assert pseudonymise.person_keys(key, *columns).to_pylist() == expected
    assert expected[2] is expected[3] is None and expected[0] == expected[1] != expected[7]


def test_lanes_keep_each_lanes_order_on_one_connection(warehouse_url: str) -> None:
    """Items of one lane run in order on one connection; lanes run side by side; results keep the items' order."""
    items = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("b", 2), ("a", 3), ("c", 2), ("d", 1)]
    ran: list[tuple[str, int, int]] = []

    def work(conn: psycopg.Connection, item: tuple[str, int]) -> str:
        pid = conn.execute("select pg_backend_pid() from pg_sleep(0.05)").fetchone()[0]
        ran.append((item[0], item[1], pid))
        return f"{item[0]}{item[1]}"

    results = loader.in_lanes(items, lambda item: item[0], work, lambda: psycopg.connect(warehouse_url), connections=3)
    assert results == ["a1", "b1", "a2", "c1", "b2", "a3", "c2", "d1"]
    for lane in "abcd":
        steps = [(n, pid) for name, n, pid in ran if name == lane]
        assert [n for n, _ in steps] == sorted(n for n, _ in steps)
        assert len({pid for _, pid in steps}) == 1
    assert len({pid for *_, pid in ran}) == 3


def test_a_failing_lane_lets_the_others_finish_then_raises(warehouse_url: str) -> None:
    done: list[str] = []
    opened: list[psycopg.Connection] = []

    def connect() -> psycopg.Connection:
        opened.append(psycopg.connect(warehouse_url))
        return opened[-1]

    def work(conn: psycopg.Connection, item: str) -> str:
        if item == "bad":
            raise ValueError("bad item")
        conn.execute("select pg_sleep(0.05)")
        done.append(item)
        return item

    with pytest.raises(ValueError, match="bad item"):
        loader.in_lanes(["ok1", "bad", "ok2", "ok3"], lambda item: item, work, connect, connections=2)
    assert sorted(done) == ["ok1", "ok2", "ok3"]
    assert opened and all(conn.closed for conn in opened)


def test_ingest_gives_submission_ids_in_file_order(db: psycopg.Connection, landing: Path) -> None:
    """Files load side by side, yet each submission's id follows its file's order, refused ones too:
    ids reach the marts, and the same files must publish the same marts."""
    from misuse_warehouse import pipeline

    paths = [
        write_treatment_file(
            landing, f"P00{n:02d}", "2025-03", [treatment_row(episode_id=f"E{m}") for m in range(1 + 300 * (n % 3))]
        )
        for n in range(1, 8)
    ]
    paths.insert(3, write_treatment_file(landing, "P0099", "2025-03", [treatment_row(referral_date="2025-13-45")]))
    outcomes = pipeline.ingest_files([str(p) for p in paths], "test-run")
    assert [o["status"] for o in outcomes] == ["loaded"] * 3 + ["refused"] + ["loaded"] * 4
    ids = [o["submission_id"] for o in outcomes]
    assert ids == list(range(ids[0], ids[0] + len(paths)))
    stored = db.execute("select file_name from raw.submissions order by submission_id").fetchall()
    assert [name for (name,) in stored] == [p.name for p in paths]


def test_stored_ages_are_postgres_ages(db: psycopg.Connection, landing: Path) -> None:
    """The age kept in raw (so the date of birth can be purged) is Postgres' age() in whole years."""
    births = ["1980-03-10", "1980-03-11", "1980-03-09", "2000-02-29", "1979-12-31", "2008-03-10"]
    rows = [
        treatment_row(episode_id=f"E{n}", client_dob=born, referral_date="2025-03-10") for n, born in enumerate(births)
    ]
    rows.append(treatment_row(episode_id="E-leap", client_dob="2004-02-29", referral_date="2025-02-28"))
    _load(db, write_treatment_file(landing, "P0001", "2025-03", rows))
    pairs = db.execute(
        "select age_at_referral, extract(year from age(referral_date, client_dob))::int from raw.treatment_episodes"
    ).fetchall()
    assert len(pairs) == len(rows) and all(stored == expected for stored, expected in pairs)


def test_embedded_warehouse_orders_text_by_code_point(warehouse_url: str) -> None:
    """The embedded database uses the builtin C.UTF-8 locale: keys and sorts compare bytes, not libc collation."""
    with psycopg.connect(warehouse_url) as conn:
        provider, locale = conn.execute(
            "select datlocprovider, datlocale from pg_database where datname = current_database()"
        ).fetchone()
        ordered = [row[0] for row in conn.execute("select s from unnest(array['b', 'a', 'B', 'é', 'Z']) s order by s")]
    assert (provider, locale) == ("b", "C.UTF-8")
    assert ordered == ["B", "Z", "a", "b", "é"]


def test_oversized_and_linked_files_are_quarantined_and_the_month_loads(
    db: psycopg.Connection, landing: Path, tmp_path: Path
) -> None:
    """A multi-GB file and a symbolic link are refused by the ingest with their reasons and quarantined, unread;
    the other files of the month load."""
    from misuse_warehouse import pipeline

    good = write_treatment_file(landing, "P0001", "2025-03", [treatment_row()])
    good_bytes = good.stat().st_size
    huge = landing / "treatment" / "2025-03" / "treatment_P0002_2025-03.csv"
    huge.touch()
    os.truncate(huge, 3 * 2**30)  # sparse: no disk used
    outside = write_treatment_file(tmp_path / "elsewhere", "P0003", "2025-03", [treatment_row(episode_id="E9")])
    link = landing / "treatment" / "2025-03" / outside.name
    link.symlink_to(outside)
    outside.chmod(0o644)
    os.utime(outside, (1_000_000_000, 1_000_000_000))
    paths = pipeline.discover(str(landing), "2025-03")
    assert paths == [str(good), str(huge), str(link)]  # the link is taken, to be refused
    outcomes = {Path(o["file"]).name: o for o in pipeline.ingest_files(paths, "size-run")}
    assert outcomes[good.name]["status"] == "loaded"
    assert outcomes[huge.name]["refusal_code"] == "file_too_large"
    assert outcomes[link.name]["refusal_code"] == "symlink"
    folder = settings.quarantine_dir() / "treatment" / "2025-03"
    assert json.loads((folder / f"{huge.name}.reason.json").read_text())["code"] == "file_too_large"
    assert (folder / huge.name).stat().st_size == 3 * 2**30 and not huge.exists()
    assert (folder / link.name).is_symlink() and outside.exists()  # the link moved, its target untouched
    # ... mode and times too: quarantine's chmod and receipt stamp act on the link, never through it
    assert (outside.stat().st_mode & 0o777, outside.stat().st_mtime) == (0o644, 1_000_000_000)
    assert "symlink" in (folder / f"{link.name}.report.csv").read_text()
    audit = db.execute("select file_name, status, file_bytes from raw.submissions order by submission_id").fetchall()
    assert audit == [
        (good.name, "loaded", good_bytes),
        (huge.name, "refused", 3 * 2**30),
        (link.name, "refused", len(str(outside))),
    ]
    assert db.execute("select count(*) from raw.treatment_episodes").fetchone() == (1,)
