"""Roles, permissions, account rules, sessions, throttling and office actions."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.booking import Status
from service.domain.errors import ValidationFailed
from service.domain.staff import (
    FIRST_WAIT,
    FREE_FAILURES_PER_ACCOUNT,
    FREE_FAILURES_PER_ADDRESS,
    FREE_FAILURES_PER_PAIR,
    LONGEST_WAIT,
    PERMISSIONS,
    SESSION_ABSOLUTE,
    SESSION_IDLE,
    Access,
    Failures,
    Permission,
    Role,
    StaffMember,
    ThrottleKeys,
    access,
    check_new_account,
    login_wait,
    looks_like_api_token,
    mask_document,
    new_api_token,
    new_password,
    normalise_email,
    parse_office_action,
    password_problem,
    session_expiry,
    session_needs_touch,
    throttle_keys,
    wait_after,
)

OFFICES = ("consulate-paris", "prefecture-tiznit", "consulate-milan")

# The whole table, written out by hand: a change to PERMISSIONS must be a
# deliberate change here too.
EXPECTED = {
    Role.ADMIN: set(Permission),
    # A citizen's export or erasure request is answered by an administrator.
    Role.MANAGER: set(Permission) - {Permission.MANAGE_PERSONAL_DATA},
    Role.AGENT: {
        Permission.VIEW_SCHEDULE,
        Permission.CHANGE_STATUS,
        Permission.VIEW_BOOKING,
        Permission.BOOK_FOR_CITIZEN,
    },
}


def member(role: Role, *offices: str) -> StaffMember:
    return StaffMember(1, f"{role.value}@example.org", role, frozenset(offices))


@pytest.mark.parametrize(("role", "permission"), list(itertools.product(Role, Permission)))
def test_permission_table(role: Role, permission: Permission) -> None:
    assert (permission in PERMISSIONS[role]) == (permission in EXPECTED[role])


@pytest.mark.parametrize(
    ("role", "own", "office", "permission"),
    list(itertools.product(Role, [(), ("consulate-paris",), OFFICES[:2]], OFFICES, Permission)),
)
def test_access_every_role_office_and_permission(
    role: Role, own: tuple[str, ...], office: str, permission: Permission
) -> None:
    verdict = access(member(role, *own), office, permission)
    if role is not Role.ADMIN and office not in own:
        assert verdict is Access.NO_OFFICE  # 404 before anything else
    elif permission not in EXPECTED[role]:
        assert verdict is Access.FORBIDDEN
    else:
        assert verdict is Access.ALLOWED


def test_admin_sees_offices_it_has_no_row_for() -> None:
    assert member(Role.ADMIN).sees_office("anything-at-all")


CREATORS = [
    None,
    member(Role.ADMIN),
    member(Role.MANAGER, "consulate-paris"),
    member(Role.AGENT, "consulate-paris"),
]
TARGETS = [
    (),
    ("consulate-paris",),
    ("prefecture-tiznit",),
    ("consulate-paris", "prefecture-tiznit"),
]


@pytest.mark.parametrize(
    ("creator", "role", "offices"), list(itertools.product(CREATORS, Role, TARGETS))
)
def test_who_may_create_which_account(
    creator: StaffMember | None, role: Role, offices: tuple[str, ...]
) -> None:
    shape_ok = (
        (role is Role.ADMIN and not offices)
        or (role is Role.AGENT and len(offices) == 1)
        or (role is Role.MANAGER and len(offices) >= 1)
    )
    if creator is None or creator.role is Role.ADMIN:
        allowed = shape_ok
    elif creator.role is Role.AGENT:
        allowed = False
    else:
        allowed = shape_ok and role is not Role.ADMIN and set(offices) <= creator.offices
    if allowed:
        check_new_account(creator, role, offices)
    else:
        with pytest.raises(ValidationFailed):
            check_new_account(creator, role, offices)


def test_emails_and_passwords() -> None:
    assert normalise_email("  Agent@Example.ORG ") == "agent@example.org"
    assert normalise_email("not an email") is None
    assert password_problem(new_password()) is None
    assert password_problem("short") is not None
    assert password_problem("x" * 2000) is not None
    assert new_password() != new_password()


def test_api_tokens_are_recognisable_and_random() -> None:
    token = new_api_token()
    assert looks_like_api_token(token)
    assert token != new_api_token()
    assert not looks_like_api_token("a-manage-token-without-prefix-xxxxxxxxxxxxxx")


T0 = datetime(2027, 2, 1, 8, 0, tzinfo=UTC)


def test_session_expiry_slides_but_never_past_the_absolute_limit() -> None:
    assert session_expiry(T0, T0) == T0 + SESSION_IDLE
    later = T0 + timedelta(hours=5)
    assert session_expiry(T0, later) == later + SESSION_IDLE
    assert session_expiry(T0, T0 + timedelta(hours=11)) == T0 + SESSION_ABSOLUTE
    assert not session_needs_touch(T0, T0 + timedelta(minutes=1))
    assert session_needs_touch(T0, T0 + timedelta(minutes=5))


def test_throttle_keys() -> None:
    assert throttle_keys(" A@B.org", "10.0.0.1") == ThrottleKeys(
        "pair:a@b.org|10.0.0.1", "account:a@b.org", "ip:10.0.0.1"
    )
    assert throttle_keys("a@b.org", None).address == "ip:?"


def test_the_wait_doubles_after_the_free_failures_up_to_a_cap() -> None:
    free = FREE_FAILURES_PER_PAIR
    assert [wait_after(n, free) for n in range(free)] == [timedelta(0)] * free
    assert [wait_after(free + n, free) for n in range(4)] == [
        FIRST_WAIT, FIRST_WAIT * 2, FIRST_WAIT * 4, FIRST_WAIT * 8
    ]  # fmt: skip
    assert wait_after(free + 60, free) == wait_after(10**9, free) == LONGEST_WAIT


NONE = Failures(0)


def _after(count: int, seconds_ago: float = 0) -> Failures:
    return Failures(count, T0 - timedelta(seconds=seconds_ago))


def test_a_pairs_own_failures_slow_it_down_known_or_not() -> None:
    pair = FREE_FAILURES_PER_PAIR
    for known in (True, False):
        assert login_wait(_after(pair - 1), NONE, NONE, known=known, now=T0) == timedelta(0)
        assert login_wait(_after(pair), NONE, NONE, known=known, now=T0) == FIRST_WAIT
        assert login_wait(_after(pair + 2, 1), NONE, NONE, known=known, now=T0) == (
            FIRST_WAIT * 4 - timedelta(seconds=1)
        )
        # Once the wait is over, the next attempt is checked.
        assert login_wait(_after(pair + 2, 4), NONE, NONE, known=known, now=T0) == timedelta(0)


def test_guesses_on_an_account_or_from_an_address_slow_down_unknown_places_only() -> None:
    many_on_account = _after(FREE_FAILURES_PER_ACCOUNT + 5)
    many_from_address = _after(FREE_FAILURES_PER_ADDRESS + 5)
    for account, address in ((many_on_account, NONE), (NONE, many_from_address)):
        assert login_wait(NONE, account, address, known=False, now=T0) == FIRST_WAIT * 32
        # Where the holder signed in before, someone else's guesses cost nothing.
        assert login_wait(NONE, account, address, known=True, now=T0) == timedelta(0)
    assert login_wait(NONE, _after(FREE_FAILURES_PER_ACCOUNT - 1), NONE, known=False, now=T0) == (
        timedelta(0)
    )


@pytest.mark.parametrize("status", ["checked_in", "done", "no_show"])
def test_office_actions_without_reason(status: str) -> None:
    assert parse_office_action(status, None) == (Status(status), None)


def test_cancel_needs_a_reason() -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_office_action("cancelled", "  ")
    assert "reason" in refused.value.fields
    assert parse_office_action("cancelled", " Consul  absent ") == (
        Status.CANCELLED,
        "Consul absent",
    )
    with pytest.raises(ValidationFailed):
        parse_office_action("cancelled", "x" * 301)


@pytest.mark.parametrize("status", ["confirmed", "held", "expired", "", None, 3, "bogus"])
def test_other_targets_are_refused(status: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_office_action(status, "why")
    assert "status" in refused.value.fields


def test_mask_document_keeps_last_four() -> None:
    assert mask_document("AB123456") == "••••3456"
    assert mask_document("1234") == "1234"
    assert mask_document(None) == ""
