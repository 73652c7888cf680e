#!/usr/bin/env python3
"""A bearer-token front for a real registry, for testing the distribution token flow.

It plays the two parts a registry like ghcr.io or Docker Hub plays with token auth:
  * GET /token?service=...&scope=... is the token server: with the right Basic credentials it
    answers {"token": ..., "expires_in": ...}; with wrong ones, 401. POST /token is its OAuth2
    side: grant_type=refresh_token with PASSWORD as the refresh token (an identity token).
  * every /v2/ request without "Authorization: Bearer <token>" gets 401 and a
    WWW-Authenticate: Bearer realm=...,service=... challenge; with the token it is forwarded to the
    real registry behind it (Authorization removed), and the answer relayed back.
Each request is logged, one JSON object a line, to the log file: method, path, whether it carried
a bearer token, and for token requests the scope and whether the credentials were right.

Usage: token_proxy.py UPSTREAM_PORT USER PASSWORD LOG_FILE [--token T] [--expire-on METHOD:N]
  --token T             the first token issued is T (then T-2, T-3, ...); random by default
  --expire-on METHOD:N  the Nth request with METHOD that carries the current token is answered
                        401 with the challenge, as if the token had just expired: it is refused
                        from then on, and the token server issues the next one
Prints the port it listens on (127.0.0.1) on stdout, then serves until killed.
"""

import base64
import http.client
import json
import secrets
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM, USER, PASSWORD, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
OPTIONS = dict(zip(sys.argv[5::2], sys.argv[6::2]))
FIRST_TOKEN = OPTIONS.get("--token") or secrets.token_hex(16)
TOKEN = FIRST_TOKEN
GENERATION = 1
EXPIRE_ON = OPTIONS.get("--expire-on")
SEEN = {}
LOCK = threading.Lock()
STATE = threading.Lock()


def expires_now(method):
    """Whether this request (carrying the current token) is the one that finds it expired; if
    so, the token is replaced."""
    global TOKEN, GENERATION
    if not EXPIRE_ON:
        return False
    want, nth = EXPIRE_ON.split(":")
    with STATE:
        if method != want:
            return False
        SEEN[method] = SEEN.get(method, 0) + 1
        if SEEN[method] != int(nth):
            return False
        GENERATION += 1
        TOKEN = f"{FIRST_TOKEN}-{GENERATION}"
        return True


def log(entry):
    with LOCK, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", 0)))

    def reply(self, status, headers, body=b"", length=None):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        # A HEAD answer says the length of what a GET would send.
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        auth = self.headers.get("Authorization", "")
        if url.path == "/token" and self.command == "POST":
            # OAuth2 with a refresh token (an identity token): the password plays the token.
            form = urllib.parse.parse_qs(self.body().decode())
            ok = form.get("grant_type") == ["refresh_token"] and form.get("refresh_token") == [PASSWORD]
            log({"token": True, "grant_type": form.get("grant_type"), "scope": form.get("scope"),
                 "service": form.get("service"), "credentials_ok": ok, "authorization": bool(auth)})
            if not ok:
                return self.reply(401, [("Content-Type", "application/json")],
                                  b'{"errors":[{"code":"UNAUTHORIZED","message":"bad refresh token"}]}')
            return self.reply(200, [("Content-Type", "application/json")],
                              json.dumps({"access_token": TOKEN, "expires_in": 300}).encode())
        if url.path == "/token":
            query = urllib.parse.parse_qs(url.query)
            expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
            ok = auth == expected
            log({"token": True, "scope": query.get("scope"), "service": query.get("service"), "credentials_ok": ok,
                 "generation": GENERATION if ok else None})
            if not ok:
                return self.reply(401, [("Content-Type", "application/json")],
                                  b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
            return self.reply(200, [("Content-Type", "application/json")],
                              json.dumps({"token": TOKEN, "expires_in": 300}).encode())
        data = self.body()
        bearer = auth == f"Bearer {TOKEN}"
        expired = bearer and expires_now(self.command)
        log({"method": self.command, "path": url.path, "bearer": bearer, "authorization": bool(auth),
             "expired": expired})
        if not bearer or expired:
            host = self.headers.get("Host")
            challenge = f'Bearer realm="http://{host}/token",service="fake-registry"'
            return self.reply(401, [("WWW-Authenticate", challenge), ("Content-Type", "application/json")],
                              b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
        conn = http.client.HTTPConnection("127.0.0.1", UPSTREAM, timeout=60)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("authorization", "transfer-encoding", "content-length", "connection")}
        headers["Content-Length"] = str(len(data))
        conn.request(self.command, self.path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        relay = [(k, v) for k, v in resp.getheaders()
                 if k.lower() not in ("content-length", "transfer-encoding", "connection")]
        length = resp.getheader("Content-Length") if self.command == "HEAD" else None
        conn.close()
        self.reply(resp.status, relay, payload, length)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
