"""Click-to-call: ring the user's extension, then dial the number.

The Originate rings the user through the PBX's own dialplan and, when they
answer, dials the customer in the outbound context (recording
``originate-click-to-call.txt``). The number arrives already read by
``numbers.dialable`` (the CLI and the HTTP API read it before connecting,
so a bad number never reaches AMI): its ``dial`` form is the national
number with the exit code in front once; ``check_number`` is the last guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..destinations import DialplanNames
from ..errors import AmiActionFailed
from ..numbers import DialNumber, check_extension
from .chanspy import SupervisorError, caller_id, ring_channel
from .checks import check_number
from .client import AmiClient
from .originate import OriginateResult

CLICK_TO_CALL_NAME = "Click to call"


@dataclass(frozen=True)
class ClickToCallResult:
    from_ext: str
    number: DialNumber
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
    number: DialNumber,
    *,
    ring_timeout: float = 30.0,
) -> ClickToCallResult:
    """Ring ``from_ext``; when it answers, dial ``number`` (read by
    ``numbers.dialable``) in the outbound context."""
    from_ext = check_extension(from_ext)
    dialled = check_number(number.dial)
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
