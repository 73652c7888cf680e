# The few registry steps the Python signers need, over plain HTTP and anonymously (the tests'
# local registries), with urllib only: read a manifest, HEAD a blob, upload a blob in one piece
# (POST then PUT), write a manifest. Kept apart so each signer reads as what it signs.

import hashlib
import json
import urllib.error
import urllib.parse
import urllib.request

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        DOCKER_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    def __init__(self, host):
        self.base = f"http://{host}"

    def _request(self, method, path_or_url, body=None, headers=None):
        url = path_or_url if path_or_url.startswith("http") else self.base + path_or_url
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        return urllib.request.urlopen(req, timeout=30)

    def manifest(self, repo, reference):
        """(bytes, media type) of a manifest, or None when the registry has none there."""
        try:
            with self._request(
                "GET", f"/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT}
            ) as r:
                return r.read(), r.headers.get("Content-Type")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def blob(self, repo, digest):
        with self._request("GET", f"/v2/{repo}/blobs/{digest}") as r:
            return r.read()

    def has_blob(self, repo, digest):
        try:
            with self._request("HEAD", f"/v2/{repo}/blobs/{digest}"):
                return True
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return False
            raise

    def put_blob(self, repo, data):
        """Uploads `data` in one piece unless the registry has it; returns its digest."""
        digest = sha256(data)
        if self.has_blob(repo, digest):
            return digest
        with self._request("POST", f"/v2/{repo}/blobs/uploads/", body=b"") as r:
            location = urllib.parse.urljoin(self.base + "/", r.headers["Location"])
        sep = "&" if "?" in location else "?"
        url = f"{location}{sep}digest={urllib.parse.quote(digest)}"
        headers = {"Content-Type": "application/octet-stream"}
        with self._request("PUT", url, body=data, headers=headers):
            pass
        return digest

    def put_manifest(self, repo, reference, manifest_bytes, media_type):
        """Writes a manifest; returns its digest."""
        headers = {"Content-Type": media_type}
        path = f"/v2/{repo}/manifests/{reference}"
        with self._request("PUT", path, body=manifest_bytes, headers=headers):
            pass
        return sha256(manifest_bytes)


def compact(value):
    """JSON the way Go's encoding/json writes it: no spaces, keys as given."""
    return json.dumps(value, separators=(",", ":")).encode()
