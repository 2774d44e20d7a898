"""Shared template helpers: `page_url` builds a page's address once per mount point, as url_for would."""

from __future__ import annotations

from flask import url_for


def test_page_url_is_url_for_per_mount_point(app):
    page_url = app.jinja_env.globals["page_url"]
    for script_root in ("", "/ninety"):
        with app.test_request_context("/", base_url=f"http://localhost{script_root}/"):
            for endpoint in ("home", "web_accounts.signin", "web_sales.collection", "api_accounts.docs"):
                assert page_url(endpoint) == url_for(endpoint)
                assert page_url(endpoint) == url_for(endpoint)  # built once, answered again
            assert page_url("home") == f"{script_root}/"


def test_the_header_links_follow_the_mount_point(app):
    client = app.test_client()
    plain = client.get("/").text
    mounted = client.get("/", base_url="http://localhost/ninety/").text
    assert 'href="/signin"' in plain and 'href="/ninety/signin"' in mounted
