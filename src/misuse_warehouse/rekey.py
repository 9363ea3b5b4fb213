"""Re-keying after the pseudonymisation secret is rotated: every raw person_key recomputed with the new key.

A rotation breaks linkage: a person loaded under the old key and again under the new one would
count as two. Re-keying recomputes `person_key` from the raw attributor with the new secret, in
one transaction over every raw table that has one; the next pipeline run rebuilds the marts from
the re-keyed raw rows. The old secret is not needed.

Rows whose attributor was already purged (retention) cannot be recomputed. They take the new key
of the same person where another row still holds that person's attributor (old key -> new key);
otherwise HMAC(new secret, "rekeyed|" + old key), which keeps them linked to each other but not to
data loaded later. Counts go to ops.key_rotations.
"""

from __future__ import annotations

import hashlib
import hmac

import psycopg
from psycopg import sql

from misuse_warehouse import pseudonymise, writer_lease
from misuse_warehouse.contracts import Contract, all_contracts


def _unmatched_key(key: bytes, old: str) -> str:
    return hmac.new(key, f"rekeyed|{old}".encode(), hashlib.sha256).hexdigest()


def rekey(conn: psycopg.Connection, key: bytes) -> list[dict[str, int | str]]:
    """Recompute every person_key with `key`; returns per raw table what was done."""
    contracts = [c for c in all_contracts().values() if c.attributor]
    with writer_lease.lease("rekey"), conn.transaction():
        conn.execute("select pg_advisory_xact_lock(hashtext('misuse_warehouse.rekey'))")
        rows = {c.table: _rows(conn, c) for c in contracts}
        mapping: dict[str, str] = {}
        new_keys: dict[str, list[tuple[int, int, str | None]]] = {}
        for contract in contracts:
            table_keys = []
            for submission_id, source_row, initials, dob, sex, old in rows[contract.table]:
                if initials is None and dob is None:
                    continue  # purged: resolved below, once every table's mapping is known
                new = pseudonymise.person_key(key, initials or "", dob.isoformat() if dob else "", sex or "")
                if old and new:
                    mapping[old] = new
                table_keys.append((submission_id, source_row, new))
            new_keys[contract.table] = table_keys
        summary = []
        for contract in contracts:
            mapped = unmatched = 0
            for submission_id, source_row, initials, dob, _sex, old in rows[contract.table]:
                if initials is not None or dob is not None or old is None:
                    continue
                if old in mapping:
                    new, mapped = mapping[old], mapped + 1
                else:
                    new, unmatched = _unmatched_key(key, old), unmatched + 1
                new_keys[contract.table].append((submission_id, source_row, new))
            rekeyed = _apply(conn, contract, new_keys[contract.table])
            conn.execute(
                """insert into ops.key_rotations (raw_table, rows_rekeyed, rows_mapped_from_purged,
                       rows_unmatched_purged) values (%s, %s, %s, %s)""",
                (f"raw.{contract.table}", rekeyed, mapped, unmatched),
            )
            summary.append(
                {
                    "table": f"raw.{contract.table}",
                    "rekeyed": rekeyed,
                    "purged_mapped": mapped,
                    "purged_unmatched": unmatched,
                }
            )
    return summary


def _rows(conn: psycopg.Connection, contract: Contract) -> list[tuple]:
    attributor = contract.attributor
    query = sql.SQL("select submission_id, source_row, {}, {}, {}, person_key from {}").format(
        *(sql.Identifier(attributor[role]) for role in ("initials", "dob", "sex")),
        sql.Identifier("raw", contract.table),
    )
    return conn.execute(query).fetchall()


def _apply(conn: psycopg.Connection, contract: Contract, keys: list[tuple[int, int, str | None]]) -> int:
    conn.execute(
        "create temporary table new_person_keys (submission_id bigint, source_row integer, person_key text)"
        " on commit drop"
    )
    with conn.cursor().copy("copy new_person_keys from stdin") as copy:
        for row in keys:
            copy.write_row(row)
    updated = conn.execute(
        sql.SQL(
            """update {} as rows set person_key = new_person_keys.person_key
               from new_person_keys
               where new_person_keys.submission_id = rows.submission_id
                 and new_person_keys.source_row = rows.source_row
                 and rows.person_key is distinct from new_person_keys.person_key"""
        ).format(sql.Identifier("raw", contract.table))
    ).rowcount
    conn.execute("drop table new_person_keys")
    return updated
