"""Every test runs on the fixed clock (tests/clock.py): no test module reads
the real one.

Refused, in every Python file under tests/:
- Python's wall clock: datetime.now / utcnow / today, date.today, time.time,
  time.time_ns, time.localtime / gmtime / ctime / asctime / strftime, and a
  call of the product's own service.clock.utc_now;
- Postgres's, in any string (SQL): now(), current_timestamp / current_date /
  current_time, localtimestamp, clock_timestamp(), statement_timestamp(),
  transaction_timestamp();
- a create_app(...) or build_state(...) call without clock=: the app and the
  worker would run on the real clock.

Allowed, because they measure durations and never stand for "now" in the
product: time.monotonic, time.perf_counter, the event loop's loop.time(),
sleeps, for timeouts, polling, and the kill test's catching up with a child
worker whose clock (MAWID_CLOCK_START) ran on at real speed.

Not seen by this check: the product's own reads of the real clock in code the
tests run (e.g. column defaults, an e-mail's Date header, `mawid dev`).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {"node_modules", "artifacts", "__pycache__"}

WALL_CLOCK = {
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
    "time": {"time", "time_ns", "localtime", "gmtime", "ctime", "asctime", "strftime"},
}
# Functions of the product that read the real clock when not given one.
NEEDS_CLOCK = {"create_app", "build_state"}
SQL_CLOCK = re.compile(
    r"\bnow\s*\(\s*\)|\bcurrent_(?:timestamp|date|time)\b|\blocaltimestamp\b"
    r"|\b(?:clock|statement|transaction)_timestamp\s*\(",
    re.IGNORECASE,
)


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> what it is, for `from datetime import datetime as dt`,
    `from time import time`, `import time as t`."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in ("datetime", "time"):
            for alias in node.names:
                # datetime's classes `datetime` and `date`; time's functions.
                is_class = node.module == "datetime" and alias.name in WALL_CLOCK
                names[alias.asname or alias.name] = (
                    alias.name if is_class else f"{node.module}.{alias.name}"
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in WALL_CLOCK:
                    names[alias.asname or alias.name] = alias.name
    return names


def real_clock_reads(source: str) -> list[tuple[int, str]]:
    """(line, what) for each read of the real clock in one module's source."""
    tree = ast.parse(source)
    names = _imported_names(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = SQL_CLOCK.search(node.value)
            if match:
                found.append((node.lineno, f"SQL {match.group(0)}"))
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = func.value
            owner_name = (
                owner.id if isinstance(owner, ast.Name)
                else owner.attr if isinstance(owner, ast.Attribute)
                else ""
            )
            kind = names.get(owner_name, owner_name)
            if func.attr in WALL_CLOCK.get(kind, set()):
                found.append((node.lineno, f"{owner_name}.{func.attr}()"))
            called = func.attr
        elif isinstance(func, ast.Name):
            module, _, attr = names.get(func.id, "").partition(".")
            if attr in WALL_CLOCK.get(module, set()):
                found.append((node.lineno, f"{func.id}()"))
            called = func.id
        else:
            continue
        if called == "utc_now":
            found.append((node.lineno, "utc_now()"))
        if called in NEEDS_CLOCK and not any(k.arg in ("clock", None) for k in node.keywords):
            found.append((node.lineno, f"{called}() without clock="))
    return sorted(found)


def test_no_test_module_reads_the_real_clock() -> None:
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        # This module names every way of reading the clock, as examples.
        if SKIPPED_DIRS & set(path.relative_to(TESTS).parts) or path == Path(__file__):
            continue
        for line, what in real_clock_reads(path.read_text(encoding="utf-8")):
            offences.append(f"{path.relative_to(TESTS.parent)}:{line}: {what}")
    assert offences == []


@pytest.mark.parametrize(
    "source",
    [
        "from datetime import UTC, datetime\nx = datetime.now(UTC)",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import datetime as dt\nx = dt.now()",
        "from datetime import date\nx = date.today()",
        "import time\nx = time.time()",
        "from time import time\nx = time()",
        "from time import time_ns as ns\nx = ns()",
        "q = 'UPDATE outbox SET send_at = now() - interval \\'1 s\\''",
        "q = 'SELECT CURRENT_TIMESTAMP'",
        "from service.clock import utc_now\nx = utc_now()",
        "app = create_app(settings, pool=pool)",
        "state = await jobs.build_state(settings, pool=pool)",
    ],
)
def test_the_check_sees_each_way_of_reading_the_real_clock(source: str) -> None:
    assert real_clock_reads(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import time\nx = time.monotonic()",
        "end = asyncio.get_running_loop().time() + 30",
        "from datetime import datetime, timedelta\nx = datetime(2027, 2, 1) + timedelta(1)",
        "x = clock()",
        "app = create_app(settings, pool=pool, clock=clock)",
        "state = await jobs.build_state(settings, **kwargs)",
        "q = 'UPDATE outbox SET send_at = $2 WHERE id = $1'",
        "text = 'RDV confirmé: maintenant'",
    ],
)
def test_the_check_lets_durations_and_the_fixed_clock_pass(source: str) -> None:
    assert real_clock_reads(source) == []
