"""Schemathesis hooks of benches/schemathesis/run.sh: the auth provider.

Hands Schemathesis an access token of the run's admin (whose details run.sh passes in the
environment). It is fetched again every 5 minutes (access tokens live 15) and whenever a
request is answered 401, because the run itself ends sessions: it calls logout, "log out
everywhere" and session revocation, and may change the admin's e-mail address or password
(PATCH /me, POST /users/{id}/password) with the token it was given.

So the provider first signs in as a browser would (POST /auth/login: a real session). When
that fails because the run has changed the credentials, it mints an external identity
provider's token instead (HS256 with CRM_EXTERNAL_JWT_SECRET, `sub` = the admin's id), which
run.sh configured the server to accept: such a token names the user, not a session, so no
logout or password change can take it away. JWTs are built here with the standard library
only.

The sign-in says it comes from another loopback address (X-Forwarded-For, believed because
run.sh trusts 127.0.0.1 as a proxy), so the failed logins Schemathesis sends from 127.0.0.1
never throttle it.
"""

import base64
import hashlib
import hmac
import json
import os
import time

import requests
import schemathesis

API = os.environ["CRM_ST_API"]
EMAIL = os.environ["CRM_ST_EMAIL"]
PASSWORD = os.environ["CRM_ST_PASSWORD"]
USER_ID = os.environ["CRM_ST_USER_ID"]
EXTERNAL_SECRET = os.environ["CRM_EXTERNAL_JWT_SECRET"].encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def external_token() -> str:
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"sub": USER_ID, "iat": now, "exp": now + 900}).encode())
    mac = hmac.new(EXTERNAL_SECRET, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(mac)}"


def session_token() -> str | None:
    r = requests.post(
        f"{API}/auth/login",
        json={"email": EMAIL, "password": PASSWORD},
        headers={"X-Forwarded-For": "127.0.0.2"},
        timeout=30,
    )
    return r.json().get("access_token") if r.status_code == 200 else None


@schemathesis.auth(refresh_interval=300, retry_on=[401])
class AdminSession:
    def get(self, case, context):
        return session_token() or external_token()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
