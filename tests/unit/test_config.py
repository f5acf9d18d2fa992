"""Settings come from the environment only; production refuses to start without secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from service.clock import clock_for, micros_of, utc_now
from service.config import ConfigError, Settings

PRODUCTION = {
    "MAWID_ENV": "production",
    "SECRET_KEY": "s" * 32,
    "DATABASE_URL": "postgresql://db/mawid",
    "REDIS_URL": "redis://redis:6379/0",
}


def test_defaults_for_dev() -> None:
    settings = Settings.from_env({})
    assert settings.is_dev and settings.port == 8080 and settings.host == "127.0.0.1"
    assert settings.base_url == "http://127.0.0.1:8080"


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL"])
def test_production_names_the_missing_variable(missing: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    with pytest.raises(ConfigError, match=missing):
        Settings.from_env(env)


def test_production_with_everything() -> None:
    settings = Settings.from_env({**PRODUCTION, "PORT": "9000", "BASE_URL": "https://x.ma/"})
    assert settings.is_production and settings.port == 9000
    assert settings.base_url == "https://x.ma"


def test_bad_numbers_are_named() -> None:
    with pytest.raises(ConfigError, match="PORT"):
        Settings.from_env({"PORT": "eighty"})


def test_cli_prints_one_line_naming_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if k not in PRODUCTION}
    env.update({"MAWID_ENV": "production", "DATABASE_URL": "postgresql://x/y", "REDIS_URL": "r"})
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mawid: SECRET_KEY is required when MAWID_ENV=production"
    ]


def test_as_environ_round_trips() -> None:
    from pathlib import Path

    settings = Settings(
        env="test",
        port=9001,
        base_url="http://x.test",
        smtp_starttls=True,
        sms_per_second=2.5,
        dev_dir=Path("/tmp/d"),
        twilio_from="+33600000000",
    )
    assert Settings.from_env(settings.as_environ()) == settings
    assert Settings.from_env(Settings().as_environ()) == Settings()


START = "2027-02-01T11:00:00+01:00"


def test_clock_start_puts_the_clock_there_and_lets_it_run() -> None:
    settings = Settings.from_env({"MAWID_ENV": "test", "MAWID_CLOCK_START": START})
    clock = clock_for(settings)
    first, second = clock(), clock()
    start = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
    # It starts at the instant (in UTC) and never goes back; the bound only
    # says it did not start somewhere else.
    assert start <= first <= second < start + timedelta(minutes=5)
    assert first.utcoffset() == timedelta(0)


def test_a_clocks_microseconds_are_its_instants() -> None:
    instant = datetime(2027, 2, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert micros_of(lambda: instant)() == 1_801_476_000_123_456


def test_without_clock_start_the_clock_is_the_real_one() -> None:
    assert clock_for(Settings.from_env({})) is utc_now


def test_clock_start_is_refused_in_production() -> None:
    with pytest.raises(ConfigError, match="MAWID_CLOCK_START"):
        Settings.from_env({**PRODUCTION, "MAWID_CLOCK_START": START})
    # Set by hand on a production Settings, it is still not honoured.
    assert clock_for(Settings(env="production", clock_start=START)) is utc_now


@pytest.mark.parametrize("raw", ["tomorrow", "2027-02-01T10:00:00"])
def test_clock_start_needs_an_instant_with_its_offset(raw: str) -> None:
    with pytest.raises(ConfigError, match="MAWID_CLOCK_START"):
        Settings.from_env({"MAWID_CLOCK_START": raw})


def test_logs_are_json_lines_in_production_and_text_elsewhere() -> None:
    assert Settings.from_env(PRODUCTION).log_format == "json"
    assert Settings.from_env({**PRODUCTION, "LOG_FORMAT": "text"}).log_format == "text"
    assert Settings.from_env({}).log_format == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.from_env({"LOG_FORMAT": "xml"})
