"""Who may hear or download what, and what pays for it: the ad gate and key-mode credit, turned into grants.

Composes the catalog (track context, download grants) and the ad server (decisions, beacons), which never
import each other. Never imports flask or app: settings and the requester come in as plain values.
"""
