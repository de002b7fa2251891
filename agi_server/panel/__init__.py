"""The operator and supervisor web panel, in Persian, served by ``serve``.

The panel is hand-written HTML, CSS and ES modules (``static/``, package
data: no build step, nothing downloaded) on top of the HTTP API and its
live event stream. :func:`router` is what the web app includes:

- ``pages``: ``GET /`` and ``GET /panel/<file>`` (the static files, with
  the security headers: CSP without inline scripts, ``X-Frame-Options``);
- ``fonts``: a Persian font found on the server's own system, streamed as
  a webfont (``GET /panel/fonts/<weight>``); never a file in the repository;
- ``api``: the little the panel needs that the rest of the API does not
  say: the PBX's time zone and name, the help prompts' wording, a number's
  reading by the number library, and the admin's config summary.

docs/panel.md describes the pages, the live updates and the i18n.
"""

from __future__ import annotations

from .router import router

__all__ = ["router"]
