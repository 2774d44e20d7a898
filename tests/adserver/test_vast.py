"""VAST 4.2 inline audio ads, validated against the official schema."""

from lxml import etree

from adserver import stream as ad_stream
from tests.adserver.conftest import BROWSER_UA

NS = {"v": "http://www.iab.com/VAST"}


def _schema(shared_dir):
    return etree.XMLSchema(etree.parse(str(shared_dir / "standards" / "vast" / "vast_4.2.xsd")))


def test_vast_audio_ad_validates_and_tracks(ad_app, make_advertiser, make_campaign, shared_dir, ad_redis, clock):
    campaign = make_campaign(make_advertiser(), slots=("player",), kinds=("audio",))
    client = ad_app.test_client()
    response = client.get("/ads/vast?slot=player", headers={"User-Agent": "VLC/3.0.20 LibVLC/3.0.20"})
    assert response.status_code == 200 and response.mimetype == "application/xml"
    doc = etree.fromstring(response.data)
    _schema(shared_dir).assertValid(doc)
    ad = doc.find("v:Ad", NS)
    assert ad.get("adType") == "audio"
    assert doc.findtext(".//v:AdServingId", namespaces=NS) == ad.get("id")
    assert doc.findtext(".//v:Duration", namespaces=NS) == "00:00:02.000"
    media = doc.find(".//v:MediaFile", NS)
    assert media.get("type") == "audio/wav"
    events = {t.get("event") for t in doc.iterfind(".//v:Tracking", NS)}
    assert events == {"start", "firstQuartile", "midpoint", "thirdQuartile", "complete"}
    assert doc.findtext("v:Ad/v:InLine/v:Error", namespaces=NS)
    # the player fetches the file and fires the impression and events
    path = media.text.strip().split("localhost", 1)[-1]
    assert client.get(path).status_code == 200
    impression = doc.findtext(".//v:Impression", namespaces=NS).strip().split("localhost", 1)[-1]
    clock.advance(seconds=3)  # the spot has played through (a brand-new listener's beacon is held until then)
    assert client.get(impression, headers={"User-Agent": "VLC/3.0.20 LibVLC/3.0.20"}).status_code == 200
    assert ad_stream.length(ad_redis) == 1  # counted (the player is not told)
    start = next(t for t in doc.iterfind(".//v:Tracking", NS) if t.get("event") == "start").text.strip()
    assert client.get(start.split("localhost", 1)[-1]).status_code == 200
    assert campaign.id


def test_no_ad_vast_validates(ad_app, shared_dir):
    response = ad_app.test_client().get("/ads/vast?slot=player", headers={"User-Agent": BROWSER_UA})
    doc = etree.fromstring(response.data)
    _schema(shared_dir).assertValid(doc)
    assert doc.find("v:Ad", NS) is None


def test_vast_bad_input_is_a_problem(ad_app):
    client = ad_app.test_client()
    for query in ("slot=gate", "slot=player&track=abc", "slot=player&track=99999999999"):
        response = client.get(f"/ads/vast?{query}")
        assert response.status_code == 422 and response.mimetype == "application/problem+json"
