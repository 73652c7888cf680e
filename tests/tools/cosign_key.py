#!/usr/bin/env python3
# cosign's key pair format, written and read independently of nixpush (and of cosign), so the
# tests can make keys that nixpush must accept and sign with keys nixpush made.
#
#   cosign_key.py generate PREFIX [--label SIGSTORE|COSIGN]
#
# writes PREFIX.key and PREFIX.pub; the passphrase is $COSIGN_PASSWORD (may be empty).
# PREFIX.key is a PEM block "ENCRYPTED SIGSTORE PRIVATE KEY" (cosign 2; "ENCRYPTED COSIGN
# PRIVATE KEY" for cosign 1) whose body is go-securesystemslib's `encrypted` JSON:
#   {"kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": B64},
#    "cipher": {"name": "nacl/secretbox", "nonce": B64}, "ciphertext": B64}
# B64 being standard base64 with padding (Go's encoding of []byte in JSON), the key scrypt's
# 32 bytes, the ciphertext NaCl's secretbox (tag then data) of the private key's PKCS#8 DER
# (ECDSA P-256). PREFIX.pub is the PKIX "PUBLIC KEY" PEM.
# `load_private_key` reads such a file back (both labels), for the signers next to this one.

import argparse
import base64
import hashlib
import json
import os
import sys

import nacl.secret
import nacl.utils
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

LABELS = {
    "SIGSTORE": "ENCRYPTED SIGSTORE PRIVATE KEY",
    "COSIGN": "ENCRYPTED COSIGN PRIVATE KEY",
}
# go-securesystemslib's defaults, the only parameters cosign accepts besides N = 65536.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 32768, 8, 1
ACCEPTED_N = (32768, 65536)
SALT_BYTES = 32
KEY_BYTES = nacl.secret.SecretBox.KEY_SIZE  # 32
NONCE_BYTES = nacl.secret.SecretBox.NONCE_SIZE  # 24


def b64(data):
    return base64.standard_b64encode(data).decode("ascii")


def scrypt_key(password, salt, n, r, p):
    # scrypt needs 128 * r * N bytes (32 MiB here); hashlib's default cap is just that.
    return hashlib.scrypt(
        password, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=KEY_BYTES
    )


def encrypt(plaintext, password):
    """go-securesystemslib's `encrypted` JSON document of `plaintext` under `password`."""
    salt = nacl.utils.random(SALT_BYTES)
    nonce = nacl.utils.random(NONCE_BYTES)
    key = scrypt_key(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    sealed = nacl.secret.SecretBox(key).encrypt(plaintext, nonce).ciphertext
    return json.dumps(
        {
            "kdf": {
                "name": "scrypt",
                "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
                "salt": b64(salt),
            },
            "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
            "ciphertext": b64(sealed),
        }
    ).encode()


def decrypt(document, password):
    data = json.loads(document)
    kdf, cipher = data["kdf"], data["cipher"]
    params = kdf["params"]
    if kdf["name"] != "scrypt" or cipher["name"] != "nacl/secretbox":
        raise ValueError(f"unknown kdf or cipher: {kdf['name']}, {cipher['name']}")
    if params["N"] not in ACCEPTED_N or (params["r"], params["p"]) != (SCRYPT_R, SCRYPT_P):
        raise ValueError(f"unexpected scrypt parameters: {params}")
    salt = base64.standard_b64decode(kdf["salt"])
    key = scrypt_key(password, salt, params["N"], params["r"], params["p"])
    box = nacl.secret.SecretBox(key)
    return box.decrypt(
        base64.standard_b64decode(data["ciphertext"]),
        base64.standard_b64decode(cipher["nonce"]),
    )


def pem_block(label, body):
    lines = [b64(body)[i : i + 64] for i in range(0, len(b64(body)), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def pem_body(text):
    """The label and bytes of the one PEM block in `text`."""
    lines = [line.strip() for line in text.strip().splitlines()]
    if not (lines[0].startswith("-----BEGIN ") and lines[-1].startswith("-----END ")):
        raise ValueError("not a PEM block")
    label = lines[0][len("-----BEGIN ") : -len("-----")]
    return label, base64.standard_b64decode("".join(lines[1:-1]))


def password():
    return os.environ.get("COSIGN_PASSWORD", "").encode()


def load_private_key(path):
    """The ECDSA private key of a cosign key file, decrypted with $COSIGN_PASSWORD."""
    with open(path) as f:
        label, body = pem_body(f.read())
    if label not in LABELS.values():
        raise ValueError(f"{path}: not a cosign private key ({label})")
    der = decrypt(body, password())
    return serialization.load_der_private_key(der, password=None)


def generate(prefix, label):
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with open(prefix + ".key", "w") as f:
        f.write(pem_block(LABELS[label], encrypt(der, password())))
    os.chmod(prefix + ".key", 0o600)
    with open(prefix + ".pub", "wb") as f:
        f.write(public)


def main():
    parser = argparse.ArgumentParser(description="cosign key pairs, made independently")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write PREFIX.key and PREFIX.pub")
    gen.add_argument("prefix")
    gen.add_argument("--label", choices=sorted(LABELS), default="SIGSTORE")
    args = parser.parse_args()
    generate(args.prefix, args.label)
    print(f"{args.prefix}.key {args.prefix}.pub")


if __name__ == "__main__":
    sys.exit(main())
