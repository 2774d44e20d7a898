"""What a request or command needs from the composition root: the session, Redis, the clock, settings.

Views and CLI commands call these; domain packages never do (they receive the values as arguments).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import current_app, g
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import Config
from core.clock import Clock


@dataclass
class Runtime:
    config: Config
    engine: Engine
    sessions: sessionmaker[Session]
    redis: Any
    clock: Clock
    extras: dict


def runtime() -> Runtime:
    return current_app.extensions["ninety"]


def db() -> Session:
    """The request's session: committed after a successful response, rolled back otherwise."""
    if "db_session" not in g:
        g.db_session = runtime().sessions()
    return g.db_session


def redis():
    return runtime().redis


def clock() -> Clock:
    return runtime().clock


def config() -> Config:
    return runtime().config
