"""Click-to-call: ring the user's extension, then dial the number.

The Originate rings the user through the PBX's own dialplan and, when they
answer, dials the customer in the outbound context, the exit code in front
when outside lines need one (recording ``originate-click-to-call.txt``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..destinations import DialplanNames
from ..errors import AmiActionFailed
from ..numbers import check_extension
from .chanspy import SupervisorError, caller_id, ring_channel
from .checks import check_number
from .client import AmiClient
from .originate import OriginateResult

CLICK_TO_CALL_NAME = "Click to call"


def dial_number(number: str, country_code: str, exit_code: str = "") -> str:
    """What the PBX dials for ``number``: international forms made local
    (``+98912...`` -> ``0912...``, ``+44...`` -> ``0044...``), then the exit
    code (``9``, ``0``) in front when outside lines need one."""
    number = check_number(number)
    if number.startswith("+"):
        digits = number[1:]
        domestic = bool(country_code) and digits.startswith(country_code)
        number = "0" + digits[len(country_code) :] if domestic else "00" + digits
    return check_number(f"{exit_code}{number}")


@dataclass(frozen=True)
class ClickToCallResult:
    from_ext: str
    number: str
    dialled: str
    context: str
    originate: OriginateResult

    def describe(self) -> str:
        if self.originate.success:
            return f"{self.from_ext} answered; dialling {self.dialled} in {self.context}"
        return f"{self.from_ext} did not answer ({self.originate.reason_text}); {self.dialled} was not dialled"


async def click_to_call(
    ami: AmiClient,
    names: DialplanNames,
    from_ext: str,
    number: str,
    *,
    country_code: str,
    exit_code: str = "",
    ring_timeout: float = 30.0,
) -> ClickToCallResult:
    """Ring ``from_ext``; when it answers, dial ``number`` in the outbound context."""
    from_ext = check_extension(from_ext)
    dialled = dial_number(number, country_code, exit_code)
    channel = ring_channel(names, from_ext)
    try:
        result = await ami.originate(
            channel,
            context=names.outbound,
            exten=dialled,
            priority=1,
            caller_id=caller_id(CLICK_TO_CALL_NAME, from_ext),
            timeout_s=ring_timeout,
        )
    except AmiActionFailed as exc:
        raise SupervisorError(
            f"cannot dial {dialled} in context {names.outbound}: Asterisk says {exc.message!r}"
        ) from None
    return ClickToCallResult(from_ext, number, dialled, names.outbound, result)
