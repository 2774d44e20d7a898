"""The CLI: close, draft, approve, execute, show, sepa; each refuses clearly when the state does not allow it."""

from __future__ import annotations

from datetime import UTC, datetime

import xmlschema
from click.testing import CliRunner as ClickRunner
from flask.cli import ScriptInfo

from app.cli import main
from payments.sepa import xsd_path
from tests.royalties.helpers import connect, sepa

OCT5 = datetime(2026, 10, 5, tzinfo=UTC)


def ninety(app, *args):
    info = ScriptInfo(create_app=lambda: app, set_debug_flag=False, load_dotenv_defaults=False)
    return ClickRunner().invoke(main, list(args), obj=info)


def test_the_month_end_run_from_the_command_line(world, rapp, stripe_client, connect_standin):
    usd = world.artist("Ana")
    eur = world.artist("Élo", currency="EUR")
    world.gate_revenue(usd["tracks"][0], 20_000_000, OCT5)
    world.gate_revenue(eur["tracks"][0], 20_000_000, OCT5, currency="EUR")
    connect(world, stripe_client, usd["payee_id"])
    sepa(world, eur["payee_id"])
    fin, approver = world.finance("fin"), world.finance("approver")

    early = ninety(rapp, "royalties", "close", "2026-10")
    assert early.exit_code == 1 and "not over yet" in early.output
    world.clock.set(datetime(2026, 11, 2, tzinfo=UTC))
    assert ninety(rapp, "payouts", "draft", "2026-10", "--as", fin.email).exit_code == 1  # not closed
    closed = ninety(rapp, "royalties", "close", "2026-10", "--as", fin.email)
    assert closed.exit_code == 0 and "2026-10 closed" in closed.output

    drafted = ninety(rapp, "payouts", "draft", "2026-10", "--as", fin.email)
    assert drafted.exit_code == 0, drafted.output
    assert "batch 1 for 2026-10 in USD: draft" in drafted.output and "18.00 USD" in drafted.output
    assert ninety(rapp, "payouts", "draft", "2026-10").exit_code == 2  # who are you?
    refused = ninety(rapp, "payouts", "approve", "1", "--as", fin.email)
    assert refused.exit_code == 1 and "second finance user" in refused.output
    assert ninety(rapp, "payouts", "execute", "1").exit_code == 1  # not approved
    assert ninety(rapp, "payouts", "approve", "1", "--as", approver.email).exit_code == 0
    run = ninety(rapp, "payouts", "execute", "1")
    assert run.exit_code == 0 and "batch 1: done, 1 of 1" in run.output
    assert "settled" in ninety(rapp, "payouts", "show", "1").output

    assert ninety(rapp, "payouts", "draft", "2026-10", "--as", fin.email, "--currency", "EUR").exit_code == 0
    assert ninety(rapp, "payouts", "sepa", "2").exit_code == 1  # not executed yet
    ninety(rapp, "payouts", "approve", "2", "--as", approver.email)
    ninety(rapp, "payouts", "execute", "2")
    out = ninety(rapp, "payouts", "sepa", "2")
    assert out.exit_code == 0
    xmlschema.XMLSchema(xsd_path()).validate(out.stdout_bytes.decode())
    assert ninety(rapp, "payouts", "show", "99").exit_code == 1
