"""docker-compose.yml against the code, since no Docker engine runs in CI:
every command it runs exists in `mawid`, every variable it or .env.example
sets is a setting of the README's configuration table, and the shape the
README promises (one-shot migrate, two web replicas, one worker, health
checks on routes that exist) holds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.app import create_app
from service.cli import build_parser
from service.config import ENV_NAMES, Settings
from service.metrics import MULTIPROC_ENV
from tests.clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]
MAWID_SERVICES = ("migrate", "web", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def readme_variables() -> set[str]:
    """Every `NAME` in the first column of the README's configuration table."""
    text = (ROOT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def subcommands() -> set[str]:
    parser = build_parser()
    [sub] = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(sub.choices)  # type: ignore[arg-type]


def test_every_setting_is_in_the_readme_table_and_nothing_else_is() -> None:
    documented = readme_variables()
    assert set(ENV_NAMES.values()) | {MULTIPROC_ENV} == documented


def test_the_compose_file_runs_only_commands_that_exist(compose: dict[str, Any]) -> None:
    known = subcommands()
    for name in MAWID_SERVICES:
        command = compose["services"][name]["command"]
        assert command[0] == "mawid" and command[1] in known, (name, command)
        build_parser().parse_args(command[1:])


def test_every_variable_compose_or_env_example_sets_is_documented(
    compose: dict[str, Any],
) -> None:
    documented = readme_variables()
    for name in MAWID_SERVICES:
        assert set(compose["services"][name]["environment"]) <= documented, name
    example = [
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert example and set(example) <= documented
    # Every ${VAR} the compose file reads from .env is one .env.example shows
    # (or has a default there).
    raw = (ROOT / "docker-compose.yml").read_text()
    read = set(re.findall(r"\$\{([A-Z_]+)", raw))
    assert read <= set(example) | {"BASE_URL"}


def test_one_shot_migrate_then_two_web_replicas_and_one_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["mawid", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["web"]["deploy"]["replicas"] == 2
    assert services["worker"].get("deploy", {}).get("replicas", 1) == 1
    for name in ("web", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}
        assert "migrate" not in " ".join(services[name]["command"][1:])
        assert services[name]["healthcheck"]["test"]
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["web"]["environment"]["MAWID_ENV"] == "production"


def test_health_checks_ask_routes_that_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    web_routes = {r.canonical for r in create_app(Settings(), clock=FakeClock()).router.resources()}
    web_check = " ".join(services["web"]["healthcheck"]["test"])
    [web_probe] = re.findall(r"127\.0\.0\.1:8080(/\w+)", web_check)
    assert web_probe in web_routes
    worker_env = services["worker"]["environment"]
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    [(port, path)] = re.findall(r"127\.0\.0\.1:(\d+)(/\w+)", worker_check)
    assert port == worker_env["METRICS_PORT"] and worker_env["METRICS_HOST"] == "0.0.0.0"
    from service.web.observe import metrics_app

    worker_routes = {
        r.canonical
        for r in metrics_app(Settings(), None, None, None).router.resources()  # type: ignore[arg-type]
    }
    assert path in worker_routes
