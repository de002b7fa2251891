"""Live events, the call log and recordings: what happens on the PBX, for
the panels (Server-Sent Events), the CRMs (webhooks, ``agi_server.webhooks``)
and the call history.

The pieces, by what they are (docs/events.md is the reference):

- ``events``: the live event model: one envelope, a frozen payload per type;
- ``state``, ``tracker``, ``presence``: AMI events in, the live state (calls
  in progress, queues, extension and device states) and live events out;
- ``record``: a finished call as one record (numbers normalised);
- ``bus``: every live event passes here once; listeners and SSE readers;
- ``sse``: the panels' event streams (snapshot first, rights, resume);
- ``log``: the call log in Redis (one record per linkedid, indexes, queries);
- ``leader``, ``ingest``: one writer per PBX among N servers (lease, fence,
  replay after a leader change, reconcile after an AMI reconnect);
- ``modules``: the modules' publish API and the AGI side's decisions;
- ``relay``: the modules' events from any process to every server's bus;
- ``missed``: a missed call becomes a callback request;
- ``recordings``: a call's recording file, never outside its directory;
- ``api``, ``models``: the HTTP routers; ``config``: ``call_log:``,
  ``recordings:``; ``service``: all of it built from the config for ``serve``;
- ``loops``: background loops that stop when asked (also on Python 3.11).
"""
