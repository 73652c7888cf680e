//! CycloneDX 1.5 JSON: one component per package (its `bom-ref` the SPDX-style id), hashes,
//! licenses where Nix said one, the store path as a property, and the dependency graph. The
//! serial number is a UUID made from the bill's fingerprint, so the same image gives the same
//! document.

use serde_json::{json, Value};

use super::{BillOfMaterials, ChecksumOf, Package};

pub fn document(bom: &BillOfMaterials) -> Value {
    let hex = bom.fingerprint().hex().to_owned();
    // Version 4 layout (random bits from the fingerprint, version and variant bits set).
    let serial = format!(
        "urn:uuid:{}-{}-4{}-{}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        ["8", "9", "a", "b"][usize::from_str_radix(&hex[16..17], 16).unwrap_or(0) % 4],
        &hex[17..20],
        &hex[20..32]
    );
    let dependencies: Vec<Value> = bom
        .packages
        .iter()
        .map(|p| json!({"ref": p.id, "dependsOn": p.depends_on}))
        .collect();
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial,
        "version": 1,
        "metadata": {
            "timestamp": bom.created,
            "tools": {"components": [{
                "type": "application",
                "name": "nixpush",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": bom.name,
            },
        },
        "components": bom.packages.iter().map(component).collect::<Vec<_>>(),
        "dependencies": dependencies,
    })
}

fn component(p: &Package) -> Value {
    let mut v = json!({
        "type": "library",
        "bom-ref": p.id,
        "name": p.name,
        "properties": [{
            "name": "nixpush:checksum-of",
            "value": match p.checksum_of {
                ChecksumOf::Nar => "the store path's NAR serialisation (Nix's narHash)",
                ChecksumOf::LayerTar => "the layer's uncompressed tar (its diff_id)",
            },
        }],
    });
    if !p.sha256.is_empty() {
        v["hashes"] = json!([{"alg": "SHA-256", "content": p.sha256}]);
    }
    if let Some(version) = &p.version {
        v["version"] = json!(version);
    }
    if let Some(license) = &p.license {
        v["licenses"] = json!([{"expression": license}]);
    }
    if let Some(path) = &p.store_path {
        v["properties"]
            .as_array_mut()
            .expect("an array")
            .push(json!({"name": "nix:store-path", "value": path.display().to_string()}));
    }
    v
}
