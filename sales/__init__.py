"""Orders and checkout, refunds and disputes, download codes, plans and subscriptions (DESIGN.md)."""
