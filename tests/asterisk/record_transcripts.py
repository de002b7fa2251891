"""Record what a real Asterisk 22 says, as transcripts for the fakes.

A sandbox Asterisk (``sandbox.py``) runs a small dialplan of this script's
own; a tiny FastAGI server here plays one scripted list of commands per
scenario and writes the exact conversation in the transcript format of
``agi_server/testing/transcripts`` (``< `` from Asterisk, ``> `` sent by the
server, the header ended by an empty ``< `` line). Each scenario is started
by an AMI ``Originate`` of a Local channel: its ``;2`` half is the caller
(``[caller-phone]`` answers and stays, ``[caller-hangs-up]`` hangs up after
a second), its ``;1`` half runs ``AGI()`` in ``[record-agi]`` and then
reports ``${AGISTATUS}`` in a UserEvent (from the ``h`` extension when the
AGI ended with a hang-up), which becomes the transcript's last line::

    # after the session: AGISTATUS=FAILURE

AMI scenarios save everything one AMI session received while they ran
(``\\r\\n`` written as ``\\n``, like the files in ``transcripts/ami``).

The sandbox has no core sounds, so every prompt is missing unless the
scenario lists it in ``sounds``: those are written as 8 kHz mono silence
into the sandbox's ``data/sounds`` just before the call (and removed after).

Run it as ``scripts/record-transcripts [--out DIR] [SCENARIO...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import tempfile
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from amidriver import AmiDriver, match  # noqa: E402
from sandbox import HOW_TO_GET, AsteriskSandbox, asterisk_version, find_asterisk  # noqa: E402

AGI_PORT = 4573  # the port in the recordings' agi_request when it is free
STATUS_LINE = "# after the session: AGISTATUS="
REPLY_TIMEOUT = 30.0


@dataclass(frozen=True)
class AgiScenario:
    """One FastAGI session: the commands the server sends, then it closes."""

    name: str
    about: str
    commands: tuple[str, ...]
    caller: str = "caller-phone"  # the [context] the caller's half runs
    callerid: str = "09351234567"  # "" for none (arrives as ``unknown``)
    sounds: Mapping[str, float] = field(default_factory=dict)  # sound name -> seconds of silence


@dataclass(frozen=True)
class AmiScenario:
    """One AMI session: actions sent (``ActionID`` included when given),
    optionally an AGI scenario run meanwhile, then ``settle`` seconds."""

    name: str
    about: str
    actions: tuple[Mapping[str, str], ...] = ()
    agi: str | None = None
    settle: float = 1.0


_DIGITS = {"digits/1": 0.2, "digits/2": 0.2, "digits/3": 0.2}
_SILENCE = {"agi-test-silence": 3.0}  # 24000 samples: endpos=24000

AGI_SCENARIOS = {s.name: s for s in (
    AgiScenario("stream-file-missing", "STREAM FILE of a missing prompt; the session goes on; then close",
                ('STREAM FILE agi-test-no-such-prompt ""', 'SET VARIABLE AGI_TEST_DONE "1"',
                 "GET VARIABLE AGI_TEST_DONE")),
    AgiScenario("stream-file-present", "STREAM FILE of a 3-second prompt that exists; then close",
                ('STREAM FILE agi-test-silence ""', 'SET VARIABLE AGI_TEST_DONE "1"'), sounds=_SILENCE),
    AgiScenario("say-digits-missing", "SAY DIGITS with no digit sounds installed; then close",
                ('SAY DIGITS 123 ""', 'SET VARIABLE AGI_TEST_DONE "1"', "CHANNEL STATUS")),
    AgiScenario("say-digits-present", "SAY DIGITS with digits/1..3 installed; then close",
                ('SAY DIGITS 123 ""', 'SET VARIABLE AGI_TEST_DONE "1"'), sounds=_DIGITS),
    AgiScenario("say-number-missing", "SAY NUMBER with no digit sounds (123, then 0); then close",
                ('SAY NUMBER 123 ""', 'SAY NUMBER 0 ""', 'SET VARIABLE AGI_TEST_DONE "1"')),
    AgiScenario("get-data-missing", "GET DATA of a missing prompt; then close",
                ("GET DATA agi-test-no-such-prompt 1000 4", 'SET VARIABLE AGI_TEST_DONE "1"')),
    AgiScenario("server-closes-at-once", "the server closes the connection right after the header", ()),
    AgiScenario("exec-dial-answered", "EXEC Dial: the agent answers and hangs up (-1); then close",
                ('EXEC Dial "Local/5050@agents/n,5"', "GET VARIABLE DIALSTATUS",
                 'SET VARIABLE AGI_TEST_DONE "1"')),
    AgiScenario("agi-hangs-up", "the server sends HANGUP, then SET VARIABLE; then close",
                ("HANGUP", 'SET VARIABLE AGI_TEST_DONE "1"')),
    AgiScenario("caller-hangs-up-then-close", "the caller hangs up during WAIT FOR DIGIT; then close",
                ("WAIT FOR DIGIT 6000", 'SET VARIABLE AGI_TEST_DONE "1"'), caller="caller-hangs-up"),
    AgiScenario("failure-then-caller-hangs-up", "STREAM FILE of a missing prompt, then the caller hangs up",
                ('STREAM FILE agi-test-no-such-prompt ""', "WAIT FOR DIGIT 6000", 'SET VARIABLE AGI_TEST_DONE "1"'),
                caller="caller-hangs-up"),
    AgiScenario("basic-commands-no-sounds", "the commands of the shared basic-commands.txt, no sounds at all",
                ("ANSWER", "GET VARIABLE CALLERID(num)", "GET VARIABLE NO_SUCH_VAR",
                 'SET VARIABLE ALOVOIP_DEST "queue,support,1"', "GET VARIABLE ALOVOIP_DEST",
                 'GET FULL VARIABLE "${CALLERID(name)}"', 'EXEC Verbose "hello from recorder"',
                 'EXEC NoSuchApp "x"', 'STREAM FILE no-such-sound ""', "WAIT FOR DIGIT 200",
                 "GET DATA beep 300 4", "CHANNEL STATUS", "DATABASE PUT alovoip k1 v1",
                 "DATABASE GET alovoip k1", "DATABASE GET alovoip missing", "BOGUS COMMAND", "GET DATA",
                 'SAY DIGITS 123 ""', 'VERBOSE "done" 1'), callerid=""),
)}  # fmt: skip

AMI_SCENARIOS = {s.name: s for s in (
    AmiScenario("agi-stream-file-missing", "the AMI side of the stream-file-missing AGI session "
                "(AGIExecStart/AGIExecEnd, VarSet AGISTATUS, the UserEvent)", agi="stream-file-missing"),
)}  # fmt: skip

DIALPLAN = """\
; Written by tests/asterisk/record_transcripts.py.
[general]
static = yes
writeprotect = no

[globals]
RECORDER_AGI = agi://127.0.0.1:{port}

; The ;1 half of each originated Local channel: one scenario per extension.
[record-agi]
exten => _[a-z].,1,Set(CALLERID(name)=Ali "Test" Rezaei)
 same => n,Set(AGI_REPORTED=)
 same => n,AGI(${{RECORDER_AGI}}/record/${{EXTEN}}?a=1&b=two,first arg,second "quoted")
 same => n,Set(AGI_REPORTED=1)
 same => n,UserEvent(AgiStatus,Status: ${{AGISTATUS}})
 same => n,Hangup()
exten => h,1,GotoIf($["${{AGI_REPORTED}}" = "1"]?done)
 same => n,UserEvent(AgiStatus,Status: ${{AGISTATUS}})
 same => n(done),NoOp()

; The ;2 halves: the caller.
[caller-phone]
exten => _X.,1,Answer()
 same => n,Wait(60)
 same => n,Hangup()

[caller-hangs-up]
exten => _X.,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()

; EXEC Dial targets: an agent answers, talks for a second and hangs up.
[agents]
exten => _X.,1,Answer()
 same => n,Wait(1)
 same => n,Hangup()
"""

MANAGER = """\
[general]
enabled = yes
port = {port}
bindaddr = 127.0.0.1
[test]
secret = test
read = all
write = all
[agi-server]
secret = recorder
read = all
write = all
"""


def free_port(preferred: int | None = None) -> int:
    """``preferred`` when it can be bound on loopback, else any free port."""
    for port in (preferred, 0) if preferred else (0,):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port")


def write_silence(path: Path, seconds: float) -> None:
    """A WAV Asterisk plays: 8 kHz, mono, 16-bit, all zeros."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(8000 * seconds))


def transcript_text(lines: list[tuple[str, str]], agistatus: str | None = None) -> str:
    text = "".join(f"{direction} {line}\n" for direction, line in lines)
    return text + (f"{STATUS_LINE}{agistatus}\n" if agistatus else "")


class RecordingAgiServer:
    """The FastAGI side: runs the scenario named in the request path."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._waiting: dict[str, tuple[AgiScenario, asyncio.Future[list[tuple[str, str]]]]] = {}

    async def start(self, port: int) -> None:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def expect(self, scenario: AgiScenario) -> asyncio.Future[list[tuple[str, str]]]:
        future: asyncio.Future[list[tuple[str, str]]] = asyncio.get_running_loop().create_future()
        self._waiting[scenario.name] = (scenario, future)
        return future

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines: list[tuple[str, str]] = []
        future = None
        try:
            while True:
                line = await self._read(reader)
                lines.append(("<", line))
                if line.startswith("agi_network_script: "):
                    name = line.split(": ", 1)[1].split("?", 1)[0].rpartition("/")[2]
                    scenario, future = self._waiting.pop(name, (None, None))
                if line == "":
                    break
            if future is None:
                return
            for command in scenario.commands:
                writer.write(command.encode() + b"\n")
                await writer.drain()
                lines.append((">", command))
                lines.extend(await self._reply(reader))
        except Exception as exc:  # the recording failed: the waiter raises it
            if future is not None:
                future.set_exception(exc)
            return
        finally:
            writer.close()
        future.set_result(lines)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> str:
        raw = await asyncio.wait_for(reader.readline(), REPLY_TIMEOUT)
        if not raw.endswith(b"\n"):
            raise ConnectionError(f"Asterisk closed the connection (got {raw!r})")
        return raw.decode("utf-8")[:-1]

    async def _reply(self, reader: asyncio.StreamReader) -> list[tuple[str, str]]:
        """Lines up to and including the reply: a ``HANGUP`` line may come
        first; a ``520-`` block runs to its ``520 `` line."""
        out: list[tuple[str, str]] = []
        while True:
            line = await self._read(reader)
            out.append(("<", line))
            if line == "HANGUP":
                continue
            if line.startswith("520-"):
                while not line.startswith("520 "):
                    line = await self._read(reader)
                    out.append(("<", line))
            return out


@dataclass
class Recorder:
    """A sandbox Asterisk with the recording dialplan, its AMI, the FastAGI
    side. ``await start()``, then ``record_agi`` / ``record_ami``, ``stop()``."""

    run_dir: Path
    binary: Path
    agi_port: int = AGI_PORT
    sandbox: AsteriskSandbox = field(init=False)
    ami: AmiDriver = field(init=False)
    agi: RecordingAgiServer = field(init=False, default_factory=RecordingAgiServer)

    @property
    def version(self) -> str:
        """What Asterisk writes as ``agi_version``."""
        return asterisk_version(self.binary).removeprefix("Asterisk ").strip()

    async def start(self) -> None:
        await self.agi.start(free_port(self.agi_port))
        ami_port = free_port()
        self.sandbox = AsteriskSandbox(self.run_dir, self.binary, ami_port)
        self.sandbox.etc.mkdir(parents=True, exist_ok=True)
        (self.sandbox.etc / "extensions.conf").write_text(DIALPLAN.format(port=self.agi.port), encoding="utf-8")
        (self.sandbox.etc / "manager.conf").write_text(MANAGER.format(port=ami_port), encoding="utf-8")
        await asyncio.to_thread(self.sandbox.start)
        self.ami = AmiDriver("127.0.0.1", ami_port)
        await self.ami.connect()

    async def stop(self) -> None:
        if hasattr(self, "ami"):
            await self.ami.close()
        if hasattr(self, "sandbox"):
            await asyncio.to_thread(self.sandbox.stop)
        await self.agi.close()

    async def record_agi(self, scenario: AgiScenario) -> str:
        """The transcript of one AGI scenario, AGISTATUS line included."""
        await self._no_calls()
        written = [self.sandbox.sounds / f"{name}.wav" for name in scenario.sounds]
        for path, seconds in zip(written, scenario.sounds.values(), strict=True):
            write_silence(path, seconds)
        try:
            session = self.agi.expect(scenario)
            since = self.ami.mark()
            fields = {"Channel": f"Local/100@{scenario.caller}", "Context": "record-agi", "Exten": scenario.name,
                      "Priority": "1", "Async": "true", "Timeout": "30000"}  # fmt: skip
            if scenario.callerid:
                fields["CallerID"] = f"<{scenario.callerid}>"
            reply = await self.ami.action("Originate", **fields)
            if reply.get("Response") != "Success":
                raise RuntimeError(f"Originate for {scenario.name} failed: {dict(reply)}")
            lines = await asyncio.wait_for(session, 60)
            uniqueid = next(line.split(": ", 1)[1] for d, line in lines if line.startswith("agi_uniqueid: "))
            event = await self.ami.wait_event(match(Event="UserEvent", UserEvent="AgiStatus", Uniqueid=uniqueid),
                                              30, since)  # fmt: skip
        finally:
            for path in written:
                path.unlink(missing_ok=True)
        await self._no_calls()
        return transcript_text(lines, event["Status"])

    async def record_ami(self, scenario: AmiScenario) -> str:
        """Everything one fresh AMI session received while the scenario ran."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.sandbox.ami_port)
        received = bytearray()

        async def pump() -> None:
            while chunk := await reader.read(65536):
                received.extend(chunk)

        task = asyncio.create_task(pump())
        try:
            writer.write(b"Action: Login\r\nUsername: agi-server\r\nSecret: recorder\r\nEvents: on\r\n\r\n")
            await asyncio.sleep(0.5)
            for action in scenario.actions:
                writer.write("".join(f"{k}: {v}\r\n" for k, v in action.items()).encode() + b"\r\n")
                await writer.drain()
                await asyncio.sleep(0.2)
            if scenario.agi:
                await self.record_agi(AGI_SCENARIOS[scenario.agi])
            await asyncio.sleep(scenario.settle)
        finally:
            task.cancel()
            writer.close()
        return received.decode("utf-8").replace("\r\n", "\n")

    async def _no_calls(self, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while channels := await self.ami.channels():
            if loop.time() > deadline:
                raise RuntimeError(f"channels still up: {[c['Channel'] for c in channels]}")
            for channel in channels:
                await self.ami.action("Hangup", Channel=channel["Channel"])
            await asyncio.sleep(0.2)


async def record(out: Path, names: list[str], binary: Path) -> list[Path]:
    written = []
    with tempfile.TemporaryDirectory(prefix="record-transcripts-") as run:
        recorder = Recorder(Path(run), binary)
        try:
            await recorder.start()
            for name in names:
                if name in AGI_SCENARIOS:
                    path, text = out / "agi" / f"{name}.txt", await recorder.record_agi(AGI_SCENARIOS[name])
                else:
                    path, text = out / "ami" / f"{name}.txt", await recorder.record_ami(AMI_SCENARIOS[name])
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
                written.append(path)
                print(f"  {path}", flush=True)
        finally:
            await recorder.stop()
    return written


def parse_args(argv: list[str]) -> argparse.Namespace:
    every = [*AGI_SCENARIOS, *AMI_SCENARIOS]
    parser = argparse.ArgumentParser(prog="record-transcripts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="output directory (agi/ and ami/ under it); default: a new temp dir")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"default: all ({', '.join(every)})")
    args = parser.parse_args(argv)
    unknown = [n for n in args.scenarios if n not in every]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)} (see --list)")
    args.scenarios = args.scenarios or every
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        for scenario in [*AGI_SCENARIOS.values(), *AMI_SCENARIOS.values()]:
            kind = "agi" if isinstance(scenario, AgiScenario) else "ami"
            print(f"{kind}/{scenario.name}: {scenario.about}")
        return 0
    binary = find_asterisk()
    if binary is None:
        print(HOW_TO_GET, file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="transcripts-"))
    print(f"recording with {binary} ({asterisk_version(binary)}) into {out}", flush=True)
    asyncio.run(record(out, args.scenarios, binary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
