"""The `ninety` command: one Flask CLI group. Each module here adds its commands with `register(group)`.

The application (and with it any embedded PostgreSQL/Redis) is only built when a command that needs it
runs, so `ninety --help` starts nothing.
"""

from __future__ import annotations

import importlib
import pkgutil

import click
from flask.cli import ScriptInfo


def _make_app():
    from app import create_app

    return create_app()


class NinetyGroup(click.Group):
    def make_context(self, info_name, args, parent=None, **extra):
        extra.setdefault("obj", ScriptInfo(create_app=_make_app, set_debug_flag=False, load_dotenv_defaults=False))
        return super().make_context(info_name, args, parent=parent, **extra)


@click.group(cls=NinetyGroup,
             help="Ninety: artist-direct music, ninety percent to the artist.\n\n"
                  "Reads its settings from the environment (see `ninety config`). With no DATABASE_URL or "
                  "REDIS_URL it starts project-local PostgreSQL and Redis under var/ and stops them on exit.")
def main():
    pass


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    if _info.name.startswith("_"):
        continue
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    if hasattr(_module, "register"):
        _module.register(main)
