"""The fake Asterisk must answer exactly like the recordings."""

from __future__ import annotations

import hashlib
import pathlib

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


def _manifest(transcripts) -> dict[str, str]:
    """``SHA256SUMS`` beside the recordings (``sha256sum`` format)."""
    entries = {}
    for line in (transcripts / "SHA256SUMS").read_text(encoding="ascii").splitlines():
        digest, name = line.split("  ", 1)
        entries[name] = digest
    return entries


def test_transcripts_match_their_checked_in_digests(transcripts):
    """The package's recordings are the recordings, unedited, in any clone:
    every file is listed in SHA256SUMS with the digest of its bytes."""
    manifest = _manifest(transcripts)
    on_disk = sorted(p.relative_to(transcripts).as_posix() for p in transcripts.rglob("*.txt"))
    assert on_disk == sorted(manifest), "SHA256SUMS and the recordings differ in names"
    for name, digest in manifest.items():
        assert hashlib.sha256((transcripts / name).read_bytes()).hexdigest() == digest, name


def test_transcript_copies_are_unchanged(transcripts):
    """The fixtures shipped in the package are the recordings, unedited
    (compared with the originals in ../shared when they are beside this
    checkout; the digests above hold everywhere else)."""
    shared = pathlib.Path(__file__).resolve().parents[2] / "shared" / "asterisk-transcripts"
    if not shared.is_dir():
        pytest.skip("shared/ recordings not beside this checkout (SHA256SUMS still checks the copies)")
    for path in shared.rglob("*.txt"):
        copy = transcripts / path.relative_to(shared)
        assert copy.read_bytes() == path.read_bytes(), path.name
    manifest = _manifest(transcripts)
    for path in shared.rglob("*.txt"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == manifest[path.relative_to(shared).as_posix()]
