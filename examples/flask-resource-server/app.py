"""The Flask tutorial's API without its own login: it trusts Tessera.

Tessera now holds the users and their passwords and signs the access
tokens; this app only checks them, with the public keys Tessera publishes
(its JWKS), through PyJWT's PyJWKClient. It holds no secret, no password.

    TESSERA_URL=http://127.0.0.1:8000 \\
        python3 examples/flask-resource-server/app.py

Settings, from the environment:
    TESSERA_URL        Tessera's public URL (http://127.0.0.1:8000)
    TESSERA_ISSUER     the tokens' `iss` (TESSERA_URL: Tessera's PUBLIC_URL,
                       or its JWT_ISSUER when set)
    TESSERA_JWKS_URL   the public keys (TESSERA_URL/.well-known/jwks.json)
    TESSERA_AUDIENCE   the tokens' `aud` (tessera: Tessera's JWT_AUDIENCE)
    TESSERA_ALGORITHM  Tessera's JWT_ALGORITHM: EdDSA (default), ES256 or
                       RS256; never an HS algorithm
    HOST, PORT         where this app listens (127.0.0.1, 5000)
"""

import json
import logging
import os
import time
import urllib.request
from functools import wraps

import jwt
from flask import Flask, g, jsonify, request
from jwt import api_jwt
from werkzeug.exceptions import HTTPException

TESSERA_URL = os.environ.get("TESSERA_URL", "http://127.0.0.1:8000")
TESSERA_URL = TESSERA_URL.rstrip("/")
ISSUER = os.environ.get("TESSERA_ISSUER", TESSERA_URL)
JWKS_URL = os.environ.get(
    "TESSERA_JWKS_URL", TESSERA_URL + "/.well-known/jwks.json")
AUDIENCE = os.environ.get("TESSERA_AUDIENCE", "tessera")
ALGORITHM = os.environ.get("TESSERA_ALGORITHM", "EdDSA")
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "5000"))

# Only the asymmetric algorithms: an HS key is a shared secret that
# Tessera never publishes, and accepting HS256 here would let anyone
# "sign" a token with the public key as the secret.
if ALGORITHM not in ("EdDSA", "ES256", "RS256"):
    raise SystemExit(
        f"TESSERA_ALGORITHM must be EdDSA, ES256 or RS256, not {ALGORITHM!r}")

# Clock skew tolerated on `exp` and `iat`: Tessera's own default
# (JWT_CLOCK_LEEWAY_SECONDS).
LEEWAY_SECONDS = 30
# A token whose kid is not in the cached JWKS makes the client fetch the
# JWKS again (Tessera rotated its key), but at most this often: forged
# tokens with made-up kids must not make every request one to Tessera.
REFETCH_INTERVAL_SECONDS = 5
FETCH_TIMEOUT_SECONDS = 5


class KeysUnavailable(Exception):
    """The JWKS could not be fetched: the token may be fine (503, not 401)."""


class TesseraKeys(jwt.PyJWKClient):
    """PyJWKClient with a timeout on the fetch, and a bound on how often an
    unknown kid fetches the JWKS again."""

    def __init__(self, uri):
        # The JWKS is kept for 5 minutes; a rotation is seen sooner, by the
        # new kid in a token.
        super().__init__(uri, cache_jwk_set=True, lifespan=300)
        self.last_refetch = float("-inf")

    def fetch_data(self):
        try:
            with urllib.request.urlopen(
                    self.uri, timeout=FETCH_TIMEOUT_SECONDS) as response:
                jwk_set = json.load(response)
        except (OSError, ValueError) as error:
            raise KeysUnavailable(
                f"cannot fetch {self.uri}: {error}") from error
        if self.jwk_set_cache is not None:
            self.jwk_set_cache.put(jwk_set)
        return jwk_set

    def get_signing_key(self, kid):
        key = self.match_kid(self.get_signing_keys(), kid)
        since = time.monotonic() - self.last_refetch
        if key is None and since >= REFETCH_INTERVAL_SECONDS:
            self.last_refetch = time.monotonic()
            key = self.match_kid(self.get_signing_keys(refresh=True), kid)
        if key is None:
            raise jwt.PyJWKClientError(f"no key in the JWKS has kid {kid!r}")
        return key


keys = TesseraKeys(JWKS_URL)
app = Flask(__name__)
logging.basicConfig(level=logging.INFO)


def problem(status, title, www_authenticate=None):
    """A JSON error (RFC 9457, as Tessera's), with the Bearer challenge of
    RFC 6750 on a 401."""
    response = jsonify(title=title, status=status)
    response.status_code = status
    response.content_type = "application/problem+json"
    if www_authenticate:
        response.headers["WWW-Authenticate"] = www_authenticate
    return response


def verify(token):
    """The token's claims, when Tessera signed it for this audience and it
    is in date; raises a jwt.PyJWTError (or KeysUnavailable) otherwise."""
    signing_key = keys.get_signing_key_from_jwt(token)
    # The header and claims decode_complete returns are those the signature
    # covers.
    decoded = api_jwt.decode_complete(
        token,
        signing_key.key,
        # Pinned: never the token's own choice, never "none" or HS256.
        algorithms=[ALGORITHM],
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway=LEEWAY_SECONDS,
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    # RFC 9068: an access token says so in its header, so that another JWT
    # signed with the same key cannot pass for one. "typ" is
    # case-insensitive, and may carry the "application/" prefix.
    typ = str(decoded["header"].get("typ", "")).lower()
    if typ not in ("at+jwt", "application/at+jwt"):
        raise jwt.InvalidTokenError(f"typ is {typ!r}, not at+jwt")
    return decoded["payload"]


def token_required(view):
    """The tutorial's decorator, now checking Tessera's access token: the
    view finds the token's claims in g.claims."""

    @wraps(view)
    def decorated(*args, **kwargs):
        authorization = request.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            # RFC 6750, section 3.1: no error code when there is no token.
            return problem(401, "An access token is required", "Bearer")
        try:
            g.claims = verify(token)
        except KeysUnavailable as error:
            app.logger.error("%s", error)
            return problem(503, "The signing keys cannot be fetched")
        except jwt.ExpiredSignatureError:
            return problem(401, "The access token has expired",
                           'Bearer error="invalid_token"')
        except jwt.PyJWTError as error:
            # Any other failure: the signature, a claim, typ, an unknown
            # kid, a kid naming a key of another algorithm. Logged here,
            # never told to the caller.
            app.logger.info("refused a token: %s", error)
            return problem(401, "The access token is not valid",
                           'Bearer error="invalid_token"')
        return view(*args, **kwargs)

    return decorated


def admin_required(view):
    """A valid access token whose `roles` claim holds "admin"; 403 for any
    other valid token."""

    @wraps(view)
    def decorated(*args, **kwargs):
        roles = g.claims.get("roles")
        if not isinstance(roles, list) or "admin" not in roles:
            return problem(403, "This needs the admin role")
        return view(*args, **kwargs)

    return token_required(decorated)


@app.get("/me")
@token_required
def me():
    # `sub` is the user's id at Tessera, which never changes; `username`
    # is for display.
    claims = g.claims
    return jsonify(sub=claims["sub"], username=claims.get("username"),
                   roles=claims.get("roles", []))


@app.get("/admin")
@admin_required
def admin():
    return jsonify(admin=g.claims.get("username"), sub=g.claims["sub"])


@app.errorhandler(HTTPException)
def http_error(error):
    # Flask's own errors (404, 405, 500) as JSON too.
    return problem(error.code, error.name)


if __name__ == "__main__":
    print(f"Trusting {ISSUER} ({ALGORITHM}, audience {AUDIENCE}), "
          f"keys from {JWKS_URL}", flush=True)
    app.run(host=HOST, port=PORT)
