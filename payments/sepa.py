"""SEPA credit transfers: IBAN checks (schwifty) and the pain.001.001.03 file (sepaxml), validated by its XSD."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

from payments.errors import InvalidPayoutMethod, PaymentsError

SCHEMA = "pain.001.001.03"


@dataclass(frozen=True)
class Account:
    iban: str
    bic: str | None


@dataclass(frozen=True)
class SepaPayment:
    end_to_end_id: str
    name: str
    iban: str
    bic: str | None
    amount_cents: int
    description: str


def check_account(iban: str, bic: str | None = None) -> Account:
    """A normalised IBAN (and BIC) in the SEPA zone, or a 422 naming what is wrong."""
    from schwifty import BIC, IBAN
    from schwifty.exceptions import SchwiftyException

    try:
        parsed = IBAN(iban or "")
    except SchwiftyException as exc:
        raise InvalidPayoutMethod(f"That IBAN is not valid: {exc}. Copy it from your bank statement.",
                                  code="invalid_iban", field="iban") from None
    if not parsed.in_sepa_zone:
        raise InvalidPayoutMethod(f"IBANs from {parsed.country_code} cannot receive SEPA transfers; choose Stripe "
                                  "Connect or a manual payout instead.", code="iban_outside_sepa", field="iban")
    bic_text = (bic or "").strip().upper()
    if bic_text:
        try:
            bic_text = str(BIC(bic_text))
        except SchwiftyException as exc:
            raise InvalidPayoutMethod(f"That BIC is not valid: {exc}.", code="invalid_bic", field="bic") from None
    else:
        try:
            derived = parsed.bic
        except SchwiftyException:
            derived = None
        bic_text = str(derived) if derived else None
    return Account(iban=parsed.compact, bic=bic_text or None)


def xsd_path() -> str:
    """The pain.001.001.03 schema shipped inside the sepaxml package."""
    import sepaxml

    return os.path.join(os.path.dirname(sepaxml.__file__), "schemas", f"{SCHEMA}.xsd")


def build_pain001(*, message_id: str, debtor_name: str, debtor: Account, payments: list[SepaPayment],
                  execution_date: date, currency: str = "EUR") -> bytes:
    """One pain.001.001.03 credit-transfer file for `payments`, validated against the XSD before it is returned."""
    from sepaxml import SepaTransfer
    from sepaxml.validation import ValidationError as SepaValidationError

    if not payments:
        raise PaymentsError("There are no SEPA payments to put in a file.", code="empty_sepa_file", status=409)
    config = {"name": debtor_name, "IBAN": debtor.iban, "currency": currency, "batch": True}
    if debtor.bic:
        config["BIC"] = debtor.bic
    transfer = SepaTransfer(config, schema=SCHEMA, clean=True)
    # A stable message id, so the same batch always produces the same file id and the bank refuses a re-send.
    transfer.msg_id = message_id[:35]
    transfer._xml.find("CstmrCdtTrfInitn").find("GrpHdr").find("MsgId").text = transfer.msg_id
    for payment in payments:
        entry = {"name": payment.name, "IBAN": payment.iban, "amount": payment.amount_cents,
                 "execution_date": execution_date, "description": payment.description[:140],
                 "endtoend_id": payment.end_to_end_id[:35]}
        if payment.bic:
            entry["BIC"] = payment.bic
        transfer.add_payment(entry)
    try:
        return transfer.export(validate=True, pretty_print=True)
    except SepaValidationError as exc:
        raise PaymentsError(f"The SEPA file does not validate against {SCHEMA}: {exc.__cause__}",
                            code="invalid_sepa_file", status=500) from exc
