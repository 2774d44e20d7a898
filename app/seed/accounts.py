"""Demo people: an admin, two finance users, listeners. Their password is printed by `ninety demo`."""

from __future__ import annotations

from core.users import create_user

ORDER = 10
DEMO_PASSWORD = "ninety-demo-password"

PEOPLE = [
    ("admin@ninety.test", "Ada Admin", ["admin"]),
    ("finance@ninety.test", "Fin Ance", ["finance"]),
    ("approver@ninety.test", "Ap Prover", ["finance"]),
    ("listener@ninety.test", "Lis Tener", ["listener"]),
    ("rights@ninety.test", "Rita Rights", ["rights_holder"]),
]


def seed(runtime, state: dict) -> None:
    session = runtime.sessions()
    try:
        users = {}
        for email, name, roles in PEOPLE:
            users[email] = create_user(session, email=email, password=DEMO_PASSWORD, display_name=name, roles=roles)
        session.commit()
        state["users"] = {email: user.id for email, user in users.items()}
    finally:
        session.close()
