"""The rights package's settings, as plain values (the app builds them from its config)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class RightsSettings:
    decision_hours: int = 24              # every complete notice is decided within this of its receipt
    counter_window_days: int = 14         # the artist may counter-notify this long after the action
    restore_business_days: int = 10       # §512(g)(2)(C): 10 to 14 business days after the counter-notice
    holiday_country: str = "US"           # whose public holidays are not business days
    max_reference_bytes: int = 50 * 1024 * 1024
    max_works: int = 20000
    strike_window_days: int = 365
    strikes_to_suspend: int = 3
    appeal_window_days: int = 183         # DSA Art. 20: at least six months
    abuse_rejections: int = 3             # rejected notices within the strike window that flag a claimant
    public_url: str = ""                  # to read track and release URLs in notices

    @classmethod
    def from_config(cls, config) -> RightsSettings:
        """From app.config.Config (read by attribute name; missing ones keep their default)."""
        mapping = {"decision_hours": "rights_decision_hours", "counter_window_days": "rights_counter_window_days",
                   "restore_business_days": "rights_restore_business_days",
                   "holiday_country": "rights_holiday_country", "max_reference_bytes": "max_reference_bytes",
                   "public_url": "public_url"}
        names = {f.name for f in fields(cls)}
        values = {ours: getattr(config, theirs) for ours, theirs in mapping.items()
                  if ours in names and hasattr(config, theirs)}
        return cls(**values)
