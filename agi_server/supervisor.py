"""Supervisor views over AMI: the live extension table for ``status``."""

from __future__ import annotations

from .app import make_ami_client
from .config import Config
from .errors import AgiServerError, AmiUnavailable


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


async def status_table(config: Config, timeout: float = 3.0) -> str:
    """Each extension's state and, when talking, the other party's number."""
    ami = make_ami_client(config)
    if ami is None:
        raise AgiServerError("AMI is not configured (ami.username is empty)")
    await ami.start()
    try:
        if not await ami.wait_connected(timeout):
            raise AmiUnavailable(
                f"cannot log in to AMI at {config.ami.host}:{config.ami.port} within {timeout:g}s "
                "(is Asterisk running, and are ami.username / ami.secret right?)"
            )
        rows = await ami.extension_status_table()
    finally:
        await ami.close()
    body = [
        [r.exten, r.context, r.status_text, r.talking_to or "", r.channel or ""]
        for r in sorted(rows, key=lambda r: (len(r.exten), r.exten))
    ]
    return format_table(["EXTEN", "CONTEXT", "STATE", "TALKING TO", "CHANNEL"], body)
