#!/usr/bin/env python3
"""A token server for a real docker-registry configured with `auth: token` (distribution 2.8).

GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...] with the right Basic credentials
answers {"token": JWT, "access_token": JWT, "expires_in": 300, "issued_at": ...}; the JWT grants
exactly the actions asked for each scope. Wrong or missing credentials: 401.

The JWT is what distribution's token access controller checks: a header with `alg` RS256 and an
`x5c` chain holding the signing certificate (base64 DER; the registry's rootcertbundle must hold
that certificate), claims iss, sub, aud (= the service), exp, nbf, iat, jti and `access`. It is
signed with the openssl CLI (RSASSA-PKCS1-v1_5 with SHA-256), so no Python crypto library is
needed.

Each token request is logged, one JSON object a line, to LOG_FILE: scope, service, whether the
credentials were right (ok), the number of the token issued (1, 2, ...), its real lifetime in
seconds and when it was issued (Unix time).

Usage: token_server.py KEY_PEM CERT_PEM USER PASSWORD LOG_FILE [--issuer I] [--service S]
                       [--first-lifetime SECONDS]
  --issuer I                the `iss` claim (nixpush-test-issuer by default)
  --service S               the `aud` claim (nixpush-test by default)
  --first-lifetime SECONDS  the first token issued stops working after SECONDS: its `exp` is set
                            so that it is past distribution's 60 s of clock leeway by then, while
                            `expires_in` still says 300 (a token revoked early, or a token server
                            whose clock is behind the registry's)
Prints the port it listens on (127.0.0.1) on stdout, then serves until killed.
"""

import base64
import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY, CERT, USER, PASSWORD, LOG = sys.argv[1:6]
OPTIONS = dict(zip(sys.argv[6::2], sys.argv[7::2]))
ISSUER = OPTIONS.get("--issuer", "nixpush-test-issuer")
SERVICE = OPTIONS.get("--service", "nixpush-test")
FIRST_LIFETIME = OPTIONS.get("--first-lifetime")
# distribution accepts a token until exp + 60 s.
LEEWAY = 60
LIFETIME = 300
LOCK = threading.Lock()
ISSUED = 0


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def certificate_der_b64():
    """The certificate of CERT as x5c wants it: standard base64 of the DER, which is what a PEM
    body is."""
    lines = open(CERT).read().strip().splitlines()
    start = lines.index("-----BEGIN CERTIFICATE-----")
    end = lines.index("-----END CERTIFICATE-----")
    return "".join(lines[start + 1:end])


X5C = certificate_der_b64()


def parse_scopes(values):
    """`repository:NAME:ACTIONS` scopes (several params, or several in one separated by spaces)
    as distribution's `access` claim."""
    access = []
    for value in values:
        for scope in value.split():
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]})
    return access


def sign(data):
    out = subprocess.run(["openssl", "dgst", "-sha256", "-sign", KEY], input=data,
                         capture_output=True, check=True)
    return out.stdout


def make_token(subject, access, lifetime):
    now = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [X5C]}
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": SERVICE,
        # Past exp + LEEWAY, distribution refuses the token.
        "exp": now + lifetime - LEEWAY if lifetime < LIFETIME else now + lifetime,
        "nbf": now,
        "iat": now,
        "jti": secrets.token_hex(16),
        "access": access,
    }
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
    return signing_input + "." + b64url(sign(signing_input.encode()))


def log(entry):
    with LOCK, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        global ISSUED
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]})
        query = urllib.parse.parse_qs(url.query)
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        ok = self.headers.get("Authorization", "") == expected
        entry = {"scope": query.get("scope"), "service": query.get("service"), "ok": ok}
        if not ok:
            log(entry)
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]})
        with LOCK:
            ISSUED += 1
            number = ISSUED
        lifetime = int(FIRST_LIFETIME) if FIRST_LIFETIME and number == 1 else LIFETIME
        token = make_token(USER, parse_scopes(query.get("scope", [])), lifetime)
        log({**entry, "number": number, "lifetime": lifetime, "issued": time.time()})
        self.reply(200, {"token": token, "access_token": token, "expires_in": LIFETIME,
                         "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
