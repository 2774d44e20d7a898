"""The only code that imports `stripe`: charges, transfers and webhooks behind a small protocol."""
