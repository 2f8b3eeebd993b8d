"""Optional access control for small deployments.

- ``DRIFTLINE_DASHBOARD_PASSWORD``: one shared password, asked once per browser session and
  compared in constant time (``hmac.compare_digest``). Changing it signs every session out.
- ``DRIFTLINE_DASHBOARD_AUTH=oidc``: Streamlit's own OpenID Connect login (``st.login``), with the
  provider configured in ``.streamlit/secrets.toml`` under ``[auth]`` (``redirect_uri``,
  ``cookie_secret``, ``client_id``, ``client_secret``, ``server_metadata_url``). Optionally
  ``DRIFTLINE_DASHBOARD_ALLOWED_EMAILS`` (comma-separated) restricts who may look.

Neither is a substitute for a reverse proxy with TLS on a public network.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time

import streamlit as st

PASSWORD_ENV = "DRIFTLINE_DASHBOARD_PASSWORD"
AUTH_ENV = "DRIFTLINE_DASHBOARD_AUTH"
ALLOWED_EMAILS_ENV = "DRIFTLINE_DASHBOARD_ALLOWED_EMAILS"
_K_AUTH = "_dl_authenticated"
FAILED_ATTEMPT_DELAY_S = 1.0  # slows down guessing from one session


def _tag(secret: str) -> str:
    # What the session remembers: not the password, and stale as soon as the password changes.
    return hashlib.sha256(b"driftline-dashboard:" + secret.encode()).hexdigest()


def check_password(entered: str, expected: str) -> bool:
    """Constant-time comparison of two passwords.

    >>> check_password("s3cret", "s3cret"), check_password("guess", "s3cret")
    (True, False)
    """
    return hmac.compare_digest(entered.encode(), expected.encode())


def gate() -> bool:
    """Whether this session may see the dashboard; draws the login form when it may not yet."""
    mode = os.environ.get(AUTH_ENV, "").strip().lower()
    if mode == "oidc":
        return _oidc()
    expected = os.environ.get(PASSWORD_ENV)
    if not expected:
        return True
    if hmac.compare_digest(st.session_state.get(_K_AUTH, ""), _tag(expected)):
        return True
    st.title("Driftline")
    with st.form("dl_login"):
        entered = st.text_input("Password", type="password", key="dl_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if check_password(entered or "", expected):
            st.session_state[_K_AUTH] = _tag(expected)
            st.rerun()
        time.sleep(FAILED_ATTEMPT_DELAY_S)
        st.error("Wrong password.")
    return False


def _oidc() -> bool:
    user = st.user
    if not user.is_logged_in:
        st.title("Driftline")
        st.button("Log in", on_click=st.login, type="primary")
        return False
    allowed = {e.strip().lower() for e in os.environ.get(ALLOWED_EMAILS_ENV, "").split(",") if e.strip()}
    email = str(user.get("email") or "").lower()
    if allowed and email not in allowed:
        st.error(f"{email or 'This account'} may not open this dashboard.")
        st.button("Log out", on_click=st.logout)
        return False
    st.sidebar.button("Log out", on_click=st.logout)
    return True
