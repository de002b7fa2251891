"""The fake Asterisk must answer exactly like the recordings."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from agi_server.testing.agi_client import CallScript, ChannelModel, header_lines, parse_transcript

RECORDED = {
    "basic-commands.txt": CallScript(
        script="record/basic?a=1&b=two", channel="Local/100@caller-phone-00000002;1",
        uniqueid="1795305128.4", callerid="unknown", threadid="139713052620480",
        sounds=set(),
    ),
    "caller-hangs-up.txt": CallScript(
        script="record/hangup?a=1&b=two", channel="Local/09351234567@caller-phone-00000005;1",
        uniqueid="1795305138.10", threadid="139713051596480", keys="!",
    ),
    "dtmf-menu-and-number.txt": CallScript(
        script="record/dtmf?a=1&b=two", channel="Local/09351234567@caller-phone-00000006;1",
        uniqueid="1795305151.12", threadid="139713053132480", keys="109121234567",
    ),
    "dtmf-single-digit.txt": CallScript(
        script="record/dtmf?a=1&b=two", channel="Local/09351234567@caller-phone-00000003;1",
        uniqueid="1795305131.6", threadid="139713052108480", keys="1", sounds=set(),
    ),
    "interrupt-getdata-saydigits-dial.txt": CallScript(
        script="record/interrupt?a=1&b=two", channel="Local/100@caller-presses-00000002;1",
        uniqueid="1795305892.4", threadid="140039014962880", keys="55555",
        dial={"Local/5050@agents": "ANSWER", "Local/999@nowhere": "CHANUNAVAIL"},
    ),
    "quoting-and-escaping.txt": CallScript(
        script="record/escaping?a=1&b=two", channel="Local/100@caller-phone-00000000;1",
        uniqueid="1795305858.0", threadid="140039010866880",
    ),
}  # fmt: skip


def _recorded_call(name: str) -> CallScript:
    call = RECORDED[name]
    call.language, call.channel_type = "en", "Local"
    call.context, call.priority = "record-agi", "3"
    call.extension = call.script.split("/", 1)[1].split("?", 1)[0]
    call.args = ("first arg", "second quoted")
    return call


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_model_replays_recording_byte_for_byte(name, transcripts):
    recorded = parse_transcript((transcripts / "agi" / name).read_text(encoding="utf-8"))
    call = _recorded_call(name)
    header = [line for d, line in recorded[: recorded.index(("<", "")) + 1]]
    assert header_lines(call, "127.0.0.1", 4573) == header

    model = ChannelModel(call)
    produced = []
    rest = recorded[len(header) :]
    for direction, line in rest:
        if direction == ">":
            produced.append((">", line))
            produced += [("<", r) for r in model.answer(line)]
    assert produced == rest


# The project's own recordings (scripts/record-transcripts): the header says
# who called; this is what each scenario set up around the call (the caller
# always answered before the AGI started). Each ends with the AGISTATUS
# Asterisk reported after the session.
OWN_RECORDINGS = {
    "stream-file-missing.txt": {"sounds": set()},
    "stream-file-present.txt": {"sounds": {"agi-test-silence"}},
    "say-digits-missing.txt": {"sounds": set()},
    "say-digits-present.txt": {"sounds": {"digits/1", "digits/2", "digits/3"}},
    "say-number-missing.txt": {"sounds": set()},
    "get-data-missing.txt": {"sounds": set()},
    "server-closes-at-once.txt": {},
    "exec-dial-answered.txt": {"dial": {"Local/5050@agents": "ANSWER"}},
    "agi-hangs-up.txt": {},
    "caller-hangs-up-then-close.txt": {"keys": "!"},
    "failure-then-caller-hangs-up.txt": {"sounds": set(), "keys": "!"},
    "basic-commands-no-sounds.txt": {"sounds": set()},
}
_AGISTATUS = re.compile(r"^# after the session: AGISTATUS=(\w+)$", re.MULTILINE)


def call_from_header(header: list[str], **scenario) -> tuple[CallScript, str, int]:
    """The CallScript whose header is ``header``, and where it connected."""
    env = dict(line.split(": ", 1) for line in header if line)
    request = urlsplit(env["agi_request"])
    call = CallScript(
        script=env["agi_network_script"], channel=env["agi_channel"], language=env["agi_language"],
        channel_type=env["agi_type"], uniqueid=env["agi_uniqueid"], version=env["agi_version"],
        callerid=env["agi_callerid"], calleridname=env["agi_calleridname"], dnid=env["agi_dnid"],
        context=env["agi_context"], extension=env["agi_extension"], priority=env["agi_priority"],
        accountcode=env["agi_accountcode"], threadid=env["agi_threadid"],
        args=tuple(v for k, v in env.items() if k.startswith("agi_arg_")), **scenario,
    )  # fmt: skip
    return call, request.hostname, request.port


@pytest.mark.parametrize("name", sorted(OWN_RECORDINGS))
def test_model_replays_own_recording_and_agistatus(name, transcripts):
    text = (transcripts / "agi" / name).read_text(encoding="utf-8")
    recorded = parse_transcript(text)
    end = recorded.index(("<", "")) + 1
    header = [line for _, line in recorded[:end]]
    call, host, port = call_from_header(header, answered=True, **OWN_RECORDINGS[name])
    assert header_lines(call, host, port) == header

    model = ChannelModel(call)
    produced = []
    for direction, line in recorded[end:]:
        if direction == ">":
            produced.append((">", line))
            produced += [("<", r) for r in model.answer(line)]
    assert produced == recorded[end:]
    statuses = _AGISTATUS.findall(text)
    assert len(statuses) == 1, "an own recording ends with the AGISTATUS Asterisk reported"
    assert model.agistatus == statuses[0]


def test_every_recording_is_held_to_the_model(transcripts):
    on_disk = {path.name for path in (transcripts / "agi").glob("*.txt")}
    assert on_disk == set(RECORDED) | set(OWN_RECORDINGS)


def test_transcript_copies_are_unchanged(transcripts):
    """The fixtures shipped in the package are the recordings, unedited."""
    import pathlib

    shared = pathlib.Path(__file__).resolve().parents[2] / "shared" / "asterisk-transcripts"
    if not shared.is_dir():
        pytest.skip("shared/ recordings not beside this checkout")
    for path in shared.rglob("*.txt"):
        copy = transcripts / path.relative_to(shared)
        assert copy.read_bytes() == path.read_bytes(), path.name
    # The package README is the shared one plus a section on the own recordings.
    assert (transcripts / "README.md").read_bytes().startswith((shared / "README.md").read_bytes())
