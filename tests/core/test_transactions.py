"""Services never commit (DESIGN.md "Who owns the transaction"), held by construction.

Every domain package is parsed; a `.commit()` call (other than releasing a savepoint the same function took
with `begin_nested()`) or a parameter named `commit` is allowed only where this file lists it:
- ALLOWED: the owners DESIGN.md names (one worker batch, the unit-of-work helper) and the processes that must
  survive a crash half-way and so commit per step; each one's docstring (or its module's) must say so;
- PENDING: files other engineers are still changing; the lead removes each entry when that work lands.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_PACKAGES = ("core", "ledger", "media", "catalog", "adserver", "rights", "sales", "entitlements",
                   "royalties", "payments")

RESUMABLE = r"commits per step|commits on its own|resumable|resumes"
OWNER = r"owned here|unit of work"

# (path, function) -> what its docstring (or its module's) must say, and why it may commit.
ALLOWED: dict[tuple[str, str], str] = {
    ("core/db.py", "transaction"): OWNER,  # the helper owners commit with
    ("royalties/worker.py", "process_impressions"): OWNER,  # one worker batch is one transaction
    ("royalties/worker.py", "process_invalid"): OWNER,
    ("royalties/close.py", "close_month"): RESUMABLE,  # month close: commits once, a rerun resumes
    ("royalties/payouts.py", "execute_batch"): RESUMABLE,  # payout execution: each step commits
    ("royalties/payouts.py", "_move_to_transit"): RESUMABLE,
    ("royalties/payouts.py", "_settle"): RESUMABLE,
    ("royalties/payouts.py", "_reverse"): RESUMABLE,
    ("core/partitions.py", "ensure_months"): RESUMABLE,  # each partition commits on its own, before a batch
    ("catalog/renditions.py", "perform"): RESUMABLE,  # a media job: status, each file, progress commit per step
    ("catalog/renditions.py", "_work"): RESUMABLE,
    ("catalog/renditions.py", "set"): RESUMABLE,  # _Progress.set: the studio reads progress while the job runs
}

# A content-addressed file is moved into place with `PendingBlob.commit()`: a rename, not a transaction.
FILE_COMMITS = {("catalog/storage.py", "put_bytes"), ("catalog/uploads.py", "upload_track")}

PENDING: dict[tuple[str, str], str] = {}


def _modules():
    for package in DOMAIN_PACKAGES:
        folder = ROOT / package
        if folder.is_dir():
            yield from sorted(folder.rglob("*.py"))


def _savepoints(function: ast.AST) -> set[str]:
    """Names bound to `….begin_nested()` in this function: their .commit() releases a savepoint."""
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            call = node.value.func
            if isinstance(call, ast.Attribute) and call.attr == "begin_nested":
                names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        if isinstance(node, ast.withitem) and isinstance(node.optional_vars, ast.Name):
            call = node.context_expr.func if isinstance(node.context_expr, ast.Call) else None
            if isinstance(call, ast.Attribute) and call.attr == "begin_nested":
                names.add(node.optional_vars.id)
    return names


def _scan(rel: str, source: str) -> list[tuple[str, str, str, ast.AST]]:
    found = []
    tree = ast.parse(source, filename=rel)
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
        if any(a.arg == "commit" for a in arguments):
            found.append((rel, function.name, "a `commit` parameter", function))
        savepoints = _savepoints(function)
        own_body = [n for n in ast.walk(function) if n is not function]
        nested = {id(n) for f in own_body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                  for n in ast.walk(f)}
        for node in own_body:
            if id(node) in nested or not isinstance(node, ast.Call):
                continue
            if not (isinstance(node.func, ast.Attribute) and node.func.attr == "commit"):
                continue
            receiver = ast.unparse(node.func.value)
            if receiver in savepoints:
                continue
            if receiver == "pending" and (rel, function.name) in FILE_COMMITS:
                continue
            found.append((rel, function.name, f"{receiver}.commit() (line {node.lineno})", function))
    return found


def findings() -> list[tuple[str, str, str, ast.AST]]:
    """(path, function, what, function node) for every commit call and `commit` parameter."""
    found = []
    for path in _modules():
        found += _scan(path.relative_to(ROOT).as_posix(), path.read_text())
    return found


def test_services_never_commit_outside_the_documented_owners_and_resumable_processes():
    offenders = [f"{path}:{name}: {what}" for path, name, what, _ in findings()
                 if (path, name) not in ALLOWED and (path, name) not in PENDING]
    assert offenders == [], (
        "services never commit; the caller owns the transaction (DESIGN.md). Flush instead, and commit in "
        "the request/CLI/worker that called you:\n  " + "\n  ".join(offenders))


def test_every_allowed_commit_is_documented_and_still_needed():
    by_place = {(path, name): function for path, name, _, function in findings()}
    for (path, name), must_say in ALLOWED.items():
        assert (path, name) in by_place, f"{path}:{name} no longer commits; remove it from ALLOWED"
        module_doc = ast.get_docstring(ast.parse((ROOT / path).read_text())) or ""
        doc = (ast.get_docstring(by_place[path, name]) or "") + "\n" + module_doc
        assert re.search(must_say, doc), f"{path}:{name} commits but its docstring does not say why ({must_say})"


def test_the_scan_finds_commits_and_spares_savepoints_and_file_moves():
    source = (
        "def service(session, *, commit=True):\n    session.add(1)\n    session.commit()\n"
        "def outer(db):\n    def inner():\n        db.commit()\n    return inner\n"
        "def savepoint(session):\n    sp = session.begin_nested()\n    sp.commit()\n"
        "    with session.begin_nested() as other:\n        other.commit()\n"
        "def upload_track(session, pending):\n    pending.commit()\n")
    found = [(name, what) for _, name, what, _ in _scan("catalog/uploads.py", source)]
    assert found == [("service", "a `commit` parameter"), ("service", "session.commit() (line 3)"),
                     ("inner", "db.commit() (line 6)")]
    elsewhere = {(name, what) for _, name, what, _ in _scan("catalog/other.py", source)}
    assert ("upload_track", "pending.commit() (line 14)") in elsewhere  # a file move only where listed
