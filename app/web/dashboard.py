"""The artist dashboard: live balance, daily earnings (a pygal chart rendered server-side, and the same
numbers as a table), per-track figures, payout history, statements and the payout method."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

from flask import Blueprint, render_template, request
from markupsafe import Markup
from sqlalchemy import select

from app import context
from app.auth import access
from app.web.royalties import require_payee, viewable_payees
from core.errors import NotFound
from core.money import Money

bp = Blueprint("web_dashboard", __name__, url_prefix="/dashboard")

CHART_DAYS = 30


def earnings_chart(days: list, currency: str) -> Markup:
    """An accessible SVG bar chart from pygal; no JavaScript, nothing fetched from elsewhere."""
    import pygal
    from pygal.style import Style

    style = Style(background="transparent", plot_background="transparent", foreground="#1b1b1f",
                  foreground_strong="#1b1b1f", foreground_subtle="#e3e3ea", colors=("#0b6e4f",),
                  font_family="system-ui, sans-serif")
    title = f"Earnings per day, last {len(days)} days ({currency})"
    chart = pygal.Bar(js=[], disable_xml_declaration=True, show_legend=False, height=280, width=900,
                      x_label_rotation=-45, show_minor_x_labels=False, style=style, margin=10,
                      title=title, explicit_size=False)
    chart.x_labels = [day.strftime("%b %d") for day, _ in days]
    chart.x_labels_major = chart.x_labels[::5]
    # Bar heights are drawing coordinates only; the exact amounts are the labels and the table beside.
    chart.add("Earnings", [{"value": micros / 1_000_000, "label": Money(micros, currency).format(full=True)}
                           for _, micros in days])
    chart.value_formatter = lambda value: f"{value:,.2f}"
    return _as_image(chart.render(is_unicode=True), alt=title)


def _as_image(svg: str, *, alt: str) -> Markup:
    """The SVG as an <img> (a data: URL), not inline markup: pygal writes an inline <style>, style
    attributes and a tooltip <script> that the page's Content-Security-Policy refuses; inside an image
    they are the image's own, and scripts never run. Only what a URL or the attribute cannot hold is
    percent-encoded, so the markup stays readable (and testable) in the page."""
    svg = re.sub(r"<script\b.*?</script>", "", svg, flags=re.S)
    data = "".join(c if c.isascii() and c.isprintable() and c not in '%#"&' else quote(c) for c in svg)
    return Markup('<img class="chart-image" width="900" height="280" alt="{}" src="data:image/svg+xml;charset=utf-8,{}">'
                  ).format(alt, Markup(data))


@bp.get("")
@access()
def index():
    from payments.services import current_method
    from rights.services import held_lines
    from royalties import services
    from royalties.earnings import premium_earnings
    from royalties.models import PayoutBatch, PayoutItem
    from royalties.statements import Statement

    session = context.db()
    payees = viewable_payees()
    payee_id = request.args.get("payee", type=int)
    if payee_id is None:
        if not payees:
            return render_template("dashboard/empty.html"), 200
        payee = payees[0]
    else:
        payee = require_payee(payee_id)
    balances = services.balances_for_payee(session, payee.id)
    currencies = [b["currency"] for b in balances] or [context.config().currency]
    currency = request.args.get("currency", currencies[0]).upper()
    if currency not in currencies:
        raise NotFound(f"{payee.display_name} has no earnings in {currency[:3]}.", code="currency_not_found")
    today = context.clock().now().date()
    days = services.daily_earnings(session, payee.id, currency, start=today - timedelta(days=CHART_DAYS - 1),
                                   end=today)
    history = session.execute(select(PayoutItem, PayoutBatch).join(PayoutBatch)
                              .where(PayoutItem.payee_id == payee.id, PayoutBatch.status != "cancelled")
                              .order_by(PayoutItem.id.desc()).limit(24)).all()
    return render_template(
        "dashboard/index.html", payee=payee, payees=payees, balances=balances, currency=currency, days=days,
        chart=earnings_chart(days, currency), tracks=services.track_table(session, payee.id, currency),
        history=history, statements=services.statement_periods(session, payee.id),
        premium=premium_earnings(session, payee.id, currency),
        held_cases=held_lines(session, payee.id, currency=currency), held_sources=Statement.held_sources,
        method=current_method(session, payee.id))
