"""One settings object, read from the environment and nowhere else."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from service.domain.limits import Network, Rate, parse_networks, parse_rate
from service.logs import FORMATS


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


_ENVS = ("dev", "test", "production")


@dataclass(frozen=True, slots=True)
class Settings:
    env: str = "dev"
    secret_key: str = "dev-secret-key-not-for-production"  # noqa: S105 - dev only
    database_url: str = ""
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = "http://127.0.0.1:8080"
    dev_dir: Path = field(default_factory=lambda: Path(".devdata"))
    log_level: str = "INFO"
    # "text" or "json"; from_env makes it "json" in production unless set.
    log_format: str = "text"
    # Metrics (service.metrics): the bearer token /metrics asks for; without
    # one, the web's /metrics is open outside production only, and the
    # worker's is protected by the address it listens on.
    metrics_token: str = ""
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    # How far ahead slots are materialised.
    slot_horizon_days: int = 84
    db_pool_min: int = 2
    db_pool_max: int = 20
    # Days after an appointment before its booking's personal data is
    # anonymised (service.retention).
    retention_days: int = 90
    # How long a web process may keep offices, services, closures and a day's
    # slots (service.web.readcache); 0 keeps nothing.
    read_cache_seconds: float = 1.0
    # `mawid serve` processes sharing the port (SO_REUSEPORT).
    web_processes: int = 1
    # Notifications (issue 3).
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_base_url: str = ""
    sms_per_second: float = 1.0
    # WhatsApp through the same Twilio account (issue 15): the sender number
    # (E.164, without the "whatsapp:" prefix), its own rate and per-number
    # cap, and the approved content templates by kind and language, as JSON:
    # {"confirmation": {"ar": "HX...", "fr": "HX...", "en": "HX..."}, ...}.
    twilio_whatsapp_from: str = ""
    whatsapp_per_second: float = 1.0
    whatsapp_per_number_per_day: int = 8
    whatsapp_templates: str = ""
    sms_price_per_segment: float = 0.07
    # ISO 4217 code of that price, for the office statistics.
    sms_currency: str = "USD"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    email_from: str = "Mawid <no-reply@mawid.invalid>"
    # Tests only (service.clock): the instant the product's clock starts from.
    clock_start: str = ""
    # Abuse resistance (issue 10). Rates per client address, "COUNT/PERIOD"
    # (s, m, h, d) or "off"; see service.domain.limits.
    trusted_proxies: str = ""
    limit_book: str = "12/1h"
    limit_verify: str = "20/1h"
    limit_resend: str = "10/1h"
    limit_reschedule: str = "10/1h"
    limit_cancel: str = "10/1h"
    limit_manage: str = "120/1h"
    limit_availability: str = "120/1m"
    # Code messages to one phone number or address in 24 hours, whoever books.
    codes_per_contact_per_day: int = 8
    # Moves a citizen may make to one booking (staff are not limited).
    reschedule_limit: int = 2
    # SMS (codes aside) to one number in 24 hours, across bookings.
    sms_per_number_per_day: int = 8
    # How long a contact proved by a code stays proved for later bookings.
    verified_contact_days: int = 90
    # Hours a citizen has to confirm a seat offered by a draw or its waiting
    # list before it passes to the next entry in drawn order.
    draw_offer_hours: int = 48
    # Days a document waits for pickup before its one reminder.
    document_reminder_days: int = 14
    # Hours after an appointment is marked done before its feedback message.
    feedback_delay_hours: int = 3
    # "Tell me when a mobile day is planned near me": how long a proved
    # subscription stands before it must be renewed, and the distance (km)
    # the manager's publishing form starts with.
    mobile_alert_days: int = 365
    mobile_alert_km: int = 100

    @property
    def feedback_delay(self) -> timedelta:
        return timedelta(hours=self.feedback_delay_hours)
    # The waiting list of an instant service: a seat freed this many days
    # ahead or fewer goes to the list before it goes back on sale, and the
    # entry it is offered to has this many hours to take it.
    waitlist_days: int = 14
    waitlist_offer_hours: int = 2

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def whatsapp_enabled(self) -> bool:
        """Whether citizens are offered WhatsApp: a sender is configured, or
        the dev sink stands in for Twilio (`make run`)."""
        return bool(self.twilio_whatsapp_from) or (self.is_dev and not self.twilio_account_sid)

    @property
    def whatsapp_template_ids(self) -> dict[str, dict[str, str]]:
        """WHATSAPP_TEMPLATES read: {kind: {language: content SID}}."""
        return parse_templates(self.whatsapp_templates)

    def rate(self, action: str) -> Rate | None:
        """The limit per client address on `action` (service.domain.limits.ACTIONS)."""
        return parse_rate(str(getattr(self, f"limit_{action}")))

    @property
    def proxies(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        mode = env.get("MAWID_ENV", "dev")
        if mode not in _ENVS:
            raise ConfigError(f"MAWID_ENV must be one of {', '.join(_ENVS)}, not {mode!r}")
        if mode == "production":
            for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
                if not env.get(name):
                    raise ConfigError(f"{name} is required when MAWID_ENV=production")
        defaults = cls()
        values: dict[str, object] = {}
        for attribute, name in ENV_NAMES.items():
            raw = env.get(name)
            if raw is not None and raw != "":
                values[attribute] = _parse(name, raw, type(getattr(defaults, attribute)))
        if values.get("clock_start"):
            if mode == "production":
                raise ConfigError("MAWID_CLOCK_START is for tests; it cannot be set in production")
            parse_instant("MAWID_CLOCK_START", str(values["clock_start"]))
        log_format = values.setdefault("log_format", "json" if mode == "production" else "text")
        if log_format not in FORMATS:
            raise ConfigError(f"LOG_FORMAT must be text or json, not {log_format!r}")
        if int(values.get("retention_days", defaults.retention_days)) < 1:  # type: ignore[call-overload]
            raise ConfigError("RETENTION_DAYS must be at least 1")
        # WAITLIST_DAYS=0 turns the waiting list of instant services off.
        for attribute, least in (("waitlist_days", 0), ("waitlist_offer_hours", 1)):
            if int(values.get(attribute, getattr(defaults, attribute))) < least:  # type: ignore[call-overload]
                raise ConfigError(f"{ENV_NAMES[attribute]} must be at least {least}")
        for attribute in RATE_SETTINGS:
            if attribute in values:
                try:
                    parse_rate(str(values[attribute]))
                except ValueError as exc:
                    raise ConfigError(f"{ENV_NAMES[attribute]}: {exc}") from None
        if "whatsapp_templates" in values:
            try:
                parse_templates(str(values["whatsapp_templates"]))
            except ValueError as exc:
                raise ConfigError(f"WHATSAPP_TEMPLATES: {exc}") from None
        if "trusted_proxies" in values:
            try:
                parse_networks(str(values["trusted_proxies"]))
            except ValueError as exc:
                raise ConfigError(f"TRUSTED_PROXIES: {exc}") from None
        if "base_url" not in values:
            host = values.get("host", defaults.host)
            values["base_url"] = f"http://{host}:{values.get('port', defaults.port)}"
        values["base_url"] = str(values["base_url"]).rstrip("/")
        return replace(defaults, **values)  # type: ignore[arg-type]

    def as_environ(self) -> dict[str, str]:
        """The variables that give these settings back through from_env, for
        child processes (the web server and worker of `mawid dev`, tests)."""
        out: dict[str, str] = {}
        for attribute, name in ENV_NAMES.items():
            value = getattr(self, attribute)
            out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out


# Each setting's environment variable; the README's configuration table
# documents them.
ENV_NAMES: dict[str, str] = {
    "env": "MAWID_ENV",
    "secret_key": "SECRET_KEY",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "host": "HOST",
    "port": "PORT",
    "base_url": "BASE_URL",
    "dev_dir": "MAWID_DEV_DIR",
    "log_level": "LOG_LEVEL",
    "log_format": "LOG_FORMAT",
    "metrics_token": "METRICS_TOKEN",
    "metrics_host": "METRICS_HOST",
    "metrics_port": "METRICS_PORT",
    "slot_horizon_days": "SLOT_HORIZON_DAYS",
    "db_pool_min": "DB_POOL_MIN",
    "db_pool_max": "DB_POOL_MAX",
    "retention_days": "RETENTION_DAYS",
    "read_cache_seconds": "READ_CACHE_SECONDS",
    "web_processes": "WEB_PROCESSES",
    "twilio_account_sid": "TWILIO_ACCOUNT_SID",
    "twilio_auth_token": "TWILIO_AUTH_TOKEN",
    "twilio_from": "TWILIO_FROM",
    "twilio_messaging_service_sid": "TWILIO_MESSAGING_SERVICE_SID",
    "twilio_base_url": "TWILIO_BASE_URL",
    "sms_per_second": "SMS_PER_SECOND",
    "sms_price_per_segment": "SMS_PRICE_PER_SEGMENT",
    "sms_currency": "SMS_CURRENCY",
    "smtp_host": "SMTP_HOST",
    "smtp_port": "SMTP_PORT",
    "smtp_username": "SMTP_USERNAME",
    "smtp_password": "SMTP_PASSWORD",
    "smtp_starttls": "SMTP_STARTTLS",
    "email_from": "EMAIL_FROM",
    "clock_start": "MAWID_CLOCK_START",
    "trusted_proxies": "TRUSTED_PROXIES",
    "limit_book": "LIMIT_BOOK",
    "limit_verify": "LIMIT_VERIFY",
    "limit_resend": "LIMIT_RESEND",
    "limit_reschedule": "LIMIT_RESCHEDULE",
    "limit_cancel": "LIMIT_CANCEL",
    "limit_manage": "LIMIT_MANAGE",
    "limit_availability": "LIMIT_AVAILABILITY",
    "codes_per_contact_per_day": "CODES_PER_CONTACT_PER_DAY",
    "reschedule_limit": "RESCHEDULE_LIMIT",
    "sms_per_number_per_day": "SMS_PER_NUMBER_PER_DAY",
    "twilio_whatsapp_from": "TWILIO_WHATSAPP_FROM",
    "whatsapp_per_second": "WHATSAPP_PER_SECOND",
    "whatsapp_per_number_per_day": "WHATSAPP_PER_NUMBER_PER_DAY",
    "whatsapp_templates": "WHATSAPP_TEMPLATES",
    "verified_contact_days": "VERIFIED_CONTACT_DAYS",
    "draw_offer_hours": "DRAW_OFFER_HOURS",
    "document_reminder_days": "DOCUMENT_REMINDER_DAYS",
    "feedback_delay_hours": "FEEDBACK_DELAY_HOURS",
    "waitlist_days": "WAITLIST_DAYS",
    "waitlist_offer_hours": "WAITLIST_OFFER_HOURS",
    "mobile_alert_days": "MOBILE_ALERT_DAYS",
    "mobile_alert_km": "MOBILE_ALERT_KM",
}

# The settings that are rates ("12/1h" or "off").
RATE_SETTINGS = (
    "limit_book",
    "limit_verify",
    "limit_resend",
    "limit_reschedule",
    "limit_cancel",
    "limit_manage",
    "limit_availability",
)


def parse_templates(raw: str) -> dict[str, dict[str, str]]:
    """A JSON object of objects of strings ({kind: {language: SID}}), or
    ValueError saying what is wrong; empty text is an empty registry."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ValueError("must be a JSON object of kinds")
    out: dict[str, dict[str, str]] = {}
    for kind, by_language in data.items():
        if not isinstance(by_language, dict) or not all(
            isinstance(v, str) and v for v in by_language.values()
        ):
            raise ValueError(f"{kind!r} must map each language to a template SID")
        out[str(kind)] = {str(k): v for k, v in by_language.items()}
    return out


def parse_instant(name: str, raw: str) -> datetime:
    """An ISO 8601 instant with its offset, in UTC."""
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an ISO 8601 instant, not {raw!r}") from None
    if instant.tzinfo is None:
        raise ConfigError(f"{name} needs a UTC offset, e.g. {raw}+00:00")
    return instant.astimezone(UTC)


def _parse(name: str, raw: str, kind: type) -> object:
    if kind is bool:
        return raw.lower() in ("1", "true", "yes")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, not {raw!r}") from None
    if kind is Path or issubclass(kind, Path):
        return Path(raw)
    return raw
