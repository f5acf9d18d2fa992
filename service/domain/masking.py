"""Contact details shown half hidden: enough for the citizen to recognise
where a message went, too little for someone reading over a shoulder. Pure."""

from __future__ import annotations

from service.domain.phone import international_format

DOT = "•"


def mask_phone(e164: str) -> str:
    """'+33 6 •• •• •• 78': the country code, the first and the last two digits."""
    code, _, rest = international_format(e164).partition(" ")
    digits = [i for i, c in enumerate(rest) if c.isdigit()]
    shown = set(digits[:1] + digits[-2:])
    masked = "".join(DOT if c.isdigit() and i not in shown else c for i, c in enumerate(rest))
    return f"{code} {masked}"


def mask_email(address: str) -> str:
    """'f•••@example.com': the first character and the domain. The local
    part's length is not given away."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return DOT * 3
    return f"{local[0]}{DOT * 3}@{domain}"
