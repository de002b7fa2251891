"""Where an extension is talking: the call lookup behind spy / whisper /
barge and ``agi-server status``.

``locate_call`` is a pure function over a ``CoreShowChannels`` snapshot
(``ChannelInfo`` rows), so the rules for device channels, Local pairs and
bridges are tested on data, without AMI; ``AmiClient`` only fetches the
snapshot.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from ..numbers.extensions import is_extension
from ..protocol.ami import Headers

_LOCAL_HALF = re.compile(r"Local/(?P<exten>[^@;/]+)@(?P<rest>[^;/]+-[0-9a-fA-F]+);(?P<half>[12])")
_DEVICE_CHANNEL = re.compile(r"(?P<tech>[A-Za-z0-9_]+)/(?P<resource>[^;/@]+)-[0-9a-fA-F]+")
_MAX_HOPS = 4  # Local pairs chained between the agent and the peer
# Queue member interfaces and dial strings: PJSIP/5050, Local/5050@from-queue/n
_LOCAL_INTERFACE = re.compile(r"Local/(?P<exten>[^@;/]+)@[A-Za-z0-9_.+-]+(?:/n)?")
_DEVICE_INTERFACE = re.compile(r"(?P<tech>[A-Za-z0-9_]+)/(?P<resource>[^;/@-]+)")


def extension_of(name: str | None, *, channel_only: bool = False) -> str | None:
    """The extension behind a channel name (``PJSIP/5050-0000001a``,
    ``Local/5050@agents-0000000a;1``) or, unless ``channel_only``, behind a
    queue interface / dial string (``PJSIP/5050``, ``Local/5050@from-queue/n``).

    One rule for every module that has to tell which operator an AMI event
    or a channel belongs to; anything that is not an extension (a trunk, a
    customer's Local channel with letters, junk) gives None.
    """
    if not name:
        return None
    match = _LOCAL_HALF.fullmatch(name) or _DEVICE_CHANNEL.fullmatch(name)
    if match is not None and match.re is _DEVICE_CHANNEL and match["tech"].lower() == "local":
        match = None
    if match is None and not channel_only:
        match = _LOCAL_INTERFACE.fullmatch(name) or _DEVICE_INTERFACE.fullmatch(name)
        if match is not None and match.re is _DEVICE_INTERFACE and match["tech"].lower() == "local":
            match = None
    if match is None:
        return None
    exten = match["exten"] if "exten" in match.re.groupindex else match["resource"]
    return exten if is_extension(exten) else None


def _real_number(text: str | None) -> str | None:
    return text if text and text != "<unknown>" else None


@dataclass(frozen=True)
class ChannelInfo:
    """One ``CoreShowChannel`` row (only what the call lookup needs)."""

    name: str
    bridge_id: str
    caller_num: str
    connected_num: str
    context: str
    exten: str
    application: str
    state: str
    duration: str

    @classmethod
    def from_fields(cls, fields: Headers) -> ChannelInfo:
        def get(key: str) -> str:
            return fields.get(key) or ""

        return cls(
            name=get("Channel"),
            bridge_id=get("BridgeId"),
            caller_num=get("CallerIDNum"),
            connected_num=get("ConnectedLineNum"),
            context=get("Context"),
            exten=get("Exten"),
            application=get("Application"),
            state=get("ChannelStateDesc"),
            duration=get("Duration"),
        )


@dataclass(frozen=True)
class CallChannel:
    """Where extension ``exten`` is talking: ``channel`` is the agent-side
    channel inside the bridge (spy / whisper / barge on this one)."""

    exten: str
    channel: str
    bridge_id: str
    peer_channel: str | None
    peer_number: str | None
    other_half: str | None  # the Local sibling running the agent's dialplan


def _belongs_to(channel: ChannelInfo, exten: str) -> tuple[int, str] | None:
    """Rank of a channel of ``exten`` (lower is better), None if not its."""
    local = _LOCAL_HALF.fullmatch(channel.name)
    if local:
        return (1, local["half"]) if local["exten"] == exten else None
    device = _DEVICE_CHANNEL.fullmatch(channel.name)
    if device and device["tech"].lower() != "local" and device["resource"] == exten:
        return (0, "")
    return None


def _sibling(name: str) -> str | None:
    local = _LOCAL_HALF.fullmatch(name)
    if not local:
        return None
    other = "2" if local["half"] == "1" else "1"
    return f"{name[:-1]}{other}"


def locate_call(channels: Sequence[ChannelInfo], exten: str) -> CallChannel | None:
    """Find the bridged call of ``exten`` in a ``CoreShowChannels`` snapshot.

    The rule:
    1. ``exten``'s channels are device channels ``Tech/<exten>-<seq>``
       (``PJSIP/5051-00000012``) and Local halves ``Local/<exten>@ctx-<seq>;N``.
    2. Only channels inside a bridge count; a device channel wins over a
       Local half, ``;1`` over ``;2`` (for a queue member ``;1`` is the half
       bridged with the caller, ``;2`` runs the agent's dialplan).
    3. The peer is the other member of that bridge. When the peer is itself a
       Local half whose sibling sits in another bridge, the walk continues
       there (agent phone -> Local;2 ... Local;1 -> customer), a few hops at
       most.
    4. The peer's number is the agent channel's ConnectedLineNum, else the
       peer's CallerIDNum.
    """
    ranked = [
        (rank, channel)
        for channel in channels
        if channel.bridge_id and (rank := _belongs_to(channel, exten)) is not None
    ]
    if not ranked:
        return None
    chosen = min(ranked, key=lambda item: item[0])[1]
    by_name = {c.name: c for c in channels}
    bridges: dict[str, list[ChannelInfo]] = defaultdict(list)
    for channel in channels:
        if channel.bridge_id:
            bridges[channel.bridge_id].append(channel)

    seen = {chosen.name}
    current, peer = chosen, None
    for _ in range(_MAX_HOPS):
        others = [c for c in bridges[current.bridge_id] if c.name not in seen]
        if not others:
            break
        peer = others[0]
        seen.add(peer.name)
        sibling = by_name.get(_sibling(peer.name) or "")
        if sibling is None or not sibling.bridge_id or sibling.name in seen:
            break
        seen.add(sibling.name)
        current = sibling

    other_half = _sibling(chosen.name)
    return CallChannel(
        exten=exten,
        channel=chosen.name,
        bridge_id=chosen.bridge_id,
        peer_channel=peer.name if peer else None,
        peer_number=_real_number(chosen.connected_num) or (_real_number(peer.caller_num) if peer else None),
        other_half=other_half if other_half in by_name else None,
    )


@dataclass(frozen=True)
class ExtensionStatusRow:
    """One line of ``agi-server status``."""

    exten: str
    context: str
    status: int
    status_text: str
    channel: str | None
    talking_to: str | None
