"""Every channel-variable name shared by the server and the dialplan.

Handlers set these; the generated dialplan reads them. Templates receive
:data:`ALL` as ``var`` (``${ {{- var.DEST -}} }``), and a test fails when a
template names a variable that is not defined here.
"""

# Set last by every handler: "1/<kind>/<value>/<context>/<exten>/<priority>/<reason>"
# (agi_server/decision.py). Asterisk reports AGISTATUS=SUCCESS even when the
# server just closed the socket, so the dialplan trusts this marker, not
# AGISTATUS; the marker also carries the decision, in one round trip.
DONE = "AGISRV_DONE"
# Unpacked from DONE by the generated dialplan (the server does not set them):
# where the dialplan goes next, "context,exten,priority" for Goto();
DEST = "AGISRV_DEST"
# the destination's type (extension, queue, hangup, ...) for the branches
# that act differently per type (e.g. ring with a timeout);
DEST_KIND = "AGISRV_DEST_KIND"
# the destination's value: an extension number or a queue name;
DEST_VALUE = "AGISRV_DEST_VALUE"
# a short reason for the decision, for the admin reading the CDR / logs
# (the server sets it alone, for an unknown route).
REASON = "AGISRV_REASON"
# Caller number in E.164 as the server understood it.
CALLER_E164 = "AGISRV_CALLER_E164"
# Reconnect: the remembered operator's extension, and ring timeout seconds.
OPERATOR = "AGISRV_OPERATOR"
RING_TIMEOUT = "AGISRV_RING_TIMEOUT"
# Call distribution: the winning item's queue_then_next in whole seconds (set
# only for such items): the module rings the queue itself with Queue() for
# that long, then the call goes on at the module's next destination.
QUEUE_THEN_NEXT = "AGISRV_QUEUE_THEN_NEXT"
# Set on an answered call by the answer hook: which module recorded it.
ANSWERED_BY = "AGISRV_ANSWERED_BY"
# Health route result.
HEALTH = "AGISRV_HEALTH"
# Callback caller flow: the registered request's id and the number stored.
CALLBACK_ID = "AGISRV_CALLBACK_ID"
CALLBACK_NUMBER = "AGISRV_CALLBACK_NUMBER"
# Callback auto-dial leg (set by the Originate): the attempt token reported
# back in the AgiServerCallback UserEvent, the agent ringing, and the prompt
# played to the agent before the customer is dialled.
CALLBACK_ATTEMPT = "AGISRV_CALLBACK_ATTEMPT"
CALLBACK_AGENT = "AGISRV_CALLBACK_AGENT"
CALLBACK_ANNOUNCE = "AGISRV_CALLBACK_ANNOUNCE"
# Help request, the manager's leg (set by the Originate): the operator who
# asks, their extension as digit prompts joined by "&" (one Playback), and
# the operator's channel and the ChanSpy options of the request's mode, as
# two variables (an Originate splits its variables at commas).
HELP_OPERATOR = "AGISRV_HELP_OPERATOR"
HELP_DIGITS = "AGISRV_HELP_DIGITS"
HELP_SPY = "AGISRV_HELP_SPY"
HELP_SPY_OPTIONS = "AGISRV_HELP_SPY_OPTIONS"

ALL = {
    name: value
    for name, value in dict(globals()).items()
    if name.isupper() and isinstance(value, str)
}
