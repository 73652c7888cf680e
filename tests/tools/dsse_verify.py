#!/usr/bin/env python3
# Verifies DSSE envelopes of in-toto statements (the SLSA provenance nixpush writes) with
# securesystemslib, the TUF and in-toto projects' library, not nixpush's code.
#
#   dsse_verify.py ENVELOPE.json PUB.pem
#   dsse_verify.py --from-registry HOST REPO DIGEST PUB.pem
#
# The first checks one envelope file; the second every envelope layer
# (`application/vnd.dsse.envelope.v1+json`) of the cosign attestation tag `sha256-<hex>.att`
# of DIGEST in a plain-HTTP registry. The payload type must be `application/vnd.in-toto+json`
# and a signature must verify with the ECDSA P-256 key (scheme ecdsa-sha2-nistp256).
# Exit 0 printing the statement (a JSON list of them from the registry); exit 1 with one line.

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from securesystemslib.dsse import Envelope  # noqa: E402
from securesystemslib.signer import SSlibKey  # noqa: E402

from oci_registry import Registry  # noqa: E402

IN_TOTO = "application/vnd.in-toto+json"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"
SCHEME = "ecdsa-sha2-nistp256"


class Refused(Exception):
    """Why an envelope is not accepted, in one line."""


def verified_statement(envelope_bytes, public_pem):
    """The statement a valid envelope carries, parsed; Refused otherwise."""
    try:
        data = json.loads(envelope_bytes)
        # DSSE makes keyid optional; securesystemslib wants one: absent is empty.
        for signature in data.get("signatures", []):
            signature.setdefault("keyid", "")
        envelope = Envelope.from_dict(data)
    except (ValueError, KeyError, TypeError) as e:
        raise Refused(f"not a DSSE envelope: {e!r}") from e
    if envelope.payload_type != IN_TOTO:
        raise Refused(f"payload type {envelope.payload_type!r}, not {IN_TOTO!r}")
    if not envelope.signatures:
        raise Refused("the envelope has no signature")
    # securesystemslib matches a signature to a key by keyid (the keyid is only a hint in
    # DSSE): the one key is offered under each keyid the signatures carry.
    keys = [
        SSlibKey(keyid, "ecdsa", SCHEME, {"public": public_pem})
        for keyid in envelope.signatures
    ]
    try:
        envelope.verify(keys, 1)
    except Exception as e:  # securesystemslib's VerificationError, or a malformed key
        raise Refused(f"no signature verifies with the key: {e}") from e
    try:
        return json.loads(envelope.payload)
    except ValueError as e:
        raise Refused(f"the payload is not JSON: {e}") from e


def from_registry(host, repo, digest, public_pem):
    registry = Registry(host)
    tag = digest.replace(":", "-") + ".att"
    found = registry.manifest(repo, tag)
    if found is None:
        raise Refused(f"no attestation tag {repo}:{tag}")
    layers = [
        layer
        for layer in json.loads(found[0]).get("layers", [])
        if layer.get("mediaType") == DSSE_LAYER
    ]
    if not layers:
        raise Refused(f"{repo}:{tag} holds no DSSE envelope layer")
    statements = []
    for layer in layers:
        try:
            statements.append(
                verified_statement(registry.blob(repo, layer["digest"]), public_pem)
            )
        except Refused as e:
            raise Refused(f"layer {layer['digest']}: {e}") from e
    return statements


def main():
    parser = argparse.ArgumentParser(description="verify DSSE envelopes of in-toto statements")
    parser.add_argument("--from-registry", action="store_true")
    parser.add_argument("args", nargs="+", help="ENVELOPE PUB, or HOST REPO DIGEST PUB")
    args = parser.parse_args()
    expected = 4 if args.from_registry else 2
    if len(args.args) != expected:
        parser.error(f"expected {expected} arguments")
    try:
        with open(args.args[-1]) as f:
            public_pem = f.read()
        if args.from_registry:
            result = from_registry(*args.args[:3], public_pem)
        else:
            with open(args.args[0], "rb") as f:
                result = verified_statement(f.read(), public_pem)
    except (Refused, OSError) as e:
        print(f"refused: {e}")
        return 1
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
