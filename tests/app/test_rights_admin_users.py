"""Admin pages for accounts and roles (until now `ninety users roles` only): find, change roles, and the
person's sessions end; only admins may; an admin cannot take the admin role from themselves."""

from __future__ import annotations

from core.users import get_user
from tests.conftest import login

FORM = {"csrf_token": "test-csrf"}


def _roles(app, user_id):
    session = app.extensions["ninety"].sessions()
    try:
        return sorted(get_user(session, user_id).roles)
    finally:
        session.close()


def test_an_admin_finds_a_user_and_sets_their_roles(app, make_user):
    admin = make_user(roles=("admin",), email="boss@example.com")
    ada = make_user(roles=("listener",), email="ada_lovelace@example.com", display_name="Ada")
    make_user(roles=("listener",), email="adaxlovelace@example.com")  # `_` in the query is not a wildcard
    client = app.test_client()
    login(client, admin)
    listing = client.get("/admin/users?q=ada_love")
    assert listing.status_code == 200
    assert "ada_lovelace@example.com" in listing.text and "adaxlovelace@example.com" not in listing.text
    assert f"/admin/users/{ada.id}" in listing.text
    by_role = client.get("/admin/users?role=admin").text
    assert "boss@example.com" in by_role and "ada_lovelace@example.com" not in by_role

    ada_client = app.test_client()
    login(ada_client, ada)
    assert ada_client.get("/account").status_code == 200

    answer = client.post(f"/admin/users/{ada.id}/roles", data={**FORM, "roles": ["artist", "rights_holder"]})
    assert answer.status_code == 303
    assert _roles(app, ada.id) == ["artist", "rights_holder"]
    page = client.get(f"/admin/users/{ada.id}")
    assert "now has the roles: artist, rights_holder" in page.text
    # Ada's old session ended with the change: her next request is anonymous.
    assert ada_client.get("/account", headers={"Accept": "application/json"}).status_code == 401


def test_unknown_roles_and_self_demotion_are_refused_and_nothing_changes(app, make_user):
    admin = make_user(roles=("admin", "finance"))
    other = make_user(roles=("listener",))
    client = app.test_client()
    login(client, admin)
    client.post(f"/admin/users/{other.id}/roles", data={**FORM, "roles": ["artist", "pope"]})
    assert _roles(app, other.id) == ["listener"]
    assert "Unknown role(s): pope" in client.get(f"/admin/users/{other.id}").text

    client.post(f"/admin/users/{admin.id}/roles", data={**FORM, "roles": ["finance"]})
    assert _roles(app, admin.id) == ["admin", "finance"]
    assert "cannot take the admin role from yourself" in client.get(f"/admin/users/{admin.id}").text
    # Keeping admin while changing their own roles leaves this browser signed in.
    client.post(f"/admin/users/{admin.id}/roles", data={**FORM, "roles": ["admin"]})
    assert _roles(app, admin.id) == ["admin"]
    assert client.get("/admin/users").status_code == 200
    assert client.get("/admin/users/999999").status_code == 404


def test_only_admins_manage_accounts(app, make_user):
    rights = make_user(roles=("rights_holder", "finance", "artist"))
    target = make_user(roles=("listener",))
    client = app.test_client()
    login(client, rights)
    assert client.get("/admin/users").status_code == 403
    assert client.post(f"/admin/users/{target.id}/roles", data={**FORM, "roles": ["admin"]}).status_code == 403
    assert _roles(app, target.id) == ["listener"]


def test_an_admin_deactivates_and_reactivates_an_account(app, make_user, token_for):
    admin = make_user(roles=("admin",))
    ada = make_user(roles=("artist",))
    raw = token_for(ada)
    ada_client = app.test_client()
    login(ada_client, ada)
    client = app.test_client()
    login(client, admin)
    assert client.post(f"/admin/users/{ada.id}/deactivate", data=FORM).status_code == 303
    assert "deactivated and signed out everywhere" in client.get(f"/admin/users/{ada.id}").text
    assert ada_client.get("/account", headers={"Accept": "application/json"}).status_code == 401
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    client.post(f"/admin/users/{ada.id}/reactivate", data=FORM)
    assert app.test_client().get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    client.post(f"/admin/users/{admin.id}/deactivate", data=FORM)
    assert "cannot deactivate your own account" in client.get(f"/admin/users/{admin.id}").text
    assert client.get("/admin/users").status_code == 200
