"""Model instances from the rows of a hand-written join, converted as the ORM would.

The claim's read-back runs for every batch a worker sends: written as SQL it is one
statement (on PostgreSQL, one with the claim itself) and needs no query compilation.
"""

from __future__ import annotations

import sqlite3
from functools import cache, cached_property

from django.db import connection, models


class Loader:
    """Reads `model`'s concrete columns, selected from table alias `alias`."""

    def __init__(self, model: type[models.Model], alias: str) -> None:
        self.model, self.alias = model, alias
        self.fields = model._meta.concrete_fields
        self.width = len(self.fields)

    @cached_property
    def columns(self) -> list[str]:
        quote = connection.ops.quote_name
        return [f"{self.alias}.{quote(f.column)}" for f in self.fields]

    @cached_property
    def _converters(self) -> list[tuple[int, list, object]]:
        found = []
        for i, field in enumerate(self.fields):
            column = field.get_col(self.alias)
            converters = _converters_of(column)
            if converters:
                found.append((i, converters, column))
        return found

    def load(self, values: tuple | list) -> models.Model:
        values = list(values)
        for i, converters, column in self._converters:
            values[i] = _apply(converters, column, values[i])
        return self.model.from_db(connection.alias, None, values)


def _converters_of(column) -> list:
    return connection.ops.get_db_converters(column) + column.get_db_converters(connection)


def _apply(converters: list, column, value):
    for converter in converters:
        value = converter(value, column, connection)
    return value


def can_return_from_update() -> bool:
    """`UPDATE … RETURNING`: PostgreSQL, and SQLite from 3.35."""
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)


@cache
def _field_converters(model: type[models.Model], name: str) -> tuple[list, object]:
    column = model._meta.get_field(name).get_col(model._meta.db_table)
    return _converters_of(column), column


def convert(model: type[models.Model], name: str, value):
    """A value of `model.name` as read from the database, converted as the ORM would."""
    converters, column = _field_converters(model, name)
    return _apply(converters, column, value)
