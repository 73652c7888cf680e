#!/usr/bin/env python3
# Signs an image already in a registry exactly as `cosign sign --key` does, without nixpush's
# code (nor cosign's), so the tests have signatures nixpush did not make: a reference for what
# nixpush's own signatures must look like, and signatures the verifiers must accept or refuse.
#
#   cosign_sign.py HOST REPO DIGEST --key PREFIX.key [--identity REPO_REF]
#                  [--digest-in-payload OTHER]
#
# The passphrase is $COSIGN_PASSWORD. The signed payload is cosign's simple-signing JSON naming
# HOST/REPO (or --identity) and DIGEST (or OTHER: a forged signature for negative tests); the
# signature ECDSA P-256 SHA-256, DER, base64, in the layer's `dev.cosignproject.cosign/signature`
# annotation; the manifest an OCI image manifest under the tag `sha256-<hex>.sig`, merged with
# the one already there (its signatures kept). Prints the signature manifest's digest.

import argparse
import base64
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

import cosign_key  # noqa: E402
from oci_registry import OCI_MANIFEST, Registry, compact  # noqa: E402

PAYLOAD_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
# go-containerregistry's zero time, which cosign's signature images carry.
ZERO_TIME = "0001-01-01T00:00:00Z"


def payload(identity, digest):
    """cosign's simple-signing payload, byte for byte as cosign's Go code marshals it."""
    return compact(
        {
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


def config(layer_digests):
    """The config of a signature image: go-containerregistry's empty image plus the layers."""
    return compact(
        {
            "architecture": "",
            "created": ZERO_TIME,
            "history": [{"created": ZERO_TIME} for _ in layer_digests],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": layer_digests},
            "config": {},
        }
    )


def existing_layers(registry, repo, tag):
    found = registry.manifest(repo, tag)
    if found is None:
        return []
    return json.loads(found[0]).get("layers", [])


def sign(args):
    key = cosign_key.load_private_key(args.key)
    identity = args.identity or f"{args.host}/{args.repo}"
    body = payload(identity, args.digest_in_payload or args.digest)
    signature = key.sign(body, ec.ECDSA(hashes.SHA256()))
    registry = Registry(args.host)
    layer = {
        "mediaType": PAYLOAD_TYPE,
        "size": len(body),
        "digest": registry.put_blob(args.repo, body),
        "annotations": {SIGNATURE_ANNOTATION: base64.standard_b64encode(signature).decode()},
    }
    tag = args.digest.replace(":", "-") + ".sig"
    layers = [
        kept
        for kept in existing_layers(registry, args.repo, tag)
        if kept != layer  # the same signature twice is one (ECDSA is randomised: rare)
    ] + [layer]
    config_bytes = config([entry["digest"] for entry in layers])
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": CONFIG_TYPE,
            "size": len(config_bytes),
            "digest": registry.put_blob(args.repo, config_bytes),
        },
        "layers": layers,
    }
    return registry.put_manifest(args.repo, tag, compact(manifest), OCI_MANIFEST)


def main():
    parser = argparse.ArgumentParser(description="sign an image as cosign does, with a key")
    parser.add_argument("host", help="HOST:PORT of a plain-HTTP registry")
    parser.add_argument("repo")
    parser.add_argument("digest", help="the image's manifest digest, sha256:...")
    parser.add_argument("--key", required=True, help="a cosign private key file")
    parser.add_argument("--identity", help="docker-reference to sign (default HOST/REPO)")
    parser.add_argument("--digest-in-payload", help="name this digest in the payload instead")
    print(sign(parser.parse_args()))


if __name__ == "__main__":
    main()
