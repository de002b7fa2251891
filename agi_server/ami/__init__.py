"""AMI: a supervised, logged-in connection to Asterisk's manager interface,
and the checks and lookups features build on it.

Every name importers use is re-exported here (``from agi_server.ami import
AmiClient, check_channel``); the code lives in small modules:

- ``checks``: strict checks for extens, numbers, contexts, channels;
- ``calls``: ``CoreShowChannels`` rows and where an extension is talking;
- ``state``: extension, device and queue member states, cached from events;
- ``originate``: the Originate action built and read without I/O;
- ``events``: event subscriptions and their listener tasks;
- ``actions``: replies matched to actions by ActionID, without I/O;
- ``link``: one connection: parser, writer, actions in flight, events;
- ``client``: ``AmiClient``, the connection life cycle and the actions;
- ``chanspy``: spy / whisper / barge on an agent's call (ring, then ChanSpy);
- ``click_to_call``: ring the user, then dial the customer.
"""

from .calls import CallChannel, ChannelInfo, ExtensionStatusRow, extension_of, locate_call
from .chanspy import (
    CHANSPY_OPTIONS,
    SPY_MODES,
    JoinResult,
    NotOnCall,
    SupervisorError,
    caller_id,
    chanspy_data,
    join_agent_call,
    ring_channel,
)
from .checks import (
    MAX_CHANNEL_LENGTH,
    MAX_EXTEN_LENGTH,
    MAX_NUMBER_LENGTH,
    check_channel,
    check_context,
    check_exten,
    check_number,
)
from .click_to_call import ClickToCallResult, click_to_call
from .client import AmiClient, AmiSettings
from .originate import ORIGINATE_REASONS, OriginateResult
from .state import EXTENSION_STATUS_TEXT, ExtensionState, QueueMember, StateCache

__all__ = [
    "CHANSPY_OPTIONS",
    "EXTENSION_STATUS_TEXT",
    "MAX_CHANNEL_LENGTH",
    "MAX_EXTEN_LENGTH",
    "MAX_NUMBER_LENGTH",
    "ORIGINATE_REASONS",
    "SPY_MODES",
    "AmiClient",
    "AmiSettings",
    "CallChannel",
    "ChannelInfo",
    "ClickToCallResult",
    "ExtensionState",
    "ExtensionStatusRow",
    "JoinResult",
    "NotOnCall",
    "OriginateResult",
    "QueueMember",
    "StateCache",
    "SupervisorError",
    "caller_id",
    "chanspy_data",
    "check_channel",
    "check_context",
    "check_exten",
    "check_number",
    "click_to_call",
    "extension_of",
    "join_agent_call",
    "locate_call",
    "ring_channel",
]
