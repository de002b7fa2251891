"""The HTTP API: users, sessions and tokens, the operators' and
supervisors' actions, status, health and metrics (``docs/api.md``).

- ``auth``: :class:`~agi_server.web.auth.Principal`, scopes, roles and the
  ``require(scope)`` dependency every router uses;
"""
