"""Who is signed in to the console: an API key exchanged for a signed session cookie.

The key is checked once, at sign-in, and never stored: the cookie (Flask's signed session,
HttpOnly, SameSite=Strict, Secure behind https) holds the key's id, whether it is an admin
key, and a CSRF token that every form must send back. Each request checks that the key
has not been revoked since. Sign-out clears the cookie.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from flask import abort, request, session
from flask.sessions import SecureCookieSessionInterface

from integration.accounts.keys import is_live, lookup
from integration.api.context import resources

PREFIX = "/console"


@dataclass(frozen=True)
class Viewer:
    """The signed-in key."""

    key_id: str
    admin: bool
    csrf: str


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, for the console's paths only: an API request opens no
    session (no cookie read, no serializer built on the accept path)."""

    def open_session(self, app, request):
        if not request.path.startswith(PREFIX):
            return self.make_null_session(app)
        return super().open_session(app, request)


def configure(app) -> None:
    """The session cookie's settings (once per app)."""
    settings = resources_of(app).settings
    app.session_interface = ConsoleSessions()
    app.secret_key = settings.secret_key or "podrelay-development-console"
    app.config.update(
        SESSION_COOKIE_NAME="podrelay_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=(settings.public_base_url or "").startswith("https://"),
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )


def resources_of(app):
    from integration.resources import of

    return of(app)


def sign_in(key: str) -> bool:
    """Exchange an API key for a session; False when the key is not a live one."""
    res = resources()
    caller = lookup(res.redis, key.strip(), res.settings) if key.strip() else None
    if caller is None:
        return False
    session.clear()
    session.permanent = True
    session.update(key_id=caller.key_id, admin=caller.admin, csrf=secrets.token_urlsafe(24))
    return True


def sign_out() -> None:
    """Forget the session."""
    session.clear()


def viewer() -> Viewer | None:
    """The signed-in key, or None (never signed in, signed out, or the key was revoked)."""
    key_id = session.get("key_id")
    if not key_id:
        return None
    if not is_live(resources().redis, key_id):
        session.clear()
        return None
    return Viewer(key_id, bool(session.get("admin")), session.get("csrf", ""))


def check_csrf(found: Viewer | None) -> None:
    """A form's CSRF token must be the session's (403 otherwise)."""
    sent = request.form.get("csrf", "")
    expected = found.csrf if found else session.get("login_csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(403)


def login_csrf() -> str:
    """The token of the sign-in form (before there is a key)."""
    if "login_csrf" not in session:
        session["login_csrf"] = secrets.token_urlsafe(24)
    return session["login_csrf"]
