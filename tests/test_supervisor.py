"""Supervisor commands (spy / whisper / barge / call / status) through the CLI
against the fake AMI on a real socket, and their pure building blocks."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from agi_server.ami import CHANSPY_OPTIONS, SupervisorError, chanspy_data, ring_channel
from agi_server.cli import main
from agi_server.config import load_config
from agi_server.errors import UnsafeValue
from agi_server.numbers import NotDialable, NumberContext, dialable
from agi_server.testing.ami_server import FakeAmiServer
from helpers import example_text

SECRET = "s3cret"
AGENT_CHANNEL = "Local/5051@agents-0000000a;1"  # 5051's half in the bridge of the recorded queue call


def cli_runner() -> CliRunner:
    """stdout and stderr apart (click 8.1 needs mix_stderr=False; 8.2 dropped the option)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


class ThreadedFakeAmi:
    """FakeAmiServer on its own event loop in a thread, so that synchronous
    CLI invocations (which run asyncio.run themselves) can talk to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = self.call(self._start())

    async def _start(self) -> FakeAmiServer:
        server = FakeAmiServer(secret=SECRET)
        await server.start()
        return server

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def run(self, function, *args, **kwargs):
        async def wrapper():
            return function(*args, **kwargs)

        return self.call(wrapper())

    def close(self) -> None:
        self.call(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def fake():
    threaded = ThreadedFakeAmi()
    yield threaded
    threaded.close()


def write_config(tmp_path: Path, port: int, *, exit_code: str = "", secret: str = SECRET) -> Path:
    text = example_text(ami=True)
    text = text.replace("port: 5038", f"port: {port}").replace("${AMI_SECRET:-change-me}", secret)
    text = text.replace('exit_code: ""', f'exit_code: "{exit_code}"')
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(*args: str):
    return cli_runner().invoke(main, list(args))


def originates(fake: ThreadedFakeAmi):
    return fake.run(fake.server.actions_named, "Originate")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- spy / whisper / barge -----------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "options", "label"), [("spy", "qE", "Spy"), ("whisper", "qwE", "Whisper"), ("barge", "qBE", "Barge")]
)
def test_join_rings_the_supervisor_with_chanspy_on_the_agents_channel(fake, tmp_path, mode, options, label):
    config = write_config(tmp_path, fake.server.port)
    result = run_cli(mode, "5051", "--from", "300", "-c", str(config))
    assert result.exit_code == 0, result.stderr
    assert "300 answered" in result.stdout and "talking to 09351234567" in result.stdout
    (sent,) = originates(fake)
    # The shape of the recorded whisper Originate (queue-call-with-whisper.txt).
    assert sent["Channel"] == "Local/300@from-queue-exten-only/n"
    assert (sent["Application"], sent["Data"]) == ("ChanSpy", f"{AGENT_CHANNEL},{options}")
    assert sent["CallerID"] == f'"{label} 5051" <5051>'
    assert sent["Async"] == "true" and sent["Timeout"] == "30000"
    assert "Context" not in sent and "Exten" not in sent


def test_agent_not_on_a_call_is_a_clear_error_and_nothing_is_originated(fake, tmp_path):
    config = write_config(tmp_path, fake.server.port)
    result = run_cli("whisper", "5050", "--from", "300", "-c", str(config))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: extension 5050 is not on a call (no bridged channel of 5050 in CoreShowChannels)"
    )
    assert originates(fake) == []
    assert fake.run(fake.server.actions_named, "CoreShowChannels")  # it did look


def test_supervisor_not_answering_exits_1(fake, tmp_path):
    fake.server.originate_reason = 3
    config = write_config(tmp_path, fake.server.port)
    result = run_cli("spy", "5051", "--from", "300", "-c", str(config))
    assert result.exit_code == 1
    assert "300 did not answer (no answer)" in result.stderr
    assert len(originates(fake)) == 1


@pytest.mark.parametrize("bad", ["5050&PJSIP/evil", "12,3", "5050\r\nAction: Logoff", "5050\n", "300@other", "50 50"])
@pytest.mark.parametrize("where", ["agent", "supervisor"])
def test_bad_extensions_are_refused_before_anything_reaches_ami(fake, tmp_path, bad, where):
    config = write_config(tmp_path, fake.server.port)
    agent, supervisor = (bad, "300") if where == "agent" else ("5051", bad)
    result = run_cli("barge", agent, "--from", supervisor, "-c", str(config))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: not an extension")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert fake.server.actions == []  # not even a Login
    assert fake.server.login_times == []


# --- click-to-call ---------------------------------------------------------------------


def test_click_to_call_matches_the_recording(fake, tmp_path):
    config = write_config(tmp_path, fake.server.port)
    result = run_cli("call", "5051", "09121234567", "-c", str(config))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "5051 answered; dialling 09121234567 in from-internal"
    (sent,) = originates(fake)
    # originate-click-to-call.txt: ring the agent first, then the customer.
    assert sent["Channel"] == "Local/5051@from-queue-exten-only/n"
    assert (sent["Context"], sent["Exten"], sent["Priority"]) == ("from-internal", "09121234567", "1")
    assert sent["CallerID"] == '"Click to call" <5051>'
    assert sent["Async"] == "true"
    assert "Application" not in sent


@pytest.mark.parametrize(
    ("number", "exit_code", "dialled"),
    [
        ("09121234567", "9", "909121234567"),
        ("+989121234567", "", "09121234567"),
        ("+989121234567", "0", "009121234567"),
        ("+447911123456", "9", "900447911123456"),
        ("88776655", "", "02188776655"),  # a local number gets the PBX's area code
        ("989121234567", "", "09121234567"),
        ("9121234567", "9", "909121234567"),
        ("00989121234567", "9", "909121234567"),
        ("99121234567", "9", "909121234567"),  # the exit code typed too: still once
        ("۰۹۱۲-۱۲۳-۴۵۶۷", "9", "909121234567"),
        ("(0912) 123 4567", "", "09121234567"),
    ],
)
def test_click_to_call_prefixes_the_exit_code(fake, tmp_path, number, exit_code, dialled):
    config = write_config(tmp_path, fake.server.port, exit_code=exit_code)
    result = run_cli("call", "5051", number, "-c", str(config))
    assert result.exit_code == 0, result.stderr
    (sent,) = originates(fake)
    assert sent["Exten"] == dialled


def test_click_to_call_into_a_missing_extension_is_a_clear_error(fake, tmp_path):
    fake.run(fake.server.add_missing_extension, "09121234567", "from-internal")
    config = write_config(tmp_path, fake.server.port)
    result = run_cli("call", "5051", "09121234567", "-c", str(config))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: cannot dial 09121234567 in context from-internal: Asterisk says 'Extension does not exist.'"
    )


@pytest.mark.parametrize(
    ("from_ext", "number"),
    [
        ("5051", "12,3"),
        ("5051", "0912&PJSIP/x"),
        ("5051", "0912\r\nAction: Logoff"),
        ("5051", "0912 123"),  # spaces are fine, but seven digits are no phone number
        ("5051", "0912;Hangup"),
        ("5051", "5050"),  # an extension is not a customer's number
        ("5051", "1234567890" * 4),
        ("5051&PJSIP/evil", "0912"),
        ("50,51", "0912"),
        ("5051", ""),
    ],
)
def test_click_to_call_refuses_bad_input_before_connecting(fake, tmp_path, from_ext, number):
    config = write_config(tmp_path, fake.server.port)
    result = run_cli("call", from_ext, number, "-c", str(config))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: not a")
    assert fake.server.actions == []


# --- AMI trouble -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["whisper", "5051", "--from", "300"], ["call", "5051", "09121234567"], ["status"]]
)
def test_unreachable_ami_is_one_clear_line(tmp_path, command):
    config = write_config(tmp_path, free_port())
    result = run_cli(*command, "--timeout", "0.5", "-c", str(config))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot log in to AMI at 127.0.0.1:")
    assert "not available" in lines[0]


def test_wrong_secret_says_so(fake, tmp_path):
    config = write_config(tmp_path, fake.server.port, secret="wrong")
    result = run_cli("spy", "5051", "--from", "300", "--timeout", "0.5", "-c", str(config))
    assert result.exit_code == 1
    assert "refused (Authentication failed)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert originates(fake) == []


def test_status_shows_calls_and_department_roles(fake, tmp_path):
    config = write_config(tmp_path, fake.server.port)
    result = run_cli("status", "-c", str(config))
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[2:]}
    assert "09351234567" in rows["5051"] and AGENT_CHANNEL in rows["5051"]
    assert rows["5051"].rstrip().endswith("support operator")
    assert rows["300"].rstrip().endswith("support helper")


# --- building blocks -------------------------------------------------------------------


def test_chanspy_options_per_mode():
    assert CHANSPY_OPTIONS == {"spy": "qE", "whisper": "qwE", "barge": "qBE"}
    assert chanspy_data("PJSIP/5051-0000001a", "whisper") == "PJSIP/5051-0000001a,qwE"
    with pytest.raises(SupervisorError):
        chanspy_data("PJSIP/5051-0000001a", "listen")
    with pytest.raises(UnsafeValue):
        chanspy_data("PJSIP/5051-0000001a,B", "spy")


def test_ring_channel_is_the_one_agent_rule(tmp_path):
    """Supervisors, managers and agents are rung by pbx.dialplan.agent_channel."""
    config = load_config(write_config(tmp_path, 5038))
    assert ring_channel(config.names, "300") == "Local/300@from-queue-exten-only/n"
    for bad in ("300&PJSIP/x", "300/n", "", "٣٠٠"):
        with pytest.raises(UnsafeValue):
            ring_channel(config.names, bad)


def test_click_to_call_reads_numbers_with_the_one_normaliser():
    """Dashes, spaces and Persian or Arabic-Indic digits are how CRMs and
    people write numbers: accepted (they used to be refused); what is not a
    phone number still is, before anything reaches AMI."""
    ctx = NumberContext("98", "21", "9")
    assert dialable("+989121234567", ctx).dial == "909121234567"
    assert dialable("0912-123-4567", ctx).dial == "909121234567"
    assert dialable("٠٩١٢١٢٣٤٥٦٧", ctx).dial == "909121234567"
    for bad in ("0912-123", "0912#", "+", "٠٩١٢", "", "anonymous"):
        with pytest.raises(UnsafeValue):
            dialable(bad, ctx)
    with pytest.raises(NotDialable, match="not a phone number"):
        dialable("0912;Hangup", ctx)
