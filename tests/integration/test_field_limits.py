"""The one definition of text lengths (service.domain.fields.MAX_LENGTHS) is
the schema's: every CHECK on a column's length in the migrated database says
the same number, and no such CHECK is missing from it."""

from __future__ import annotations

import re

import asyncpg

from service.domain.fields import MAX_LENGTHS

_LONGEST = re.compile(r"length\((\w+)\) <= (\d+)")


async def test_max_lengths_are_the_check_constraints(db_dsn: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        rows = await conn.fetch(
            """SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def
               FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace"""
        )
    finally:
        await conn.close()
    in_schema = {
        (row["tbl"], column): int(longest)
        for row in rows
        for column, longest in _LONGEST.findall(row["def"])
    }
    # BETWEEN 1 AND 200 comes back as (length(x) >= 1) AND (length(x) <= 200).
    assert ("bookings", "citizen_name") in in_schema
    assert in_schema == MAX_LENGTHS
