"""Click-to-call, spy / whisper / barge with the audit log, and the help
button, against the fake AMI server; hostile input never reaches AMI."""

from __future__ import annotations

import asyncio

import pytest
from conftest import client_for


async def test_click_to_call_rings_the_operators_own_phone_then_dials_with_the_exit_code(as_user, fake_ami):
    ali = await as_user("ali")
    reply = await ali.post("/api/click-to-call", json={"number": "+989121234567"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "answered" and reply.json()["dialled"] == "909121234567"
    (action,) = fake_ami.actions_named("Originate")
    assert action["Channel"] == "Local/5050@from-internal/n" and action["Exten"] == "909121234567"


async def test_click_to_call_from_another_operators_phone_is_refused(as_user, fake_ami):
    ali = await as_user("ali")
    reply = await ali.post("/api/click-to-call", json={"number": "09121234567", "extension": "5051"})
    assert reply.status_code == 403
    reply = await ali.post("/api/click-to-call", json={"number": "09121234567", "user": "sara"})
    assert reply.status_code == 403
    assert fake_ami.actions_named("Originate") == []


async def test_a_crm_token_calls_on_behalf_of_a_user(asgi, token, fake_ami):
    secret = await token("calls:write")
    async with client_for(asgi, headers={"Authorization": f"Bearer {secret}"}) as crm:
        reply = await crm.post("/api/click-to-call", json={"number": "02188776655", "user": "sara"})
        assert reply.status_code == 200 and reply.json()["extension"] == "5051"
        assert (await crm.post("/api/click-to-call", json={"number": "0211"})).status_code == 422


@pytest.mark.parametrize("body", [
    {"number": "0912&PJSIP/evil"},
    {"number": "0912\r\nAction: Originate"},
    {"number": "۰۹۱۲۱۲۳۴۵۶۷"},
    {"number": "09121234567", "extension": "5050&PJSIP/x"},
    {"number": "09121234567", "extension": "*5003"},
    {"number": "09121234567", "colour": "red"},
    {"number": ["09121234567"]},
])  # fmt: skip
async def test_hostile_click_to_call_input_is_422_and_nothing_reaches_ami(as_user, fake_ami, body):
    ali = await as_user("ali")
    reply = await ali.post("/api/click-to-call", json=body)
    assert reply.status_code == 422, reply.text
    if "colour" in body:
        assert reply.json()["detail"][0]["loc"][-1] == "colour"
    assert fake_ami.actions_named("Originate") == []


async def test_whisper_rings_the_supervisors_phone_and_is_audited_with_its_duration(as_user, fake_ami, server):
    boss = await as_user("boss")
    reply = await boss.post("/api/supervise", json={"mode": "whisper", "agent": "5051"})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "answered" and body["supervisor_extension"] == "300"
    (action,) = fake_ami.actions_named("Originate")
    assert action["Channel"] == "Local/300@from-internal/n"
    assert action["Application"] == "ChanSpy" and action["Data"] == "Local/5051@agents-0000000a;1,qwE"
    # Asterisk reports the spying on the channel the Originate answered on.
    spyer = "Local/300@from-internal-00000001;1"
    for event in ("ChanSpyStart", "ChanSpyStop"):
        fake_ami.send_event([("Event", event), ("SpyerChannel", spyer), ("SpyerUniqueid", "1795305185.1"),
                             ("SpyeeChannel", "Local/5051@agents-0000000a;1")])  # fmt: skip
        await asyncio.sleep(0.15)
    (entry,) = (await boss.get("/api/audit")).json()
    assert entry["who"] == "boss" and entry["mode"] == "whisper" and entry["agent"] == "5051"
    assert entry["supervisor_phone"] == "300" and entry["result"] == "answered"
    assert entry["started"] and entry["ended"] and entry["duration"] >= 0.1
    # Supervisors see their own entries; the admin sees everyone's.
    other = await as_user("salesboss")
    assert (await other.get("/api/audit")).json() == []
    admin = await as_user("admin")
    assert len((await admin.get("/api/audit")).json()) == 1


async def test_supervise_outside_own_departments_or_from_anothers_phone_is_403(as_user, fake_ami):
    salesboss = await as_user("salesboss")
    assert (await salesboss.post("/api/supervise", json={"mode": "spy", "agent": "5051"})).status_code == 403
    boss = await as_user("boss")
    reply = await boss.post("/api/supervise", json={"mode": "spy", "agent": "5051", "supervisor_extension": "301"})
    assert reply.status_code == 403
    assert (await boss.post("/api/supervise", json={"mode": "listen", "agent": "5051"})).status_code == 422
    assert fake_ami.actions_named("Originate") == []


async def test_supervise_an_agent_not_on_a_call_is_409(as_user, fake_ami):
    boss = await as_user("boss")
    reply = await boss.post("/api/supervise", json={"mode": "barge", "agent": "5050"})
    assert reply.status_code == 409 and "not on a call" in reply.json()["detail"]


async def test_help_button_rings_the_department_manager(as_user, fake_ami):
    sara = await as_user("sara")
    reply = await sara.post("/api/help", json={})
    assert reply.status_code == 200
    assert reply.json() == {"status": "sent", "reason": "ringing 300", "helpers": ["300"]}
    (action,) = await fake_ami.wait_for_action("Originate")
    assert action["Channel"] == "Local/300@from-queue-exten-only/n"  # pbx.dialplan.agent_channel
    # into the manager context: the announcement, then ChanSpy with the request's options
    assert action["Context"].endswith("-manager") and "AGISRV_HELP_SPY_OPTIONS=qwE" in action.get_all("Variable")


async def test_help_button_when_the_operator_is_not_on_a_call_says_unavailable(as_user, fake_ami):
    ali = await as_user("ali")
    reply = await ali.post("/api/help", json={})
    assert reply.json() == {"status": "unavailable", "reason": "5050 is not on a call", "helpers": []}
    assert (await ali.post("/api/help", json={"extension": "5051"})).status_code == 403


async def test_actions_while_ami_is_down_are_503(as_user, fake_ami, server):
    ali = await as_user("ali")
    await fake_ami.close()
    for _ in range(50):
        if not server.ami.connected:
            break
        await asyncio.sleep(0.02)
    assert (await ali.post("/api/click-to-call", json={"number": "09121234567"})).status_code == 503
    assert (await ali.get("/api/extensions")).status_code == 503
