"""The OpenAPI document is the API's contract, and schemathesis holds the
server to it: every operation, all of its checks, a bounded number of
examples, against the app on a throwaway copy of the seeded database.

Two runs: anonymous, and with a staff API token (an administrator's, who sees
every office) plus a citizen's manage token and the reference it opens, so
that the authenticated operations get past their door. Each run's output is
printed; a failure shows schemathesis's report and its `curl` reproduction.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from yarl import URL

from service import bookings
from service.domain.validation import RawDetails
from service.office import accounts
from service.store import staff as staff_store
from tests.clock import FakeClock
from tests.fixtures.app import LiveServer, any_document
from tests.fixtures.office import ADMIN, free_slot

# The operations' logic, not the per-address limits (test_abuse_limits.py),
# which would answer most of a run 429; the manage token's booking is a
# returning citizen's, confirmed at once.
pytestmark = [pytest.mark.no_rate_limits, pytest.mark.usefixtures("returning_citizen")]

MAX_EXAMPLES = 12
SEED = 20270201
# Well above a run's usual length on the 2-core machine, so a stuck run fails
# instead of holding the suite.
RUN_TIMEOUT = 240

# Some rules no JSON schema states: a booking's details (a phone number valid
# for its country, at least one of phone and e-mail, a document number for
# some services), an availability range of at most 62 days, a week number that
# exists in its year, a counter the office has. For these operations a
# well-formed request may also get its documented 422 (set for the stateful
# phase too, which does not inherit an operation's checks).
# A booking's code is a rule of the same kind: a well-formed code may be the
# wrong one (422), the booking not waiting for one (409), a resend too soon
# (429), and one contact gets at most CODES_PER_CONTACT_PER_DAY codes (429).
UNSTATED_RULES = {
    "POST /api/v1/bookings": ["2xx", 404, 409, 422, 429],
    "POST /api/v1/bookings/{reference}/verify": ["2xx", 401, 409, 422],
    "POST /api/v1/bookings/{reference}/resend": ["2xx", 401, 409, 429],
    "GET /api/v1/offices/{office}/availability": ["2xx", 404, 422],
    "GET /api/v1/offices/{office}/stats": ["2xx", 401, 403, 404, 422],
    "POST /api/v1/offices/{office}/calls": ["2xx", 401, 403, 404, 409, 422],
    # A window's own rules (a day or more, a period after the close, no
    # overlap, a draw service) and a mode that no window still needs.
    "POST /api/v1/offices/{office}/services/{service}/draws": ["2xx", 401, 403, 404, 409, 422],
    "POST /api/v1/offices/{office}/services/{service}/allocation": ["2xx", 401, 403, 404, 409],
    # A file moves only along its states, for a service that produces a
    # document, once the citizen has come.
    "POST /api/v1/offices/{office}/bookings/{reference}/document": ["2xx", 401, 403, 404, 409, 422],
}
# Text is UTF-8 without NUL: any NUL or lone surrogate in a request is refused
# (test_hostile_inputs holds the server to that), including in the members
# and parameters the document does not list, which no schema can constrain.
CONFIG = """
[generation]
allow-x00 = false
codec = "utf-8"
""" + "".join(
    f"""
[[operations]]
include-name = "{name}"
checks.positive_data_acceptance.expected-statuses = {statuses!r}
phases.stateful.checks.positive_data_acceptance.expected-statuses = {statuses!r}
"""
    for name, statuses in UNSTATED_RULES.items()
)

AUTHENTICATED = """
[auth.openapi.staffToken]
bearer = "{staff}"

[auth.openapi.manageToken]
bearer = "{manage}"

[parameters]
"path.reference" = "{reference}"
"""


async def _schemathesis(server: LiveServer, config: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(config),
        "run", str(URL(server.url) / "api" / "openapi.json"),
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--generation-database", "none",
        "--workers", "1",
        "--no-color",
        # Its cache and reports go to the test's own directory.
        cwd=config.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    report = out.decode(errors="replace")
    print(report)
    assert process.returncode == 0, report[-6000:]
    return report


async def test_the_api_keeps_its_documented_contract_anonymously(
    live_server: LiveServer, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    report = await _schemathesis(live_server, config)
    # 11 operations, the waiting room's call, the code step's verify and
    # resend, a draw's public record, an office's draws, a service's mode,
    # opening a window, moving a document file, the uncollected documents and
    # the upcoming mobile days.
    assert "21 selected / 21 total" in report


async def test_the_api_keeps_its_documented_contract_with_tokens(
    live_server: LiveServer, pool: asyncpg.Pool, clock: FakeClock, tmp_path: Path
) -> None:
    async with pool.acquire() as conn:
        admin = await staff_store.credentials(conn, ADMIN.email)
    assert admin is not None
    staff = await accounts.create_api_token(
        pool, admin.member, "contract", secret_key=live_server.secret_key, now=clock()
    )
    slot = await free_slot(pool, "consulate-paris", "passport", clock() + timedelta(days=2))
    booked = await bookings.book(
        pool,
        slot_id=slot["id"],
        service_id="passport",
        details=RawDetails(
            name="Amina El Idrissi", phone="+33612345678", document_number=any_document()
        ),
        secret_key=live_server.secret_key,
        now=clock(),
    )
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CONFIG
        + AUTHENTICATED.format(
            staff=staff, manage=booked.manage_token, reference=booked.booking.reference
        )
    )
    report = await _schemathesis(live_server, config)
    assert "Authentication failed" not in report
