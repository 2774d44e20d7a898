from __future__ import annotations

import pytest

from tests.payments.connect_standin import RunningStandIn


@pytest.fixture
def connect_standin():
    """Stripe Connect's /v1/accounts and /v1/transfers over HTTP; `.url` is the base for the SDK."""
    with RunningStandIn() as standin:
        yield standin


@pytest.fixture
def stripe_client(connect_standin):
    from payments.stripe_client import SdkStripeClient

    return SdkStripeClient(connect_standin.api_key, api_base=connect_standin.url)
