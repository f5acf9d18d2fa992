"""The draw's pure part at the issue's scale: 100,000 entries for 5,000
seats (1,000 slots of 5 seats over a month, each entry accepting a few days
and parts of day). Prints the time to rank and to allocate, as a ratio of
a bare baseline measured in the same run (sorting the same ids by their
plain SHA-256), and the peak RSS. Writing the offer rows (held bookings and
outbox rows, one transaction per window) is not measured here.

    .venv/bin/python bench/draw.py
"""

from __future__ import annotations

import hashlib
import random
import resource
import time
from datetime import UTC, date, datetime, timedelta

from service.domain.draw import PARTS_OF_DAY, Seat, Wish, allocate, new_seed, part_of_day, ranking

ENTRIES = 100_000
SLOTS = 1_000
SEATS_PER_SLOT = 5


def main() -> None:
    rnd = random.Random(12)
    ids = [f"{rnd.getrandbits(128):032x}" for _ in range(ENTRIES)]
    days = [date(2027, 7, 1) + timedelta(days=n) for n in range(31)]
    wishes = {
        i: Wish(
            frozenset(rnd.sample(days, rnd.randint(1, 8))),
            frozenset(rnd.sample(PARTS_OF_DAY, rnd.randint(1, 2))),
        )
        for i in ids
    }
    seats = []
    for n in range(SLOTS):
        start = datetime(2027, 7, 1, 8, tzinfo=UTC) + timedelta(days=n % 31, minutes=30 * (n // 31))
        seats.append(Seat(n, start, start.date(), part_of_day(start.time()), SEATS_PER_SLOT))

    began = time.perf_counter()
    sorted(ids, key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    baseline = time.perf_counter() - began

    began = time.perf_counter()
    ranked = ranking(new_seed(), ids)
    ranked_s = time.perf_counter() - began
    began = time.perf_counter()
    result = allocate(ranked, wishes, seats)
    allocate_s = time.perf_counter() - began

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"entries {ENTRIES}, seats {SLOTS * SEATS_PER_SLOT}, offers {len(result.offers)}")
    print(f"baseline (sort by sha256): {baseline:.3f} s")
    print(f"ranking:   {ranked_s:.3f} s  ({ranked_s / baseline:.2f}x baseline)")
    print(f"allocation: {allocate_s:.3f} s  ({allocate_s / baseline:.2f}x baseline)")
    print(f"peak RSS: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
