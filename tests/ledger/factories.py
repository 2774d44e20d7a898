"""Small builders for ledger tests."""

from __future__ import annotations

from datetime import UTC, datetime

from ledger.services import Entry, Posting

WHEN = datetime(2026, 10, 15, 12, 0, tzinfo=UTC)


def transfer(key: str, debit: str, credit: str, amount_micros: int, *, currency: str = "USD", when=WHEN,
             metadata=None, ref=None) -> Entry:
    return Entry(key, when, f"test {key}", [
        Posting(debit, "debit", amount_micros, currency, ref),
        Posting(credit, "credit", amount_micros, currency, ref),
    ], metadata if metadata is not None else {"event": "test"})


def flush(key: str, advertiser: int, payees: dict[int, int], platform_micros: int, *, when=WHEN) -> Entry:
    """An ad-flush-shaped entry: Dr advertiser prepaid; Cr payees; Cr income:ads."""
    total = sum(payees.values()) + platform_micros
    postings = [Posting(f"liabilities:advertiser:{advertiser}:prepaid", "debit", total, "USD")]
    postings += [Posting(f"liabilities:payee:{p}:payable", "credit", amount, "USD", "track:1")
                 for p, amount in payees.items()]
    postings.append(Posting("income:ads", "credit", platform_micros, "USD"))
    return Entry(key, when, "ad flush", postings, {"event": "ad_flush"})


def fund(key: str, advertiser: int, amount_micros: int, *, when=WHEN) -> Entry:
    return transfer(key, "assets:stripe", f"liabilities:advertiser:{advertiser}:prepaid", amount_micros,
                    when=when, metadata={"event": "advertiser_funding"})
