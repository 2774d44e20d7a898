"""Double-entry books: accounts, journal entries, postings, balances, periods, checks and exports."""
