"""The shared kernel: database, money, errors, clock, identities. Imports nothing from the other packages."""
