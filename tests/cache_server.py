#!/usr/bin/env python3
"""A static file server for a Nix binary cache directory, for the tests and the benchmark:
Python's http.server, as `python3 -m http.server` runs it, but speaking HTTP/1.1 (connections
kept alive, as nginx or S3 keep them) and with a listen backlog of 128 rather than 5, so a
client fetching many narinfos at once is not held back by dropped connection attempts. Every
request is logged on stderr ("GET /path HTTP/1.1" status -), the access log the tests read.

Usage: python3 tests/cache_server.py PORT DIRECTORY
"""

import functools
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    handler = functools.partial(Handler, directory=directory)
    Server(("127.0.0.1", port), handler).serve_forever()


if __name__ == "__main__":
    main()
