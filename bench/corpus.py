"""The upload corpus run: `python -m bench corpus` (or `python -m bench.corpus [DIR]`).

Every file of ../shared/corpus/audio through catalog.inspection: accepted, or refused by code; any other
exception is an error. Each accepted file is then decoded to its end by PyAV, independently of the
inspection code, and counted as undecodable if that fails or its length differs from the recorded one.
Prints a table (markdown) to stdout and one JSON summary line.
"""

from __future__ import annotations

import collections
import json
import sys
from pathlib import Path

import av

from catalog.errors import AudioRejected
from catalog.inspection import inspect_file

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "audio"


def _decoded_s(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(f.samples / f.sample_rate for f in container.decode(container.streams.audio[0]))


def run(directory: Path) -> dict:
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name != "README.md")
    accepted, refused, errors, undecodable = {}, collections.Counter(), {}, []
    for path in files:
        try:
            info = inspect_file(path)
        except AudioRejected as exc:
            refused[exc.code] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - the point of the run is to count these
            errors[path.name] = repr(exc)
            continue
        accepted[path.name] = info
        try:
            if abs(_decoded_s(path) - info.duration_s) > 0.002:
                undecodable.append(path.name)
        except av.error.FFmpegError:
            undecodable.append(path.name)
    by_format = collections.Counter(info.format for info in accepted.values())
    print(f"| corpus ({len(files)} files) | count |\n| --- | --- |")
    print(f"| accepted | {len(accepted)} ({', '.join(f'{k} {v}' for k, v in sorted(by_format.items()))}) |")
    for code, count in sorted(refused.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"| refused: `{code}` | {count} |")
    print(f"| errors (an exception other than a refusal) | {len(errors)} |")
    print(f"| accepted but undecodable | {len(undecodable)} |")
    summary = {"files": len(files), "accepted": len(accepted), "refused": sum(refused.values()),
               "refused_by_code": dict(refused), "errors": errors, "undecodable_accepted": undecodable}
    print(json.dumps(summary))
    return summary


def main(argv: list[str] | None = None) -> None:
    argv = argv or []
    directory = Path(argv[0]) if argv else CORPUS
    if not directory.is_dir():
        print(f"# bench.corpus: {directory} is absent", file=sys.stderr)
        return
    summary = run(directory)
    if summary["errors"] or summary["undecodable_accepted"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
