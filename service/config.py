"""One settings object, read from the environment and nowhere else."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path


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
    # How far ahead slots are materialised.
    slot_horizon_days: int = 84
    db_pool_min: int = 2
    db_pool_max: int = 20
    # Notifications (issue 3).
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_messaging_service_sid: str = ""
    twilio_base_url: str = ""
    sms_per_second: float = 1.0
    sms_price_per_segment: float = 0.07
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    email_from: str = "Mawid <no-reply@mawid.invalid>"

    @property
    def is_dev(self) -> bool:
        return self.env == "dev"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

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
        host = env.get("HOST", defaults.host)
        port = _int(env, "PORT", defaults.port)
        return cls(
            env=mode,
            secret_key=env.get("SECRET_KEY", defaults.secret_key),
            database_url=env.get("DATABASE_URL", ""),
            redis_url=env.get("REDIS_URL", ""),
            host=host,
            port=port,
            base_url=env.get("BASE_URL", f"http://{host}:{port}").rstrip("/"),
            dev_dir=Path(env.get("MAWID_DEV_DIR", str(defaults.dev_dir))),
            log_level=env.get("LOG_LEVEL", defaults.log_level),
            slot_horizon_days=_int(env, "SLOT_HORIZON_DAYS", defaults.slot_horizon_days),
            db_pool_min=_int(env, "DB_POOL_MIN", defaults.db_pool_min),
            db_pool_max=_int(env, "DB_POOL_MAX", defaults.db_pool_max),
            twilio_account_sid=env.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=env.get("TWILIO_AUTH_TOKEN", ""),
            twilio_from=env.get("TWILIO_FROM", ""),
            twilio_messaging_service_sid=env.get("TWILIO_MESSAGING_SERVICE_SID", ""),
            twilio_base_url=env.get("TWILIO_BASE_URL", ""),
            sms_per_second=_float(env, "SMS_PER_SECOND", defaults.sms_per_second),
            sms_price_per_segment=_float(
                env, "SMS_PRICE_PER_SEGMENT", defaults.sms_price_per_segment
            ),
            smtp_host=env.get("SMTP_HOST", ""),
            smtp_port=_int(env, "SMTP_PORT", defaults.smtp_port),
            smtp_username=env.get("SMTP_USERNAME", ""),
            smtp_password=env.get("SMTP_PASSWORD", ""),
            smtp_starttls=env.get("SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
            email_from=env.get("EMAIL_FROM", defaults.email_from),
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}") from None
