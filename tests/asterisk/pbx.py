"""The FreePBX-shaped test PBX and the agi-server that serves it.

:func:`render_pbx` writes the PBX's config (``tests/asterisk/pbx/*.j2``) into
a sandbox; :class:`AgiServerProcess` runs ``agi-server serve`` as a real
process (the console script of the installed package); :class:`TestPbx`
wires a running Asterisk, the server and the test's AMI connection, and has
the moves a test makes: a customer calls a DID, a phone is set to not
answer, a key is pressed when a prompt starts.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from amidriver import AmiDriver, Event, match
from sandbox import AsteriskSandbox

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "pbx"

# Operators 5050/5051 (support) and 6060 (sales), managers 300/301, the
# supervisor 200, the reception 997 (its no-answer destination is callback 801).
EXTENSIONS = ("5050", "5051", "6060", "300", "301", "200", "997")
QUEUES = (
    {"name": "support", "members": ("5050", "5051"), "member_timeout": 3, "maxwait": 7,
     "failover": "agi-callback-800,s,1", "agent_context": "from-internal"},
    {"name": "sales", "members": ("6060",), "member_timeout": 3, "maxwait": 7,
     "failover": "test-dest,salesfailover,1", "agent_context": "from-internal"},
)  # fmt: skip
# Inbound routes: DID -> destination (FreePBX: Connectivity -> Inbound Routes).
DIDS = {
    "02188776655": "agi-calldist-700,s,1",
    "02188776610": "agi-calldist-710,s,1",
    "02188776630": "agi-calldist-720,s,1",
    "02188776603": "ivr-3,s,1",
    "02188776620": "ext-queues,support,1",
    "02188776621": "ext-queues,sales,1",
    "02188776697": "from-internal,997,1",
    "02188776680": "agi-callback-800,s,1",
    "02188776682": "agi-callback-802,s,1",
    "02188776691": "agi-reconnect-901,s,1",
}
NO_ANSWER_DESTINATIONS = {"997": "agi-callback-801^s^1"}
# FreePBX's globals_custom.conf: every queue's gosub, as the docs say (one
# generated context for the help keys and the reconnect answer hooks).
GLOBALS = {"QGOSUB": "agi-queue-answered"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def render_pbx(etc: Path, *, globals_: dict[str, str] | None = None) -> None:
    """The test PBX's config files into ``etc`` (before Asterisk starts)."""
    env = _env()
    values = {
        "extensions": EXTENSIONS, "queues": QUEUES, "ring_timer": 3,
        "dids": [{"number": n, "destination": d} for n, d in DIDS.items()],
        "globals": GLOBALS if globals_ is None else globals_,
    }  # fmt: skip
    etc.mkdir(parents=True, exist_ok=True)
    for name in ("extensions.conf", "queues.conf", "features.conf", "extensions_custom.conf", "globals_custom.conf"):
        (etc / name).write_text(env.get_template(name + ".j2").render(**values), encoding="utf-8")


def closed_hours() -> str:
    """A window of working hours that is not now: every day, from two to
    three hours from now in Asia/Tehran (callback 802's ``hours``)."""
    now = datetime.now(ZoneInfo("Asia/Tehran"))
    start, end = now + timedelta(hours=2), now + timedelta(hours=3)
    return f"sat-fri {start:%H:%M}-{end:%H:%M}"


def render_server_config(path: Path, **values: object) -> Path:
    values.setdefault("closed_hours", closed_hours())
    text = _env().get_template("agi-server.yaml.j2").render(**values)
    path.write_text(text, encoding="utf-8")
    return path


def agi_server_command() -> list[str]:
    """The installed console script next to this interpreter, else ``-m``."""
    script = Path(sys.executable).parent / "agi-server"
    return [str(script)] if script.exists() else [sys.executable, "-m", "agi_server.cli"]


def cli(config: Path, *args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``agi-server <args> -c config`` as an admin would."""
    out = subprocess.run([*agi_server_command(), *args, "-c", str(config)], capture_output=True, text=True,
                         timeout=timeout)  # fmt: skip
    if check and out.returncode != 0:
        raise AssertionError(f"agi-server {' '.join(args)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


class AgiServerProcess:
    """``agi-server serve`` as a real process; its log goes to ``log``."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [*agi_server_command(), "serve", "-c", str(self.config)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"agi-server exited with {self.process.returncode}:\n{self.log_tail()}")
            if "agi-server ready" in self.log.read_text(errors="replace").split("--- start ---")[-1]:
                return
            time.sleep(0.1)
        raise RuntimeError(f"agi-server did not start within {timeout:g}s:\n{self.log_tail()}")

    def restart(self) -> None:
        self.stop()
        with open(self.log, "a") as out:
            out.write("--- start ---\n")
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def reload(self, timeout: float = 15.0) -> None:
        """SIGHUP, as an admin reloads the config; returns once it is done."""
        assert self.process is not None
        done = self.log.read_text(errors="replace").count("config reloaded")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while self.log.read_text(errors="replace").count("config reloaded") <= done:
            if time.monotonic() > deadline:
                raise AssertionError(f"agi-server did not reload within {timeout:g}s:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: a crash, no clean-up of any kind."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Call:
    """An inbound call the test placed: the customer's handset channel
    (the ``;1`` half of the Local channel) and its caller ID."""

    caller: str
    did: str
    handset: str  # Local/<did>@from-pstn-XXXX;1: keys pressed here reach the PBX side
    pbx_side: str  # the ;2 half, which runs the dialplan (and the AGI)


@dataclass
class TestPbx:
    sandbox: AsteriskSandbox
    server: AgiServerProcess
    ami: AmiDriver
    config: Path
    data_dir: Path
    notes: list[str] = field(default_factory=list)

    # --- set-up between tests -------------------------------------------------

    async def seed(self) -> None:
        """AstDB and device states FreePBX keeps for its extensions."""
        for exten in EXTENSIONS:
            await self.ami.db_put(f"AMPUSER/{exten}", "cidnum", exten)
            await self.ami.db_put(f"AMPUSER/{exten}", "cidname", f"Ext {exten}")
        for exten, dest in NO_ANSWER_DESTINATIONS.items():
            await self.ami.db_put(f"AMPUSER/{exten}", "noanswer_dest", dest)

    async def reset(self) -> None:
        """No calls, default phones and customers, idle devices, empty store."""
        self.ami.stop_reacting()
        await self.hangup_everything()
        await self.ami.db_deltree("testphone")
        await self.ami.db_deltree("testcust")
        await self.ami.db_deltree("DND")
        for exten in EXTENSIONS:
            await self.ami.device_state(f"Custom:{exten}", "NOT_INUSE")
            await self.ami.device_state(f"Custom:DND{exten}", "NOT_INUSE")
        for queue in QUEUES:
            for member in queue["members"]:
                await self.ami.action("QueuePause", Interface=f"Local/{member}@from-queue/n", Paused="false")
        await self.flush_store()

    def serve_with(self, config: Path) -> None:
        """Restart ``agi-server serve`` on another config (same ports and store)."""
        self.server.stop()
        self.server.config = config
        self.server.restart()

    async def hangup_everything(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            channels = await self.ami.channels()
            if not channels:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"channels still up: {[c['Channel'] for c in channels]}")
            for channel in channels:
                await self.ami.action("Hangup", Channel=channel["Channel"])
            await asyncio.sleep(0.2)

    async def flush_store(self) -> None:
        """Empty agi-server's Redis (the embedded one under data_dir)."""
        import redis.asyncio as aioredis

        socket_path = self.data_dir / "redis.sock"
        if not socket_path.exists():
            return
        client = aioredis.Redis(unix_socket_path=str(socket_path))
        try:
            await client.flushall()
        finally:
            await client.aclose()

    # --- phones -------------------------------------------------------------

    async def phone(self, exten: str, *, mode: str | None = None, ring: float | None = None,
                    talk: float | None = None, dtmf: str | None = None) -> None:  # fmt: skip
        for key, value in (("mode", mode), ("ring", ring), ("talk", talk), ("dtmf", dtmf)):
            if value is not None:
                await self.ami.db_put(f"testphone/{exten}", key, str(value))

    async def customer(self, number: str, *, mode: str) -> None:
        await self.ami.db_put(f"testcust/{number}", "mode", mode)

    async def dnd(self, exten: str, on: bool = True) -> None:
        """FreePBX's DND: AstDB DND/<ext> and the Custom:DND<ext> hint part."""
        if on:
            await self.ami.db_put("DND", exten, "YES")
        else:
            await self.ami.db_del("DND", exten)
        await self.ami.device_state(f"Custom:DND{exten}", "BUSY" if on else "NOT_INUSE")

    # --- calls --------------------------------------------------------------

    async def call_in(self, did: str, caller: str, *, name: str = "Customer", timeout: float = 10.0) -> Call:
        """A customer (``caller``) calls ``did`` through the trunk."""
        since = self.ami.mark()
        reply = await self.ami.action(
            "Originate", Channel=f"Local/{did}@from-pstn/n", Context="test-handset", Exten="s", Priority="1",
            CallerID=f'"{name}" <{caller}>', Async="true", Timeout="60000",
        )  # fmt: skip
        assert reply.get("Response") == "Success", reply
        created = await self.ami.wait_event(
            lambda e: e.name == "Newchannel" and e.get("Channel", "").startswith(f"Local/{did}@from-pstn-")
            and e["Channel"].endswith(";1"), timeout, since)  # fmt: skip
        handset = created["Channel"]
        return Call(caller, did, handset, handset[:-1] + "2")

    async def call_internal(self, exten_from: str, dialled: str, timeout: float = 10.0) -> str:
        """Extension ``exten_from`` dials ``dialled`` from its phone; returns
        the ``;2`` channel that runs from-internal."""
        since = self.ami.mark()
        reply = await self.ami.action(
            "Originate", Channel=f"Local/{dialled}@from-internal/n", Context="test-handset", Exten="s",
            Priority="1", CallerID=f'"Ext {exten_from}" <{exten_from}>', Async="true", Timeout="60000",
        )  # fmt: skip
        assert reply.get("Response") == "Success", reply
        created = await self.ami.wait_event(
            lambda e: e.name == "Newchannel" and e.get("Channel", "").startswith(f"Local/{dialled}@from-internal-")
            and e["Channel"].endswith(";2"), timeout, since)  # fmt: skip
        return created["Channel"]

    def press_when(self, call_channel: str, prompt: str, digits: str, *, once: bool = True) -> None:
        """When the AGI starts playing ``prompt`` (a regex on the AGI command)
        to ``call_channel`` (the ;2 half), press ``digits`` on its handset."""
        handset = call_channel[:-1] + "1"
        pattern = re.compile(prompt)

        async def press(_: Event) -> None:
            await asyncio.sleep(0.3)
            await self.ami.play_dtmf(handset, digits)

        self.ami.react(
            lambda e: e.name == "AGIExecStart" and e.get("Channel") == call_channel
            and bool(pattern.search(e.get("Command", ""))), press, once=once)  # fmt: skip

    async def wait_user_event(self, name: str, timeout: float = 15.0, since: int = 0, **fields: str) -> Event:
        return await self.ami.wait_event(match(Event="UserEvent", UserEvent=name, **fields), timeout, since)

    def user_events(self, name: str, since: int = 0, **fields: str) -> list[Event]:
        return self.ami.find(match(Event="UserEvent", UserEvent=name, **fields), since)

    async def wait_hangup(self, channel: str, timeout: float = 15.0, since: int = 0) -> Event:
        return await self.ami.wait_event(match(Event="Hangup", Channel=channel), timeout, since)

    # --- an agent on a queue call (test_pbx_help.py, test_pbx_supervisor.py) ----------

    async def queue_call_answered_by(self, agent: str, caller: str, did: str, *, others: tuple[str, ...] = (),
                                     timeout: float = 20.0) -> AgentCall:  # fmt: skip
        """A customer (``caller``) calls the queue on ``did``; the phones of
        ``others`` do not answer, so ``agent`` takes the call. Returns once
        the customer is bridged with the agent, with the agent's channels."""
        for other in others:
            await self.phone(other, mode="noanswer")
        since = self.ami.mark()
        customer = await self.call_in(did, caller)
        answered = await self.wait_user_event("TestPhone", timeout, since, Phone=agent, State="ANSWERED")
        deadline = time.monotonic() + 10
        while True:
            channels = {c["Channel"]: c for c in await self.ami.channels()}
            bridge = channels.get(customer.pbx_side, {}).get("BridgeId")
            members = [n for n, c in channels.items()
                       if bridge and c.get("BridgeId") == bridge and n != customer.pbx_side]  # fmt: skip
            if members and channel_extension(members[0]) == agent:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the customer {customer.pbx_side} is not bridged with {agent}: {list(channels)}")
            await asyncio.sleep(0.2)
        linkedid = channels[customer.pbx_side].get("Linkedid")
        call_channels = frozenset(
            n for n, c in channels.items()
            if c.get("BridgeId") and c.get("Linkedid") == linkedid and channel_extension(n) == agent
        )  # fmt: skip
        return AgentCall(agent, customer, answered["Channel"], members[0], call_channels)

    async def chanspy_of(self, spyer: str) -> tuple[str, str]:
        """What ``spyer`` runs now: (spied-on channel, ChanSpy options), from
        CoreShowChannels; AssertionError if it is not in ChanSpy."""
        for channel in await self.ami.channels():
            if channel["Channel"] == spyer:
                assert channel.get("Application") == "ChanSpy", channel
                target, _, options = channel.get("ApplicationData", "").partition(",")
                return target, options
        raise AssertionError(f"{spyer} is not up")


_LOCAL_HALF = re.compile(r"Local/(?P<exten>[0-9]+)@[^;]+-[0-9a-f]+;[12]")
_DEVICE = re.compile(r"(?!Local/)[A-Za-z0-9_]+/(?P<exten>[0-9]+)-[0-9a-f]+")


def channel_extension(name: str) -> str | None:
    """The extension a channel belongs to (``Local/5050@from-queue-0000001a;1``,
    ``PJSIP/5050-00000003`` -> 5050), the test's own reading; None otherwise."""
    match = _LOCAL_HALF.fullmatch(name) or _DEVICE.fullmatch(name)
    return match["exten"] if match else None


@dataclass
class AgentCall:
    """An agent talking to a customer through a queue."""

    agent: str
    customer: Call
    phone: str  # the agent's phone (Local/<agent>@test-phones-XXXX;2): keys pressed here reach the call
    member: str  # the agent's channel bridged with the customer (Local/<agent>@from-queue-XXXX;1)
    channels: frozenset[str]  # every bridged channel of the agent on this call (member, device leg, ...)
