"""Notices, counter-notices, strikes, escrow cases and stay-down fingerprints (DESIGN.md)."""
