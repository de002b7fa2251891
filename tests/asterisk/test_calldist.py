"""Call distribution on the real Asterisk: every caller type, operator,
area and pattern syntax, through the generated dialplan and the real AGI."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

MATRIX_DID = "02188776610"

CASES = [
    ("09131112233", "exact"),
    ("05112345678", "seedpattern"),
    ("07131234567", "astpattern"),
    ("07611234567", "regex"),
    ("04112345678", "tabriz"),
    ("09121234567", "mci"),
    ("09351234567", "irancell"),
    ("09201234567", "rightel"),
    ("02188776655", "city"),
    ("88776655", "city"),
    ("03112345678", "intercity"),
    ("00441234567890", "international"),
    ("anonymous", "anonymous"),
]


@pytest.mark.parametrize(("caller", "dest"), CASES)
async def test_each_caller_type_reaches_its_item(fresh, caller, dest):
    since = fresh.ami.mark()
    await fresh.call_in(MATRIX_DID, caller)
    event = await fresh.wait_user_event("TestDest", since=since)
    assert event["Dest"] == dest, event
