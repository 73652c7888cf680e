#!/usr/bin/env python3
# Signs an in-toto statement into a DSSE envelope with a cosign key, using securesystemslib
# (the library of the TUF and in-toto projects) rather than nixpush's code, so the DSSE verifier
# next to this one is itself tested against envelopes made independently of nixpush.
#
#   dsse_sign.py STATEMENT.json KEY.key [--keyid ID] [--by-hand] [--attach HOST REPO DIGEST]
#
# prints the envelope. The passphrase is $COSIGN_PASSWORD; the payload type
# `application/vnd.in-toto+json`; the signature ECDSA P-256 SHA-256 over DSSE's
# pre-authentication encoding (PAE); `keyid` is empty by default, as in cosign's envelopes.
# --by-hand computes the PAE and the envelope here from the DSSE spec (with `cryptography`
# only), so securesystemslib's verifier is checked against an envelope it did not make.
# --attach also writes it as cosign attests: a layer `application/vnd.dsse.envelope.v1+json`
# of an OCI manifest under the tag `sha256-<hex>.att` of DIGEST (merged with what is there).

import argparse
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from securesystemslib.dsse import Envelope  # noqa: E402
from securesystemslib.signer import CryptoSigner, SSlibKey  # noqa: E402

import cosign_key  # noqa: E402
from cosign_sign import CONFIG_TYPE, config  # noqa: E402
from oci_registry import OCI_MANIFEST, Registry, compact  # noqa: E402

IN_TOTO = "application/vnd.in-toto+json"
SCHEME = "ecdsa-sha2-nistp256"
DSSE_LAYER = "application/vnd.dsse.envelope.v1+json"


def public_key(private, keyid):
    """The SSlibKey of `private`'s public half, under `keyid`."""
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return SSlibKey(keyid, "ecdsa", SCHEME, {"public": pem.decode()})


def with_securesystemslib(payload, private, keyid):
    signer = CryptoSigner(private, public_key(private, keyid))
    envelope = Envelope(payload, IN_TOTO, {})
    signature = envelope.sign(signer)
    envelope.signatures[signature.keyid] = signature
    return envelope.to_dict()


def by_hand(payload, private, keyid):
    """The envelope as the DSSE spec defines it: PAE = "DSSEv1" SP LEN(type) SP type SP
    LEN(body) SP body, lengths in ASCII decimal."""
    kind = IN_TOTO.encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
    signature = private.sign(pae, ec.ECDSA(hashes.SHA256()))
    b64 = base64.standard_b64encode
    return {
        "payloadType": IN_TOTO,
        "payload": b64(payload).decode(),
        "signatures": [{"keyid": keyid, "sig": b64(signature).decode()}],
    }


def attach(envelope_bytes, host, repo, digest):
    """Writes the envelope as a layer of the attestation tag `sha256-<hex>.att` of `digest`."""
    registry = Registry(host)
    tag = digest.replace(":", "-") + ".att"
    found = registry.manifest(repo, tag)
    layers = json.loads(found[0]).get("layers", []) if found else []
    layers.append(
        {
            "mediaType": DSSE_LAYER,
            "size": len(envelope_bytes),
            "digest": registry.put_blob(repo, envelope_bytes),
            "annotations": {"dev.cosignproject.cosign/signature": ""},
        }
    )
    config_bytes = config([layer["digest"] for layer in layers])
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": CONFIG_TYPE,
            "size": len(config_bytes),
            "digest": registry.put_blob(repo, config_bytes),
        },
        "layers": layers,
    }
    registry.put_manifest(repo, tag, compact(manifest), OCI_MANIFEST)


def main():
    parser = argparse.ArgumentParser(description="sign a statement into a DSSE envelope")
    parser.add_argument("statement", help="the in-toto statement (its bytes are the payload)")
    parser.add_argument("key", help="a cosign private key file")
    parser.add_argument("--keyid", default="")
    parser.add_argument("--by-hand", action="store_true", help="without securesystemslib")
    parser.add_argument("--attach", nargs=3, metavar=("HOST", "REPO", "DIGEST"))
    args = parser.parse_args()
    with open(args.statement, "rb") as f:
        payload = f.read()
    private = cosign_key.load_private_key(args.key)
    make = by_hand if args.by_hand else with_securesystemslib
    envelope = compact(make(payload, private, args.keyid))
    if args.attach:
        attach(envelope, *args.attach)
    sys.stdout.write(envelope.decode() + "\n")


if __name__ == "__main__":
    main()
