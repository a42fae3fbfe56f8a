"""Model instances from the rows of a hand-written join, and rows for a hand-written
INSERT, converted as the ORM would.

The claim's read-back and the attempts' INSERT run for every batch a worker sends:
written as SQL they need no query compilation (Django's INSERT compiler was a quarter
of a pump's CPU time).
"""

from __future__ import annotations

import sqlite3
from functools import cache, cached_property

from django.db import connection, connections, models
from django.db.models.base import ModelState


class Loader:
    """Reads `model`'s concrete columns, selected from table alias `alias`."""

    def __init__(self, model: type[models.Model], alias: str) -> None:
        self.model, self.alias = model, alias
        self.fields = model._meta.concrete_fields
        self.width = len(self.fields)
        self.attnames = [f.attname for f in self.fields]

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

    def load(self, values: tuple | list, db=None) -> models.Model:
        """An instance as `Model.from_db` makes it, without `Model.__init__`'s work per
        field (the values are the database's, converted: there is nothing to check).
        `db`: the connection itself (`current()`) rather than its proxy, whose every
        use costs a thread-local lookup."""
        values = list(values)
        db = db or current()
        for i, converters, column in self._converters:
            values[i] = _apply(converters, column, values[i], db)
        return instance(self.model, dict(zip(self.attnames, values, strict=True)), db.alias)


def current():
    """The default connection's wrapper itself, for loops that use it many times."""
    return connections[connection.alias]


def instance(model: type[models.Model], values: dict, db: str | None = None) -> models.Model:
    """A `model` instance holding `values` (by attname), as read from database `db` (or
    not saved yet, with `db` None). Model.__init__ would set each field through its
    descriptor and send pre_init/post_init: nothing here listens for them, and a
    pump builds thousands of instances a second."""
    obj = model.__new__(model)
    obj.__dict__.update(values)
    obj._state = ModelState()
    if db is not None:
        obj._state.adding, obj._state.db = False, db
    return obj


def relate(obj: models.Model, name: str, related: models.Model | None) -> None:
    """Cache `related` as `obj.name` when `obj` already holds its id (what the
    descriptor's __set__ would check and set again)."""
    obj._meta.get_field(name).set_cached_value(obj, related)


# Values of these fields reach the database driver as they are (what the ORM's
# preparation would make of them is the same value); all others are prepared.
_AS_THEY_ARE = (
    models.BooleanField, models.CharField, models.FloatField, models.IntegerField,
    models.TextField,
)  # fmt: skip


class Inserter:
    """INSERTs of `model`'s rows (all concrete fields but an automatic primary key),
    returning the new ids where the database can. None is NULL for every field, as the
    ORM prepares it, without asking the field (a nullable JSON column costs no more
    than its NULL)."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key]
        self.prepared = [
            (f.attname, isinstance(f, _AS_THEY_ARE) and not f.is_relation, f) for f in self.fields
        ]

    def _sql(self, rows: int, returning: bool) -> str:
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in self.fields)
        one = f"({', '.join(['%s'] * len(self.fields))})"
        sql = f"INSERT INTO {quote(self.model._meta.db_table)} ({columns}) VALUES "
        sql += ", ".join([one] * rows)
        return sql + f" RETURNING {quote(self.model._meta.pk.column)}" if returning else sql

    def statements(self, objs: list[models.Model]) -> list[tuple[str, list]]:
        """One statement per batch the database takes (its limit on parameters)."""
        db = current()
        returning = db.features.can_return_rows_from_bulk_insert
        size = max(db.ops.bulk_batch_size(self.fields, objs) or len(objs), 1)
        out = []
        for at in range(0, len(objs), size):
            chunk, params = objs[at : at + size], []
            for obj in chunk:
                for attname, plain, field in self.prepared:
                    value = getattr(obj, attname)
                    params.append(
                        value if plain or value is None else field.get_db_prep_save(value, db)
                    )
            out.append((self._sql(len(chunk), returning), params))
        return out


class Updater:
    """UPDATEs setting given fields of `model`'s rows chosen by primary key and the value
    of one more field (`held_by`: a claim token), the SQL written once per shape (the
    fields set and the number of rows) and the values prepared as the ORM would."""

    def __init__(self, model: type[models.Model], held_by: str) -> None:
        self.model, self.pk = model, model._meta.pk
        self.held_by = model._meta.get_field(held_by)
        self.fields = {f.attname: f for f in model._meta.concrete_fields}
        self._sqls: dict[tuple, str] = {}

    def _sql(self, names: tuple[str, ...], rows: int) -> str:
        quote = connection.ops.quote_name
        sets = ", ".join(f"{quote(self.fields[name].column)} = %s" for name in names)
        marks = ", ".join(["%s"] * rows)
        return (
            f"UPDATE {quote(self.model._meta.db_table)} SET {sets} "
            f"WHERE {quote(self.pk.column)} IN ({marks}) AND {quote(self.held_by.column)} = %s"
        )

    def statement(self, values: dict, pks: list, held_by) -> tuple[str, list]:
        """Set `values` (by attname) on the rows of `pks` still held by `held_by`."""
        db = current()
        names = tuple(values)
        key = (names, len(pks))
        sql = self._sqls.get(key)
        if sql is None:
            sql = self._sqls[key] = self._sql(names, len(pks))
        params = [self.fields[name].get_db_prep_save(values[name], db) for name in names]
        params += [self.pk.get_db_prep_value(pk, db) for pk in pks]
        params.append(self.held_by.get_db_prep_value(held_by, db))
        return sql, params


def _converters_of(column) -> list:
    return connection.ops.get_db_converters(column) + column.get_db_converters(connection)


def _apply(converters: list, column, value, db=connection):
    for converter in converters:
        value = converter(value, column, db)
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
