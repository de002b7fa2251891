"""Replies that never come, against a real ``serve`` (issue 16, "Smaller"):

- a silent peer during ``STREAM FILE`` is given up on after the prompt's own
  length plus ``agi.command_timeout`` (the WAV header under
  ``sounds.directory``), or ``agi.media_timeout`` for a prompt the server
  has no file for; never the whole ``call_timeout``;
- after that, the failure destination is still set: the server sends the
  sync (``GET FULL VARIABLE "<token>"``), and once its echo is back, the
  done-marker. The peer here answers the way Asterisk 22 does
  (``tests/asterisk/test_pbx_late_reply.py`` on a real one): a media command
  interrupted by the next command sends no reply; one that had just ended
  sends its reply before the sync's, which the server drops;
- a peer that answers nothing at all is closed after a bounded wait, and
  the dialplan's own fallback takes the call.
"""

from __future__ import annotations

import asyncio
import time
import wave

import pytest
from fault_kit import fault_config

from agi_server.testing.agi_client import CallScript, header_lines

PROMPT_SECONDS = 1.0


def write_prompt(path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:  # what `sounds build` writes: 8 kHz mono 16-bit
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * int(8000 * seconds))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from agi_server.testing.serve_process import ServeProcess

    text = (
        fault_config()
        .replace("  header_timeout: 1s\n", "  header_timeout: 1s\n  command_timeout: 1s\n  media_timeout: 1.5s\n")
        .replace("    auto_dial: false\n", "    auto_dial: false\n    input_timeout: 0.1s\n")  # typing: 1.7 s at most
    )
    process = ServeProcess(tmp_path_factory.mktemp("timeouts"), text)
    # the callback module's first prompt, 1 s long, where `sounds build` puts it
    write_prompt(process.data_dir / "sounds" / "fa" / "agi-server" / "callback-intro.wav", PROMPT_SECONDS)
    process.start()
    yield process
    process.kill()


class SilentAsterisk:
    """A raw FastAGI peer: answers ANSWER, then goes silent on the first
    STREAM FILE, and from then on does what the test says."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def call(cls, server, module: str = "801") -> SilentAsterisk:
        reader, writer = await asyncio.open_connection(*server.address)
        script = CallScript(script=f"callback/{module}", callerid="09121234567", context=f"agi-callback-{module}")
        writer.write("".join(line + "\n" for line in header_lines(script, *server.address)).encode())
        peer = cls(reader, writer)
        assert await peer.line() == "ANSWER"
        writer.write(b"200 result=0\n")
        return peer

    async def line(self, within: float = 5.0) -> str:
        return (await asyncio.wait_for(self.reader.readline(), within)).decode().rstrip("\n")

    async def closed(self, within: float) -> bool:
        try:
            return await asyncio.wait_for(self.reader.read(1000), within) == b""
        except ConnectionError:
            return True


async def given_up_after(peer: SilentAsterisk, prompt: str) -> tuple[float, str]:
    """Seconds between the prompt's STREAM FILE and the server's sync; the token."""
    assert (await peer.line()).startswith(f"STREAM FILE {prompt} ")
    started = time.monotonic()
    sync = await peer.line(within=10)
    assert sync.startswith('GET FULL VARIABLE "agisrv-sync-'), sync
    return time.monotonic() - started, sync.split('"')[1]


@pytest.mark.parametrize("late", [False, True], ids=["interrupted", "just-ended"])
async def test_a_silent_peer_is_given_up_on_after_the_prompt_and_still_gets_its_failure_destination(server, late):
    peer = await SilentAsterisk.call(server)
    held, token = await given_up_after(peer, "agi-server/callback-intro")
    # the 1 s prompt + agi.command_timeout (1 s), not agi.call_timeout (120 s)
    assert PROMPT_SECONDS + 1.0 - 0.1 < held < PROMPT_SECONDS + 1.0 + 1.0, held
    if late:  # STREAM FILE had just ended: its reply comes first, and is dropped
        peer.writer.write(b"200 result=0 endpos=8000\n")
    peer.writer.write(f"200 result=1 ({token})\n".encode())
    done = await peer.line()
    assert done.startswith('SET VARIABLE AGISRV_DONE "1/queue/support/ext-queues/support/1/error: AgiTimeout"'), done
    peer.writer.write(b"200 result=1\n")
    assert await peer.closed(within=3)
    peer.writer.close()
    log = server.log()
    assert "late reply given up on; connection back in step" in log
    assert "-> failure destination queue:support (error: AgiTimeout)" in log


async def test_a_prompt_without_a_file_waits_media_timeout(server):
    # The callback module's prompts other than the intro have no file here:
    # choose "another number" (2), and GET DATA's prompt has no length.
    peer = await SilentAsterisk.call(server)
    assert (await peer.line()).startswith("STREAM FILE agi-server/callback-intro ")
    peer.writer.write(b"200 result=50 endpos=100\n")  # the caller pressed 2 during the intro
    command = await peer.line()
    assert command.startswith("GET DATA agi-server/callback-enter-number "), command
    started = time.monotonic()
    sync = await peer.line(within=20)
    held = time.monotonic() - started
    # agi.media_timeout (1.5 s) + the caller's typing time (input_timeout x digits) + 1 s
    timeout_ms, digits = (int(word) for word in command.split()[3:5])
    budget = 1.5 + timeout_ms / 1000 * digits + 1.0
    assert sync.startswith('GET FULL VARIABLE "agisrv-sync-')
    assert budget - 0.2 < held < budget + 1.0, (held, budget)
    peer.writer.close()


async def test_a_peer_that_never_answers_again_is_closed_within_bounds(server):
    peer = await SilentAsterisk.call(server)
    await given_up_after(peer, "agi-server/callback-intro")
    started = time.monotonic()
    assert await peer.closed(within=5)  # the sync's echo never comes: min(command_timeout, 3 s)
    assert time.monotonic() - started < 1.0 + 0.5
    peer.writer.close()
    await asyncio.sleep(0.1)
    assert "could not set the failure destination" in server.log()
