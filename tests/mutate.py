"""`make mutate`: mutation testing of the rules behind the invariants.

mutmut (configured in pyproject.toml's [tool.mutmut]) changes the code of
service/domain/, service/store/slots.py, service/store/outbox.py and
service/bookings.py one small mutation at a time, and runs the tests chosen
for each module ([tool.mawid.mutate], tests/fixtures/mutation.py) against
each mutant: a mutant that no test notices (a survivor) is behaviour no test
pins down.

This starts one embedded Postgres for the whole run and seeds one template
database there with the code as it is (every test run mutmut starts copies
it instead of seeding its own), runs `mutmut run` from a fresh mutants/
directory, and prints the counts per module, the time taken and every
survivor. `make mutate MUTANTS='service.store.slots.x_take_seat*'` tries
only the mutants named (after a first full run), e.g. once a test is added.
`.venv/bin/mutmut show NAME` shows a mutant's diff; `mutmut browse` walks
them. The README's development section lists the survivors
left and why each is harmless.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import asyncpg

from service.devstack import start_postgres
from tests.fixtures.servers import prepare_template

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = Path(sys.executable).with_name("mutmut")
TEMPLATE = "mawid_mutate_template"


async def _seed_template(admin_dsn: str) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    finally:
        await conn.close()
    await prepare_template(admin_dsn.rsplit("/", 1)[0] + "/" + TEMPLATE)


def module_of(mutant: str) -> str:
    """service.store.slots.x_take_seat__mutmut_3 -> service.store.slots"""
    return mutant.split(".x_")[0].split(".xǁ")[0]


def summary(results: str) -> tuple[dict[str, Counter[str]], list[str]]:
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    survivors = []
    for line in results.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name:
            continue
        by_module[module_of(name)][status] += 1
        if status == "survived":
            survivors.append(name)
    return by_module, survivors


def main(patterns: list[str]) -> int:
    """A full run from scratch; with `patterns` (mutant names, * allowed),
    only those mutants again, on the mutants/ of the last run."""
    started = time.monotonic()
    os.chdir(ROOT)
    if not patterns:
        shutil.rmtree("mutants", ignore_errors=True)
    children = os.environ.get("MUTATE_CHILDREN", str(os.cpu_count() or 2))
    with tempfile.TemporaryDirectory(prefix="mawid-mutate-") as tmp:
        postgres = start_postgres(Path(tmp) / "pg", durable=False)
        try:
            asyncio.run(_seed_template(postgres.dsn))
            env = {
                **os.environ,
                "DATABASE_URL": postgres.dsn,
                "MAWID_TEST_TEMPLATE": TEMPLATE,
                # Each test run starts its own Redis (the notify tests empty
                # theirs) under a temp root of this run only.
                "PYTEST_DEBUG_TEMPROOT": tmp,
            }
            env.pop("REDIS_URL", None)
            run = subprocess.run(
                [str(MUTMUT), "run", "--max-children", children, *patterns], env=env
            )
        finally:
            postgres.stop()
    results = subprocess.run(
        [str(MUTMUT), "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    minutes = (time.monotonic() - started) / 60
    by_module, survivors = summary(results)
    total: Counter[str] = Counter()
    print(f"\n{'module':<28} {'mutants':>8} {'killed':>7} {'survived':>9} {'no tests':>9} other")
    for module in sorted(by_module):
        counts = by_module[module]
        total.update(counts)
        _print_row(module, counts)
    _print_row("total", total)
    print(f"\n{minutes:.0f} minutes on {children} processes")
    print(f"\nsurvivors ({len(survivors)}):")
    for name in survivors:
        print(f"  {name}")
    return run.returncode


def _print_row(name: str, counts: Counter[str]) -> None:
    known = ("killed", "survived", "no tests")
    other = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()) if k not in known)
    print(
        f"{name:<28} {sum(counts.values()):>8} {counts['killed']:>7} "
        f"{counts['survived']:>9} {counts['no tests']:>9} {other}"
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
