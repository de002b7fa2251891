"""The fake Asterisk (``agi_server.testing.agi_client``) and a real Asterisk 22
agree: each scenario is recorded live with ``record_transcripts`` and
compared, line for line and with the final AGISTATUS, with what the fake's
``ChannelModel`` answers to the same commands. Only the values that change
from run to run differ: ``agi_uniqueid``, ``agi_threadid`` and the Local
channel's number. And the project's own recordings still hold on this
Asterisk (then also modulo its version and the recorder's port).

This suite's own Asterisk (the recording dialplan), not the session's PBX.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import pytest_asyncio
from record_transcripts import AGI_PORT, AGI_SCENARIOS, STATUS_LINE, AgiScenario, Recorder, transcript_text

from agi_server.testing.agi_client import CallScript, ChannelModel, header_lines
from sandbox import find_asterisk

pytestmark = pytest.mark.asyncio(loop_scope="session")

OWN_RECORDINGS = Path(__file__).resolve().parents[2] / "agi_server" / "testing" / "transcripts" / "agi"

# What each scenario sets up around the call, in the fake's terms.
MODEL = {
    "stream-file-missing": {"sounds": set()},
    "stream-file-present": {"sounds": {"agi-test-silence"}},
    "get-data-missing": {"sounds": set()},
    "say-digits-missing": {"sounds": set()},
    "say-number-missing": {"sounds": set()},
    "server-closes-at-once": {},
    "agi-hangs-up": {},
    "failure-then-caller-hangs-up": {"sounds": set(), "keys": "!"},
}
_PER_RUN = [
    (re.compile(r"^< agi_uniqueid: .*$", re.M), "< agi_uniqueid: <per run>"),
    (re.compile(r"^< agi_threadid: .*$", re.M), "< agi_threadid: <per run>"),
    (re.compile(r"^(< agi_channel: .*)-[0-9a-f]{8}(;[12])$", re.M), r"\1-<n>\2"),
]


def per_run_values_masked(text: str) -> str:
    for pattern, replacement in _PER_RUN:
        text = pattern.sub(replacement, text)
    return text


def model_transcript(scenario: AgiScenario, version: str, port: int) -> str:
    """The fake's conversation for ``scenario``, as the recorder writes it."""
    call = CallScript(
        script=f"record/{scenario.name}?a=1&b=two", channel=f"Local/100@{scenario.caller}-00000000;1",
        language="en", channel_type="Local", context="record-agi", extension=scenario.name, priority="3",
        callerid=scenario.callerid or "unknown", calleridname='Ali "Test" Rezaei', version=version,
        args=("first arg", "second quoted"), answered=True, **MODEL[scenario.name],
    )  # fmt: skip
    lines = [("<", line) for line in header_lines(call, "127.0.0.1", port)]
    model = ChannelModel(call)
    for command in scenario.commands:
        lines.append((">", command))
        lines += [("<", reply) for reply in model.answer(command)]
    return transcript_text(lines, model.agistatus)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def recorder(tmp_path_factory):
    binary = find_asterisk()
    assert binary is not None  # without one, conftest skips every test here
    rec = Recorder(tmp_path_factory.mktemp("recorder"), binary, agi_port=0)
    try:
        await rec.start()
        yield rec
    finally:
        await rec.stop()


async def test_missing_prompt_fails_the_agi_in_both(recorder):
    """STREAM FILE of a missing prompt: result=-1, the session goes on, and
    AGISTATUS=FAILURE after the server closes - live and in the fake."""
    scenario = AGI_SCENARIOS["stream-file-missing"]
    live = await recorder.record_agi(scenario)
    assert '< 200 result=-1 endpos=0\n> SET VARIABLE AGI_TEST_DONE "1"\n< 200 result=1\n' in live
    assert live.endswith(f"{STATUS_LINE}FAILURE\n")
    assert per_run_values_masked(live) == per_run_values_masked(
        model_transcript(scenario, recorder.version, recorder.agi.port)
    )


@pytest.mark.parametrize("name", sorted(set(MODEL) - {"stream-file-missing"}))
async def test_fake_answers_like_the_real_asterisk(recorder, name):
    scenario = AGI_SCENARIOS[name]
    live = await recorder.record_agi(scenario)
    assert per_run_values_masked(live) == per_run_values_masked(
        model_transcript(scenario, recorder.version, recorder.agi.port)
    )



@pytest.mark.parametrize("name", sorted(AGI_SCENARIOS))
async def test_own_recording_still_holds(recorder, name):
    """The committed recording (scripts/record-transcripts) and today's."""
    committed = (OWN_RECORDINGS / f"{name}.txt").read_text(encoding="utf-8")
    live = await recorder.record_agi(AGI_SCENARIOS[name])
    live = live.replace(f"127.0.0.1:{recorder.agi.port}/", f"127.0.0.1:{AGI_PORT}/")
    assert _build_masked(per_run_values_masked(live)) == _build_masked(per_run_values_masked(committed))


def _build_masked(text: str) -> str:
    return re.sub(r"^< agi_version: .*$", "< agi_version: <build>", text, flags=re.M)
