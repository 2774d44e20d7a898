"""Run every benchmark in turn: python -m bench [NAME …]."""

from __future__ import annotations

import importlib
import sys

ALL = ["ledger", "catalog", "adserver", "royalties", "server", "sales", "listening", "takedowns"]


def main(argv: list[str]) -> int:
    names = argv or ALL
    failed = []
    for name in names:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                print(f"# bench.{name}: not present", file=sys.stderr)
                continue
            raise
        print(f"# bench.{name}", file=sys.stderr, flush=True)
        try:
            module.main()
        except Exception as exc:  # noqa: BLE001 - report and go on to the next benchmark
            failed.append(name)
            print(f"# bench.{name} failed: {exc!r}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
