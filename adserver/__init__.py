"""Advertisers, campaigns, creatives, decisions, beacons, Redis counters and the impression flush."""
