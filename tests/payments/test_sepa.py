"""The SEPA rail: IBANs checked with schwifty; pain.001.001.03 built with sepaxml and valid against its XSD."""

from __future__ import annotations

from datetime import date

import pytest
import xmlschema
from lxml import etree

from payments.errors import InvalidPayoutMethod, PaymentsError
from payments.sepa import SepaPayment, build_pain001, check_account, xsd_path

NS = {"p": "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"}


def test_iban_is_normalised_and_its_bic_derived():
    account = check_account("de89 3704 0044 0532 0130 00")
    assert account.iban == "DE89370400440532013000"
    assert account.bic == "COBADEFFXXX"


@pytest.mark.parametrize("iban,code", [
    ("DE89370400440532013001", "invalid_iban"),   # checksum
    ("XX00", "invalid_iban"),
    ("", "invalid_iban"),
    ("BR1500000000000010932840814P2", "iban_outside_sepa"),
])
def test_bad_ibans_are_refused_with_a_reason(iban, code):
    with pytest.raises(InvalidPayoutMethod) as exc:
        check_account(iban)
    assert exc.value.code == code and exc.value.status == 422


def test_the_file_validates_against_the_xsd_and_adds_up():
    debtor = check_account("DE89370400440532013000")
    payments = [
        SepaPayment("NINETY-I1", "Zoë Ångström", "FR1420041010050500013M02606", None, 1234, "Ninety 2026-10 · Album"),
        SepaPayment("NINETY-I2", "Bob <script>", "NL91ABNA0417164300", "ABNANL2A", 99_999, "Ninety 2026-10 · EP"),
    ]
    xml = build_pain001(message_id="NINETY-B3", debtor_name="Ninety Music Ltd", debtor=debtor, payments=payments,
                        execution_date=date(2026, 11, 2))
    schema = xmlschema.XMLSchema(xsd_path())
    schema.validate(xml.decode())  # raises if invalid
    doc = etree.fromstring(xml)
    assert doc.findtext(".//p:GrpHdr/p:MsgId", namespaces=NS) == "NINETY-B3"
    assert doc.findtext(".//p:GrpHdr/p:NbOfTxs", namespaces=NS) == "2"
    assert doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=NS) == "1012.33"
    amounts = [e.text for e in doc.findall(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", namespaces=NS)]
    assert amounts == ["12.34", "999.99"]
    assert [e.text for e in doc.findall(".//p:EndToEndId", namespaces=NS)] == ["NINETY-I1", "NINETY-I2"]


def test_an_empty_file_is_refused():
    with pytest.raises(PaymentsError) as exc:
        build_pain001(message_id="X", debtor_name="N", debtor=check_account("DE89370400440532013000"), payments=[],
                      execution_date=date(2026, 11, 2))
    assert exc.value.code == "empty_sepa_file"
