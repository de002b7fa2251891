"""One error hierarchy for the whole server.

Protocol errors say which side broke a protocol (``RemoteProtocolError``:
the peer; ``LocalProtocolError``: our own code misused an API); the rest say
which outside part failed, so a handler can route the call to its failure
destination with a reason in the log.
"""

from __future__ import annotations

from collections.abc import Iterable


class AgiServerError(Exception):
    """Base of every error this package raises on purpose."""


# --- configuration -------------------------------------------------------


class ConfigError(AgiServerError):
    """The config file is unusable; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[object]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --- protocol ------------------------------------------------------------
# As in h11: one base, and which side broke the protocol.


class ProtocolError(AgiServerError):
    """A protocol rule was broken (by which side: the two classes below)."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow; the connection
    is unusable and has to be closed."""


class LimitExceeded(RemoteProtocolError):
    """The peer sent more than a limit allows (header size, line length)."""


class LocalProtocolError(ProtocolError):
    """We tried to send something the protocol cannot carry (API misuse)."""


# --- AGI channel ---------------------------------------------------------


class AgiError(AgiServerError):
    """An AGI command did not do what was asked."""


class ChannelHungUp(AgiError):
    """The caller hung up (``HANGUP`` line or ``511`` reply)."""


class InvalidCommand(AgiError):
    """Asterisk answered ``510``: it does not know the command."""


class UsageError(AgiError):
    """Asterisk answered ``520``: the command's syntax was wrong."""

    def __init__(self, usage: str):
        self.usage = usage
        super().__init__(usage)


class AgiTimeout(AgiError):
    """Asterisk did not answer a command in time."""


class ConnectionClosed(AgiError):
    """The FastAGI socket closed before the session ended."""


# --- outside services ----------------------------------------------------


class StoreUnavailable(AgiServerError):
    """Redis did not answer (down, slow, or refused)."""


class AmiError(AgiServerError):
    """Base of AMI failures."""


class AmiUnavailable(AmiError):
    """No logged-in AMI connection right now."""


class AmiTimeout(AmiError):
    """An AMI action got no reply in time."""


class AmiActionFailed(AmiError):
    """Asterisk answered an action with ``Response: Error``."""

    def __init__(self, action: str, message: str):
        self.action = action
        self.message = message
        super().__init__(f"{action}: {message}")


class UnsafeValue(AgiServerError):
    """A value (extension, number, channel) failed the strict check that
    guards every AMI action and command line."""
