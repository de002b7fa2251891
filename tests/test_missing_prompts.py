"""A missing prompt does not undo a decision the server completed.

A real Asterisk 22 answers ``STREAM FILE`` of a missing sound with
``result=-1`` and, although the session goes on, reports
``AGISTATUS=FAILURE`` when the server closes
(``transcripts/agi/stream-file-missing.txt``; the fake Asterisk does the
same). The generated dialplan must follow the done-marker, not AGISTATUS.
"""

from __future__ import annotations

import pytest

from agi_server import chanvars
from agi_server.dialplan import render_dialplan
from agi_server.testing.agi_client import CallScript
from agi_server.testing.controller import config_for_test, running_server
from agi_server.testing.dialplan_runner import run_context

CONFIG = """
pbx: {country_code: "98", area_code: "21"}
agi: {url: "agi://127.0.0.1:4573"}
redis: {url: "REDIS"}
data_dir: ./var
departments:
  support: {extensions: ["5050", "5051"]}
callback_requests:
  - code: "800"
    name: Callback to 5050
    target: "extension:5050"
    next: hangup
    failure: "queue:support"
    input_timeout: 1s
"""


@pytest.fixture
async def app(tmp_path, redis_server, requests):
    config = config_for_test(CONFIG.replace("REDIS", redis_server.url), tmp_path)
    async with running_server(config) as application:
        yield application


@pytest.mark.parametrize("sounds", [None, set()], ids=["prompts-present", "prompts-missing"])
async def test_a_registered_callback_goes_on_to_next_even_without_prompts(app, sounds):
    host, port = app.server.address
    snippet = render_dialplan(app.config).replace("agi://127.0.0.1:4573", f"agi://{host}:{port}")
    call = CallScript(script="callback/800", callerid="09121234567", keys="11", sounds=sounds)
    run = await run_context(snippet, "agi-callback-800", call=call)
    assert run.variables["AGISTATUS"] == ("SUCCESS" if sounds is None else "FAILURE")
    assert run.variables[chanvars.CALLBACK_NUMBER] == "09121234567"
    assert run.ended == "hangup", run.apps()  # next: hangup, not the failure destination


async def test_after_a_hang_up_nothing_but_h_runs(app):
    """AGISTATUS=HANGUP: Asterisk ends the extension after AGI() (the runner too),
    so a caller who hung up is never sent on to a destination."""
    host, port = app.server.address
    snippet = render_dialplan(app.config).replace("agi://127.0.0.1:4573", f"agi://{host}:{port}")
    call = CallScript(script="callback/800", callerid="09121234567", keys="!")
    run = await run_context(snippet, "agi-callback-800", call=call)
    assert run.variables["AGISTATUS"] == "HANGUP"
    assert run.ended == "hangup"
    assert run.apps()[-1] == "AGI", run.apps()
