"""The Originate action without I/O: building a checked action, reading its
outcome.

``originate_fields`` turns ``AmiClient.originate``'s arguments into the
action's headers, refusing any unsafe value before anything is sent;
``originate_result`` reads the reply (with its ``OriginateResponse`` event
for an async Originate) into an ``OriginateResult``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agi_server.errors import LocalProtocolError, UnsafeValue
from agi_server.protocol.ami import Headers

from .checks import (
    _check_application,
    _check_dialplan_exten,
    _check_free_text,
    _check_variables,
    check_channel,
    check_context,
)
from .state import _int

# OriginateResponse ``Reason``: the last control frame Asterisk saw.
ORIGINATE_REASONS = {
    0: "failed",
    1: "hung up",
    2: "local ring",
    3: "no answer",
    4: "answered",
    5: "busy",
    8: "congestion",
}


@dataclass(frozen=True)
class OriginateResult:
    success: bool
    reason: int | None  # None for a synchronous Originate (no event)
    reason_text: str
    channel: str | None
    uniqueid: str | None


def originate_fields(
    channel: str,
    *,
    context: str | None,
    exten: str | None,
    priority: int,
    application: str | None,
    data: str | None,
    caller_id: str | None,
    variables: Mapping[str, object] | None,
    timeout_s: float,
    async_: bool,
) -> dict[str, Any]:
    """The headers of an Originate (see ``AmiClient.originate``); raises
    UnsafeValue or LocalProtocolError for anything that must not be sent."""
    fields: dict[str, Any] = {"Action": "Originate", "Channel": check_channel(channel)}
    if (application is None) == (exten is None):
        raise LocalProtocolError("originate needs either exten (with context) or application")
    if application is not None:
        fields["Application"] = _check_application(application)
        fields["Data"] = _check_free_text("application data", data or "", max_length=1024)
    else:
        if context is None:
            raise LocalProtocolError("originate to an extension needs a context")
        if not isinstance(priority, int) or priority < 1:
            raise UnsafeValue(f"not a dialplan priority: {priority!r}")
        fields["Context"] = check_context(context)
        fields["Exten"] = _check_dialplan_exten(exten)
        fields["Priority"] = str(priority)
    if caller_id is not None:
        fields["CallerID"] = _check_free_text("caller id", caller_id, max_length=128)
    if variables:
        fields["Variable"] = _check_variables(variables)
    if not timeout_s > 0:
        raise LocalProtocolError(f"originate timeout must be positive, got {timeout_s!r}")
    fields["Timeout"] = str(int(timeout_s * 1000))
    # Always explicit: the reply of an async Originate is the Response plus
    # its OriginateResponse event, and the reply matcher reads this header.
    fields["Async"] = "true" if async_ else "false"
    return fields


def originate_result(reply: Headers | Sequence[Headers]) -> OriginateResult:
    """The outcome in an Originate reply: the ``OriginateResponse`` event's,
    or "queued" when there is none (a synchronous Originate)."""
    replies = reply if isinstance(reply, Sequence) else [reply]
    event = next((m for m in replies if m.get("Event") == "OriginateResponse"), None)
    if event is None:
        return OriginateResult(True, None, "queued", None, None)
    reason = _int(event.get("Reason"), 0)
    uniqueid = event.get("Uniqueid")
    return OriginateResult(
        success=event.get("Response") == "Success",
        reason=reason,
        reason_text=ORIGINATE_REASONS.get(reason, f"reason {reason}"),
        channel=event.get("Channel") or None,
        uniqueid=uniqueid if uniqueid and uniqueid != "<null>" else None,
    )
