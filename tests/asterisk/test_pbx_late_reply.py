"""What a real Asterisk 22 does when the FastAGI server writes a command
while the previous one has no reply yet - the evidence for the server's
"late reply" handling (``protocol/agi.py``, ``session.resync``).

A throw-away Asterisk (no agi-server: a raw FastAGI peer in the test plays
the server) runs ``AGI()`` on a Local channel. The peer sends a command,
and before its reply writes the sync, ``GET FULL VARIABLE "<token>"``, then
the done-marker; it records every line Asterisk sends back. Found:

- ``STREAM FILE``, ``GET DATA`` (media commands that watch the AGI socket
  while they play): the sync interrupts them, and they send **no reply**;
  the next line is the sync's echo;
- ``WAIT FOR DIGIT``: interrupted too, but answers ``200 result=1`` (the
  "digit" 1) before the sync's echo;
- ``EXEC Wait`` (an application that does not watch the socket): its own
  reply comes when it ends, then the sync's;
- a ``STREAM FILE`` that ended just before the sync: its reply, then the
  sync's.

In every case the done-marker written after the echo is set on the
channel, and the dialplan after ``AGI()`` sees it.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import pytest

from amidriver import AmiDriver, match
from pbx import free_port
from sandbox import AsteriskSandbox, find_asterisk

pytestmark = pytest.mark.asyncio(loop_scope="function")

TOKEN = "agisrv-sync-0123456789abcdef"
DIALPLAN = """
[late]
exten => _X.,1,Answer()
 same => n,Set(AGISRV_DONE=)
 same => n,AGI(agi://127.0.0.1:{port}/${{EXTEN}})
 same => n,UserEvent(LateReply,Case: ${{EXTEN}},Done: ${{AGISRV_DONE}},Status: ${{AGISTATUS}})
 same => n,Hangup()

[hold]
exten => s,1,Answer()
 same => n,Wait(30)
"""

# case -> (the command left without a reply, seconds before the sync)
CASES = {
    "101": ('STREAM FILE late-long ""', 0.5),
    "102": ("GET DATA late-long 5000 4", 0.5),
    "103": ("WAIT FOR DIGIT 20000", 0.5),
    "104": ('EXEC Wait "1.5"', 0.5),
    "105": ('STREAM FILE late-short ""', 1.5),  # a 0.2 s prompt: ended before the sync
}


def silence(path: Path, seconds: float) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * int(8000 * seconds))


class RawFastAgi:
    """Plays the server: one command, the sync before its reply, the marker."""

    def __init__(self) -> None:
        self.seen: dict[str, list[tuple[float, str]]] = {}
        self.server: asyncio.Server | None = None

    async def start(self, port: int) -> None:
        self.server = await asyncio.start_server(self.session, "127.0.0.1", port)

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        header = {}
        while line := (await reader.readline()).decode().rstrip("\n"):
            key, _, value = line.partition(": ")
            header[key] = value
        case = header["agi_network_script"]
        command, delay = CASES[case]
        lines = self.seen[case] = []
        writer.write(command.encode() + b"\n")
        await asyncio.sleep(delay)
        sent = time.monotonic()
        writer.write(f'GET FULL VARIABLE "{TOKEN}"\n'.encode())
        while True:  # every line up to the sync's echo
            line = (await asyncio.wait_for(reader.readline(), 10)).decode().rstrip("\n")
            lines.append((round(time.monotonic() - sent, 2), line))
            if TOKEN in line:
                break
        writer.write(f'SET VARIABLE AGISRV_DONE "1/case {case}"\n'.encode())
        lines.append((0.0, (await reader.readline()).decode().rstrip("\n")))
        writer.close()


@pytest.fixture(scope="module")
def asterisk():
    binary = find_asterisk()
    assert binary is not None  # the suite's conftest skips without one
    return binary


async def test_asterisk_drops_the_reply_of_an_interrupted_prompt_and_answers_the_sync(tmp_path, asterisk):
    agi_port, ami_port = free_port(), free_port()
    sandbox = AsteriskSandbox(tmp_path, asterisk, ami_port)
    sandbox.etc.mkdir(parents=True, exist_ok=True)
    (sandbox.etc / "extensions.conf").write_text(DIALPLAN.format(port=agi_port), encoding="utf-8")
    sandbox.sounds.mkdir(parents=True, exist_ok=True)
    silence(sandbox.sounds / "late-long.wav", 20.0)
    silence(sandbox.sounds / "late-short.wav", 0.2)
    peer = RawFastAgi()
    await peer.start(agi_port)
    await asyncio.to_thread(sandbox.start)
    ami = AmiDriver("127.0.0.1", ami_port)
    try:
        await ami.connect()
        since = ami.mark()
        for case in CASES:
            await ami.action("Originate", Channel=f"Local/{case}@late/n", Context="hold", Exten="s", Priority="1",
                             Async="true")  # fmt: skip
        done = {}
        for case in CASES:
            event = await ami.wait_event(match(Event="UserEvent", UserEvent="LateReply", Case=case), 15, since)
            done[case] = (event["Done"], event["Status"])
    finally:
        await ami.close()
        await asyncio.to_thread(sandbox.stop)
        peer.server.close()
    print("\n" + "\n".join(f"{case} {CASES[case][0]!r}: {peer.seen[case]}" for case in CASES))
    echo = f"200 result=1 ({TOKEN})"
    replies = {case: [line for _, line in peer.seen[case]] for case in CASES}
    assert replies["101"] == [echo, "200 result=1"]  # STREAM FILE interrupted: no reply of its own
    assert replies["102"] == [echo, "200 result=1"]  # GET DATA interrupted: no reply either
    assert replies["103"] == ["200 result=1", echo, "200 result=1"]  # WAIT FOR DIGIT: "1", then the echo
    assert replies["104"][0] == "200 result=0" and replies["104"][1:] == [echo, "200 result=1"]
    assert peer.seen["104"][0][0] > 0.7  # EXEC Wait: only when it ends (1.5 s after, 0.5 s before the sync)
    assert replies["105"][0].startswith("200 result=0 endpos=") and replies["105"][1:] == [echo, "200 result=1"]
    assert all(peer.seen[case][0][0] < 0.3 for case in ("101", "102", "103"))  # interrupted at once
    for case in CASES:  # the marker written after the echo is what the dialplan sees
        assert done[case] == (f"1/case {case}", "SUCCESS"), (case, done[case])
