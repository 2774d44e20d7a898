"""URL converters bounded to the column types behind them, so an id no row can have is a 404, not a 500.

`<int:…>` is PostgreSQL's `integer` (the default primary key); `<bigint:…>` is `bigint` (journal entries,
impressions). Werkzeug's own `int` accepts any number of digits, which the database then refuses.
"""

from __future__ import annotations

from werkzeug.routing import IntegerConverter

from core.fields import PG_BIGINT_MAX, PG_INTEGER_MAX


class PgIntegerConverter(IntegerConverter):
    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", PG_INTEGER_MAX)
        super().__init__(map, *args, **kwargs)


class PgBigIntegerConverter(IntegerConverter):
    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", PG_BIGINT_MAX)
        super().__init__(map, *args, **kwargs)


CONVERTERS = {"int": PgIntegerConverter, "bigint": PgBigIntegerConverter}
# What the OpenAPI document says of each converter's path parameter.
PATH_SCHEMAS = {
    "int": {"type": "integer", "format": "int32", "minimum": 0, "maximum": PG_INTEGER_MAX},
    "bigint": {"type": "integer", "format": "int64", "minimum": 0, "maximum": PG_BIGINT_MAX},
}
