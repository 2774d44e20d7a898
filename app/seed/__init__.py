"""The demo data `ninety demo` seeds: one module per area, each with `ORDER` and `seed(runtime, state)`.

Seeders run in ORDER; `state` is a dict they share (the accounts created, the artists, the tracks …).
Seeding happens once per database: a marker row (the demo admin) makes later runs skip it.
"""

from __future__ import annotations

import importlib
import pkgutil


def seeders() -> list:
    modules = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "seed"):
            modules.append(module)
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))
