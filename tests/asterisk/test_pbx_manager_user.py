"""The least-privilege AMI user of docs/security.md on a real Asterisk 22:
the block is read from the doc itself, and agi-server's own AMI client logs
in with it. Everything the server uses works (login, the state lists,
CoreShowChannels, QueueStatus, ExtensionState, Originate and its outcome;
the call, dialplan, user and system events arrive), and what it does not
need is refused (Hangup, Command, an Originate of System)."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from agi_server.ami import AmiClient, AmiSettings
from agi_server.errors import AmiActionFailed
from pbx import free_port
from sandbox import AsteriskSandbox, find_asterisk

pytestmark = pytest.mark.asyncio(loop_scope="function")

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
DIALPLAN = """
[agents]
exten => 5051,hint,Custom:5051

[phones]
exten => _X.,1,Answer()
 same => n,Set(FROM_DID=02191000000)
 same => n,UserEvent(AgiServerCallback,Attempt: 7.1,DialStatus: ANSWER)
 same => n,Wait(0.5)
 same => n,Hangup()
"""


def documented_user() -> tuple[str, str]:
    """The ``[agi-server]`` block of docs/security.md, and its secret."""
    block = re.search(r"```ini\n(\[agi-server\]\n.*?)```", SECURITY_DOC.read_text(encoding="utf-8"), re.S)
    assert block is not None, "docs/security.md has no [agi-server] manager.conf block"
    secret = re.search(r"^secret = (\S+)", block[1], re.M)
    assert secret is not None
    return block[1], secret[1]


async def test_the_documented_manager_user_can_do_what_agi_server_needs_and_no_more(tmp_path, caplog):
    binary = find_asterisk()
    assert binary is not None  # the suite's conftest skips without one
    block, secret = documented_user()
    ami_port = free_port()
    sandbox = AsteriskSandbox(tmp_path, binary, ami_port)
    sandbox.etc.mkdir(parents=True, exist_ok=True)
    (sandbox.etc / "extensions.conf").write_text(DIALPLAN, encoding="utf-8")
    (sandbox.etc / "manager.conf").write_text(
        f"[general]\nenabled = yes\nport = {ami_port}\nbindaddr = 127.0.0.1\n\n{block}", encoding="utf-8"
    )
    await asyncio.to_thread(sandbox.start)
    ami = AmiClient(AmiSettings("127.0.0.1", ami_port, "agi-server", secret, action_timeout=5))
    events: list[dict[str, str]] = []
    ami.on_event("*", lambda event: events.append(dict(event)))
    caplog.set_level(logging.WARNING, logger="agi_server")
    try:
        await ami.start()
        assert await ami.wait_connected(20), ami.last_error
        # The state lists at login (write reporting): the hint is known.
        assert "state cache incomplete" not in caplog.text
        assert ami.extension_state("5051", "agents") is not None
        await ami.action({"Action": "ExtensionState", "Exten": "5051", "Context": "agents"})
        assert await ami.channels() == []  # CoreShowChannels
        await ami.action({"Action": "QueueStatus"})
        await ami.action({"Action": "Ping"})

        # Originate (write originate) and its outcome (read call) ...
        result = await ami.originate("Local/100@phones/n", context="phones", exten="200", timeout_s=10)
        assert result.success, result

        def seen(name: str, **fields: str) -> bool:
            return any(e.get("Event") == name and all(e.get(k) == v for k, v in fields.items()) for e in events)

        async def arrived() -> None:
            while not seen("Hangup") or not seen("UserEvent", UserEvent="AgiServerCallback"):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(arrived(), 10)
        assert seen("Newchannel") and seen("Newstate")  # read call
        assert seen("Newexten") and seen("VarSet", Variable="FROM_DID")  # read dialplan (the call log)
        assert seen("UserEvent", UserEvent="AgiServerCallback", DialStatus="ANSWER")  # read user
        assert seen("FullyBooted")  # read system, at login

        # ... and nothing more.
        denied = "Permission denied"
        for refused, why in (
            ({"Action": "Hangup", "Channel": "Local/100@phones-00000000;1"}, denied),
            ({"Action": "Command", "Command": "core show version"}, denied),
            ({"Action": "Setvar", "Variable": "X", "Value": "1"}, denied),
            ({"Action": "GetConfig", "Filename": "manager.conf"}, denied),
            ({"Action": "Originate", "Channel": "Local/100@phones/n", "Application": "System", "Data": "true"},
             "Originate Access Forbidden: app or data blacklisted"),  # needs write system too
        ):  # fmt: skip
            with pytest.raises(AmiActionFailed) as info:
                await ami.action(refused)
            assert why in str(info.value), (refused, info.value)
    finally:
        await ami.close()
        await asyncio.to_thread(sandbox.stop)
    names = sorted({e["Event"] for e in events if e.get("Event")})
    print(f"\nevents seen by the least-privilege user: {', '.join(names)}")
