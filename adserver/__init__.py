"""The ad server: advertisers, campaigns, creatives, signed decisions, beacons, Redis counters and the
impression stream the flush worker (royalties.worker) turns into ledger entries.

It never imports catalog: the app hands it a track's context as plain data.
"""
