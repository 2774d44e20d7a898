"""The advertiser console, admin creative review and the reports, over HTTP."""

from __future__ import annotations

import io
import re

from adserver.models import Advertiser, Campaign, Creative
from tests.adserver.conftest import BROWSER_UA, PNG, spot
from tests.conftest import CliRunner, csrf_headers, login

HTML = {"Accept": "text/html", "User-Agent": BROWSER_UA}
FORM = {"csrf_token": "test-csrf"}


def _flash(response) -> str:
    return " ".join(re.findall(r'class="flash[^"]*"[^>]*>([^<]+)<', response.get_data(as_text=True)))


def test_an_advertiser_runs_a_campaign_through_the_console(ad_app, ad_session, make_user, clock):
    user, admin = make_user(roles=("advertiser",)), make_user(roles=("admin",))
    client = ad_app.test_client()
    login(client, user)
    assert "Create an advertiser" in client.get("/advertise", headers=HTML).get_data(as_text=True)
    created = client.post("/advertise", data={**FORM, "name": "Acme <Audio>", "currency": "USD"})
    assert created.status_code == 303
    advertiser = ad_session.query(Advertiser).one()
    assert CliRunner(ad_app).invoke(["ads", "fund", str(advertiser.id), "40.00", "--reference", "wire-7"]).exit_code == 0
    page = client.get(f"/advertise/{advertiser.id}", headers=HTML).get_data(as_text=True)
    assert "$40.00" in page and "Acme &lt;Audio&gt;" in page

    base = {**FORM, "name": "Launch", "total_budget": "100.00", "daily_budget": "10.00", "bid_cpm": "2.50",
            "pacing": "even", "slots": ["gate", "player"], "start_now": "on", "starts_on": "2026-10-01"}
    for bad, message in [({"bid_cpm": "0"}, "more than zero"), ({"bid_cpm": "abc"}, "amount like"),
                         ({"ends_on": "2026-09-01"}, "end after it starts"), ({"bid_cpm": "0.10"}, "floor"),
                         ({"slots": []}, "slots"), ({"daily_budget": "500"}, "daily budget")]:
        response = client.post(f"/advertise/{advertiser.id}/campaigns", data={**base, **bad}, follow_redirects=True,
                               headers=HTML)
        assert message in _flash(response), (bad, _flash(response))
    assert ad_session.query(Campaign).count() == 0
    response = client.post(f"/advertise/{advertiser.id}/campaigns", data=base)
    campaign = ad_session.query(Campaign).one()
    assert response.headers["Location"].endswith(f"/advertise/campaigns/{campaign.id}")
    assert campaign.bid_cpm_micros == 2_500_000 and campaign.slots == ["gate", "player"]

    upload = f"/advertise/campaigns/{campaign.id}/creatives"
    for data, message in [
        ({"kind": "display", "name": "x", "click_url": "javascript:alert(1)", "alt_text": "a",
          "image": (io.BytesIO(PNG), "a.png")}, "http:// or https://"),
        ({"kind": "display", "name": "x", "click_url": "https://a.example", "alt_text": "a",
          "image": (io.BytesIO(b"<svg onload=alert(1)>"), "a.png")}, "PNG, JPEG"),
        ({"kind": "display", "name": "x", "click_url": "https://a.example", "image": (io.BytesIO(PNG), "a.png")},
         "alt text"),
        ({"kind": "audio", "name": "x", "click_url": "https://a.example", "audio": (io.BytesIO(b"ID3 nope"), "a.mp3")},
         "audio file"),
    ]:
        response = client.post(upload, data={**FORM, **data}, content_type="multipart/form-data",
                               follow_redirects=True, headers=HTML)
        assert message in _flash(response), (data["click_url"], _flash(response))
    assert client.post(upload, data={**FORM, "kind": "display", "name": "Banner", "click_url": "https://acme.example/",
                                     "alt_text": "Acme headphones", "image": (io.BytesIO(PNG), "b.png")},
                       content_type="multipart/form-data").status_code == 303
    assert client.post(upload, data={**FORM, "kind": "audio", "name": "Spot", "click_url": "https://acme.example/",
                                     "audio": (io.BytesIO(spot(3)), "s.wav")},
                       content_type="multipart/form-data").status_code == 303
    creatives = ad_session.query(Creative).order_by(Creative.id).all()
    assert [(c.kind, c.status, c.duration_ms) for c in creatives] == [("display", "pending", None),
                                                                      ("audio", "pending", 3000)]

    # nothing serves before review
    listener = ad_app.test_client()
    assert listener.post("/api/v1/ads/decisions", json={"slot": "gate"}).get_json() == {"fill": False}
    reviewer = ad_app.test_client()
    login(reviewer, admin)
    queue = reviewer.get("/admin/ads/creatives", headers=HTML).get_data(as_text=True)
    assert "Banner" in queue and "Spot" in queue and 'alt="Acme headphones"' in queue
    refused = reviewer.post(f"/admin/ads/creatives/{creatives[1].id}/review", data={**FORM, "decision": "reject"},
                            follow_redirects=True, headers=HTML)
    assert "Say why" in _flash(refused)
    reviewer.post(f"/admin/ads/creatives/{creatives[0].id}/review", data={**FORM, "decision": "approve"})
    reviewer.post(f"/admin/ads/creatives/{creatives[1].id}/review",
                  data={**FORM, "decision": "reject", "note": "Too loud"})
    ad_session.expire_all()
    assert [c.status for c in ad_session.query(Creative).order_by(Creative.id)] == ["approved", "rejected"]

    # one impression: the report says so at once
    clock.advance(seconds=10)  # the listener's id is older than the ad's minimum view: its beacon counts now
    body = listener.post("/api/v1/ads/decisions", json={"slot": "gate"}, headers={"User-Agent": BROWSER_UA}).get_json()
    assert body["fill"] and body["creative"]["kind"] == "display"
    assert listener.get(body["impression_url"], headers={"User-Agent": BROWSER_UA}).status_code == 200
    listener.get(body["creative"]["click_url"], headers={"User-Agent": BROWSER_UA})
    report = client.get(f"/api/v1/ads/campaigns/{campaign.id}/report").get_json()
    assert report["total"] == {"period": "total", "impressions": 1, "invalid": 0, "clicks": 1, "ctr_bp": 10_000,
                               "spend_micros": 500, "ecpm_micros": 500_000, "unique_listeners": 1}
    assert report["rows"][0]["period"] == clock.now().strftime("%Y-%m-%d")
    hourly = client.get(f"/api/v1/ads/campaigns/{campaign.id}/report?by=hour&days=1").get_json()
    assert hourly["rows"][0]["period"] == clock.now().strftime("%Y-%m-%dT%H:00Z")
    assert client.get(f"/api/v1/ads/campaigns/{campaign.id}/report?days=x").status_code == 422
    page = client.get(f"/advertise/campaigns/{campaign.id}", headers=HTML).get_data(as_text=True)
    assert "$0.0005" in page and "Too loud" in page

    # another advertiser sees none of it
    stranger = ad_app.test_client()
    login(stranger, make_user(roles=("advertiser",)))
    assert stranger.get(f"/advertise/campaigns/{campaign.id}", headers=HTML).status_code == 403
    assert stranger.get(f"/api/v1/ads/campaigns/{campaign.id}/report").status_code == 403
    assert stranger.post(f"/advertise/{advertiser.id}/campaigns", data=base).status_code == 403


def test_campaigns_api(ad_app, make_advertiser, make_user):
    advertiser = make_advertiser()
    client = ad_app.test_client()
    login(client, advertiser.user)
    good = {"advertiser_id": advertiser.id, "name": "API", "starts_at": "2026-10-01T00:00:00Z",
            "total_budget_micros": 50_000_000, "daily_budget_micros": 5_000_000, "bid_cpm_micros": 1_500_000,
            "slots": ["gate"]}
    created = client.post("/api/v1/ads/campaigns", json=good, headers=csrf_headers())
    assert created.status_code == 201 and created.get_json()["currency"] == "USD"
    for bad in ({"bid_cpm_micros": 0}, {"ends_at": "2026-09-01T00:00:00Z"}, {"slots": ["sidebar"]},
                {"bid_cpm_micros": 1_500_001}, {"name": ""}, {"starts_at": "soon"}, {"surprise": 1}):
        response = client.post("/api/v1/ads/campaigns", json={**good, **bad}, headers=csrf_headers())
        assert response.status_code == 422 and response.mimetype == "application/problem+json", bad
    assert [c["name"] for c in client.get("/api/v1/ads/campaigns").get_json()["items"]] == ["API"]
    other = ad_app.test_client()
    login(other, make_user(roles=("advertiser",)))
    assert other.post("/api/v1/ads/campaigns", json=good, headers=csrf_headers()).status_code == 403
