"""AMI: a supervised, logged-in connection to Asterisk's manager interface,
and the checks and lookups features build on it.

Every name importers use is re-exported here (``from agi_server.ami import
AmiClient, check_channel``); the code lives in small modules:

- ``checks``: strict checks for extens, numbers, contexts, channels;
- ``calls``: ``CoreShowChannels`` rows and where an extension is talking;
- ``state``: extension and device states, cached from events;
- ``originate``: the Originate action built and read without I/O;
- ``events``: event subscriptions and their listener tasks;
- ``actions``: replies matched to actions by ActionID, without I/O;
- ``link``: one connection: parser, writer, actions in flight, events;
- ``client``: ``AmiClient``, the connection life cycle and the actions.
"""

from .calls import CallChannel, ChannelInfo, ExtensionStatusRow, extension_of, locate_call
from .checks import (
    MAX_CHANNEL_LENGTH,
    MAX_EXTEN_LENGTH,
    MAX_NUMBER_LENGTH,
    check_channel,
    check_context,
    check_exten,
    check_number,
)
from .client import AmiClient, AmiSettings
from .originate import ORIGINATE_REASONS, OriginateResult
from .state import EXTENSION_STATUS_TEXT, ExtensionState, StateCache

__all__ = [
    "EXTENSION_STATUS_TEXT",
    "MAX_CHANNEL_LENGTH",
    "MAX_EXTEN_LENGTH",
    "MAX_NUMBER_LENGTH",
    "ORIGINATE_REASONS",
    "AmiClient",
    "AmiSettings",
    "CallChannel",
    "ChannelInfo",
    "ExtensionState",
    "ExtensionStatusRow",
    "OriginateResult",
    "StateCache",
    "check_channel",
    "check_context",
    "check_exten",
    "check_number",
    "extension_of",
    "locate_call",
]
