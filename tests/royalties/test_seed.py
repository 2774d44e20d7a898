"""The demo seed: a month of history, the month closed and a paid batch; the dashboard shows it."""

from __future__ import annotations

from sqlalchemy import select

from royalties.models import PayoutBatch, PayoutItem
from tests.conftest import login


def test_the_demo_has_a_month_of_history_and_a_paid_batch(app):
    from app.seed import seeders
    from catalog.models import Payee
    from core.users import User

    runtime = app.extensions["ninety"]
    state: dict = {}
    for module in seeders():
        module.seed(runtime, state)
    with runtime.sessions() as s:
        batch = s.get(PayoutBatch, state["payout_batch_id"])
        assert batch.status == "done" and batch.period == state["closed_period"]
        items = s.scalars(select(PayoutItem).where(PayoutItem.batch_id == batch.id)).all()
        assert items and all(i.status == "settled" for i in items)
        payee = s.get(Payee, items[0].payee_id)
        user = s.get(User, payee.user_id)
        s.expunge(user)
    client = app.test_client()
    login(client, user)
    page = client.get(f"/dashboard?payee={payee.id}")
    assert page.status_code == 200
    assert f"Ninety royalties {batch.period}" in page.text and "settled" in page.text
    assert page.text.count("<rect") > 10  # the chart has bars
