#!/usr/bin/env python3
"""A static file server for a Nix binary cache directory, for the tests and the benchmark:
Python's http.server, as `python3 -m http.server` runs it, but speaking HTTP/1.1 (connections
kept alive, as nginx or S3 keep them) and with a listen backlog of 128 rather than 5, so a
client fetching many narinfos at once is not held back by dropped connection attempts. Every
request is logged on stderr ("GET /path HTTP/1.1" status -), the access log the tests read.

Like nginx, it answers `Range: bytes=N-` with 206 and the rest of the file (--no-ranges: with
the whole file, as some servers do).

With --fault, the first download of each NAR breaks after --after bytes, the way networks
break: `cut` closes the connection (the body is shorter than its Content-Length), `stall` stops
sending and holds the connection open. Later downloads of the same NAR are whole.

With --tls CERT KEY it speaks HTTPS only, with that certificate (a cache behind a private CA).

Usage: python3 tests/cache_server.py [--fault cut|stall --after BYTES] [--no-ranges]
                                     [--tls CERT KEY] PORT DIRECTORY
       (PORT 0: a free one, printed on stdout)
"""

import argparse
import functools
import http.server
import os
import shutil
import ssl
import threading
import time


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        server = self.server
        if server.fault and self.path.startswith("/nar/"):
            with server.lock:
                first = self.path not in server.broken
                server.broken.add(self.path)
            if first:
                return self.break_download()
        start = self.range_start()
        if start is None:
            return super().do_GET()
        path = self.translate_path(self.path)
        try:
            f = open(path, "rb")
        except OSError:
            return self.send_error(404)
        with f:
            size = os.fstat(f.fileno()).st_size
            if start >= size:
                return self.send_error(416)
            f.seek(start)
            self.send_response(206)
            self.send_header("Content-Type", self.guess_type(path))
            self.send_header("Content-Length", str(size - start))
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            self.end_headers()
            shutil.copyfileobj(f, self.wfile)

    def range_start(self):
        """N of a `Range: bytes=N-` header, when ranges are served."""
        value = self.headers.get("Range", "")
        if self.server.no_ranges or not (value.startswith("bytes=") and value.endswith("-")):
            return None
        try:
            return int(value[len("bytes="):-1])
        except ValueError:
            return None

    def break_download(self):
        f = self.send_head()
        if f is None:
            return
        with f:
            self.wfile.write(f.read(self.server.after))
            self.wfile.flush()
        if self.server.fault == "stall":
            # Longer than any stall timeout a test sets; the client gives up first.
            time.sleep(60)
        self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fault", choices=["cut", "stall"])
    ap.add_argument("--after", type=int, default=0)
    ap.add_argument("--no-ranges", action="store_true")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("port", type=int)
    ap.add_argument("directory")
    args = ap.parse_args()
    handler = functools.partial(Handler, directory=args.directory)
    server = Server(("127.0.0.1", args.port), handler)
    server.fault, server.after, server.no_ranges = args.fault, args.after, args.no_ranges
    server.broken, server.lock = set(), threading.Lock()
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*args.tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    if args.port == 0:
        print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
