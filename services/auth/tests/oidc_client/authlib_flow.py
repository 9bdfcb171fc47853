#!/usr/bin/env python3
"""Drives the AurumAI auth service with a standard OIDC client library (authlib + joserfc).

Discovery, authorization code flow with PKCE (S256) and a scripted login form, token exchange,
ID token verification against the published JWKS (signature, iss, aud, exp, nonce), access token
verification (signature, typ at+jwt, iss, aud), refresh, and client_credentials. Exits non-zero
on any failure. The redirect URI needs no listener: the Location header is captured.

    authlib_flow.py --issuer URL --client-id ID --client-secret S --redirect-uri URI \
        --username U --password P [--service-client-id ID --service-client-secret S --audience A]
"""

import argparse
import html.parser
import sys
import time
import urllib.parse
import warnings

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

warnings.filterwarnings("ignore", category=DeprecationWarning)


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class FormParser(html.parser.HTMLParser):
    """Collects the login form's action and its input fields."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.action = a.get("action")
        elif tag == "input" and a.get("name"):
            self.fields[a["name"]] = a.get("value") or ""


def verify_jwt(token, keys, issuer, audience, typ=None):
    """Signature against the JWKS (kid), then iss, aud, exp/nbf; returns the claims."""
    decoded = jwt.decode(token, keys, algorithms=["RS256"])
    header = decoded.header
    check("kid" in header, f"no kid in header {header}")
    if typ is not None:
        check(header.get("typ") == typ, f"typ is {header.get('typ')}, expected {typ}")
    registry = jwt.JWTClaimsRegistry(
        leeway=30,
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        sub={"essential": True},
    )
    registry.validate(decoded.claims)
    return decoded.claims


def scripted_login(http, authorize_url, username, password, redirect_uri):
    """GET the authorize URL, fill the form, POST it; return the redirect's Location."""
    r = http.get(authorize_url, allow_redirects=False, timeout=10)
    check(r.status_code == 200, f"authorize page: HTTP {r.status_code}: {r.text[:300]}")
    check(r.headers.get("X-Frame-Options") == "DENY", "login page lacks X-Frame-Options DENY")
    form = FormParser()
    form.feed(r.text)
    check(form.action is not None, "no form on the login page")
    fields = dict(form.fields)
    fields["username"] = username
    fields["password"] = password
    target = urllib.parse.urljoin(r.url, form.action)
    r = http.post(target, data=fields, allow_redirects=False, timeout=10)
    check(r.status_code in (302, 303), f"login: HTTP {r.status_code}: {r.text[:300]}")
    location = r.headers["Location"]
    check(location.startswith(redirect_uri), f"redirected to {location}")
    return location


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--issuer", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--client-secret", required=True)
    p.add_argument("--redirect-uri", required=True)
    p.add_argument("--username", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--service-client-id")
    p.add_argument("--service-client-secret")
    p.add_argument("--audience", default="aurumai-api")
    args = p.parse_args()
    issuer = args.issuer.rstrip("/")

    # Discovery
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=10).json()
    check(meta["issuer"] == issuer, f"issuer mismatch: {meta['issuer']}")
    check("S256" in meta["code_challenge_methods_supported"], "S256 not advertised")
    jwks = requests.get(meta["jwks_uri"], timeout=10).json()
    keys = KeySet.import_key_set(jwks)
    print(f"discovery ok: {len(jwks['keys'])} key(s)")

    # Authorization code flow with PKCE
    client = OAuth2Session(
        args.client_id,
        args.client_secret,
        scope="openid profile email offline_access",
        redirect_uri=args.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    code_verifier = generate_token(64)
    nonce = generate_token(20)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], nonce=nonce, code_verifier=code_verifier
    )
    check("code_challenge=" in url, "authlib did not add a PKCE challenge")
    browser = requests.Session()
    location = scripted_login(browser, url, args.username, args.password, args.redirect_uri)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlparse(location).query))
    check(query.get("state") == state, "state not echoed")
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=location, code_verifier=code_verifier
    )
    for field in ("access_token", "id_token", "refresh_token", "expires_in"):
        check(field in token, f"token response lacks {field}")
    check(token["token_type"].lower() == "bearer", f"token_type {token['token_type']}")

    id_claims = verify_jwt(token["id_token"], keys, issuer, args.client_id)
    check(id_claims.get("nonce") == nonce, "nonce not carried into the ID token")
    check("auth_time" in id_claims and "iat" in id_claims, "ID token lacks auth_time/iat")
    check(id_claims["exp"] > time.time(), "ID token already expired")
    access = verify_jwt(token["access_token"], keys, issuer, "aurumai-api", typ="at+jwt")
    check(access["sub"] == id_claims["sub"], "access and ID token subjects differ")
    check(access.get("client_id") == args.client_id, "access token client_id")
    check(isinstance(access.get("roles"), list), "access token roles")
    check("jti" in access and "nbf" in access, "access token lacks jti/nbf")
    print(f"code flow ok: sub={access['sub']} tenant={access.get('tenant')}")

    # authlib's own OIDC ID token validation (CodeIDToken rules)
    from authlib.jose import JsonWebKey
    from authlib.jose import jwt as authlib_jwt
    from authlib.oidc.core import CodeIDToken

    claims = authlib_jwt.decode(
        token["id_token"],
        JsonWebKey.import_key_set(jwks),
        claims_cls=CodeIDToken,
        claims_options={"iss": {"values": [issuer]}},
        claims_params={"nonce": nonce, "client_id": args.client_id},
    )
    claims.validate(leeway=30)

    # userinfo with the access token
    info = client.get(meta["userinfo_endpoint"], timeout=10)
    check(info.status_code == 200, f"userinfo: HTTP {info.status_code}")
    check(info.json()["sub"] == id_claims["sub"], "userinfo sub")

    # Refresh (rotation)
    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    check(refreshed["refresh_token"] != token["refresh_token"], "refresh token not rotated")
    verify_jwt(refreshed["access_token"], keys, issuer, "aurumai-api", typ="at+jwt")
    print("refresh ok")

    # client_credentials
    if args.service_client_id:
        svc = OAuth2Session(
            args.service_client_id,
            args.service_client_secret,
            token_endpoint_auth_method="client_secret_basic",
        )
        st = svc.fetch_token(
            meta["token_endpoint"], grant_type="client_credentials", audience=args.audience
        )
        svc_claims = verify_jwt(st["access_token"], keys, issuer, args.audience, typ="at+jwt")
        check(svc_claims["sub"] == args.service_client_id, "service token subject")
        check("refresh_token" not in st, "client_credentials must not return a refresh token")
        print(f"client_credentials ok: aud={svc_claims['aud']}")

    print("authlib flow OK")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # any failure, including authlib's own errors
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
