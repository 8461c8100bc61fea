"""Many rows of one table at once: for seeding (the benchmark's 100,000-message thread), not for requests.

`Table.insert` runs one statement per row and keeps a record of each: about 0.4 ms a row through SQLAlchemy
Core, 40 s for 100,000. An executemany of the rows' values still costs SQLAlchemy's parameter processing and a
JSON encoding per row, and on PostgreSQL a statement per row (7 s and 20 s measured for 100,000). Copies of one
row need none of that: the template row is read once, and one `INSERT ... SELECT` per batch binds its values
once and takes the new ids as a single parameter (a JSON array read by `json_each` on SQLite, an array
`unnest`ed on PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import String, bindparam, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from emulator.commits import write_changes
from emulator.store import statements
from emulator.store.records import R, Table


def insert_copies(session: Session, table: Table[R], template_id: str, ids: Sequence[str]) -> int:
    """Insert one row per id in `ids`, every column (deferred ones too) but the id and a generated `seq` copied
    from the row of `template_id` as the database holds it. Returns how many were inserted."""
    if table.record.key_names != ("id",):
        raise ValueError(f"copies of {table.name} rows cannot be named by an id alone")
    if not ids:
        return 0
    schema = table.record.mapped.__table__
    copied = [column for column in schema.columns if column.name not in ("id", "seq")]
    write_changes(session)
    connection = session.connection()
    template = connection.execute(select(*copied).where(schema.c.id == template_id)).one()
    if statements.on_sqlite(session):
        new_ids = func.json_each(bindparam("ids", json.dumps(list(ids)), type_=String)).table_valued("value")
    else:
        new_ids = func.unnest(bindparam("ids", list(ids), type_=ARRAY(String))).table_valued("value").render_derived()
    values = [bindparam(column.name, value, type_=column.type) for column, value in zip(copied, template, strict=True)]
    copies = insert(schema).from_select([schema.c.id, *copied], select(new_ids.c.value, *values))
    result = connection.execute(copies.execution_options(preserve_rowcount=True))
    return int(result.rowcount)
