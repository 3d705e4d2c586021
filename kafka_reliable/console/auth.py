"""Who may change anything: the token, a session cookie, and a CSRF token per session.

Without a configured token the console is read-only: every mutating request is refused. With
one, ``POST /login`` with the token opens a session (a random id in an HttpOnly, SameSite=Strict
cookie); each mutating form carries ``csrf`` = HMAC(process secret, session id). The token itself
is never put in a page, a cookie or a log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict

from starlette.requests import Request

#: Name of the session cookie.
SESSION_COOKIE = "kr_console_session"
#: Sessions kept at most (the oldest is dropped first).
MAX_SESSIONS = 1000


class Refused(Exception):
    """A request refused for lack of rights; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class Auth:
    """Token check, sessions and CSRF tokens of one console process."""

    def __init__(self, token: str | None) -> None:
        self._token = token or None
        self._secret = secrets.token_bytes(32)
        self._sessions: OrderedDict[str, None] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def login(self, presented: str) -> str | None:
        """A new session id when ``presented`` is the token, else None."""
        if self._token is None or not hmac.compare_digest(presented.encode(), self._token.encode()):
            return None
        sid = secrets.token_urlsafe(32)
        self._sessions[sid] = None
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        return sid

    def logout(self, request: Request) -> None:
        self._sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)

    def session(self, request: Request) -> str | None:
        sid = request.cookies.get(SESSION_COOKIE)
        return sid if self.enabled and sid is not None and sid in self._sessions else None

    def csrf(self, request: Request) -> str:
        """The CSRF token of the request's session ("" without one)."""
        sid = self.session(request)
        return "" if sid is None else self._csrf_of(sid)

    def _csrf_of(self, sid: str) -> str:
        return hmac.new(self._secret, sid.encode(), hashlib.sha256).hexdigest()

    def require(self, request: Request, csrf: str | None) -> None:
        """Refused unless the console has a token, the request a session and the right CSRF."""
        if not self.enabled:
            raise Refused(
                "read-only console: start it with --token (or KAFKA_RELIABLE_CONSOLE_TOKEN) "
                "to allow changes",
                status=403,
            )
        sid = self.session(request)
        if sid is None:
            raise Refused("not logged in: log in with the console token first", status=401)
        if not csrf or not hmac.compare_digest(csrf, self._csrf_of(sid)):
            raise Refused("missing or wrong CSRF token: reload the page and try again", status=403)
