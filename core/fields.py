"""Marshmallow fields bounded to the column types behind them, so input no row can hold is a 422, not a 500.

A bare `fields.Integer()` takes any size of number; PostgreSQL then refuses it (`integer out of range`). The
bounds also reach the OpenAPI document (apispec turns `Range` into minimum/maximum).
"""

from __future__ import annotations

from marshmallow import fields, validate

PG_INTEGER_MAX = 2**31 - 1
PG_BIGINT_MAX = 2**63 - 1


def Id(**kwargs) -> fields.Integer:
    """A row id in an `integer` primary key: a whole number from 1 to 2^31 - 1 (JSON numbers only)."""
    kwargs.setdefault("strict", True)
    return fields.Integer(validate=validate.Range(min=1, max=PG_INTEGER_MAX), **kwargs)


def BigId(**kwargs) -> fields.Integer:
    """A row id in a `bigint` primary key (journal entries, impressions)."""
    kwargs.setdefault("strict", True)
    return fields.Integer(validate=validate.Range(min=1, max=PG_BIGINT_MAX), **kwargs)
