//! SPDX 2.3 JSON, as the SPDX project's own validator reads it: ids from `[A-Za-z0-9.-]`,
//! checksums in lowercase hex, a deterministic `documentNamespace`, no relationship of a package
//! to itself. Each package says what its checksum is of (its `comment`) and where it lives
//! (`sourceInfo`: the store path).

use serde_json::{json, Value};

use super::{BillOfMaterials, ChecksumOf, Package};

pub fn document(bom: &BillOfMaterials) -> Value {
    let mut relationships: Vec<Value> = bom
        .tops
        .iter()
        .map(|top| relationship("SPDXRef-DOCUMENT", "DESCRIBES", top))
        .collect();
    for p in &bom.packages {
        for dep in &p.depends_on {
            relationships.push(relationship(&p.id, "DEPENDS_ON", dep));
        }
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} container image", bom.name),
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/nixpush-{}-{}",
            bom.name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "-"),
            bom.fingerprint().hex()
        ),
        "creationInfo": {
            "created": bom.created,
            "creators": [format!("Tool: nixpush-{}", env!("CARGO_PKG_VERSION"))],
            "comment": "The closure of a Nix-built container image: one package per store path, its checksum the SHA-256 of the path's NAR serialisation (Nix's narHash); layers taken whole from an image archive are one package each, their checksum the SHA-256 of the layer's tar (its diff_id).",
        },
        "packages": bom.packages.iter().map(package).collect::<Vec<_>>(),
        "relationships": relationships,
    })
}

fn package(p: &Package) -> Value {
    let mut v = json!({
        "SPDXID": p.id,
        "name": p.name,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": p.license.as_deref().unwrap_or("NOASSERTION"),
        "copyrightText": "NOASSERTION",
        "comment": match p.checksum_of {
            ChecksumOf::Nar => "checksum: SHA-256 of the store path's NAR serialisation (Nix's narHash)",
            ChecksumOf::LayerTar => "checksum: SHA-256 of the layer's uncompressed tar (its diff_id)",
        },
    });
    if !p.sha256.is_empty() {
        v["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": p.sha256}]);
    }
    if let Some(version) = &p.version {
        v["versionInfo"] = json!(version);
    }
    if let Some(path) = &p.store_path {
        v["sourceInfo"] = json!(format!("Nix store path {}", path.display()));
        v["externalRefs"] = json!([{
            "referenceCategory": "OTHER",
            "referenceType": "nix-store-path",
            "referenceLocator": path.display().to_string(),
        }]);
    }
    v
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}
