//! The payload a cosign image signature signs ("simple signing", as containers/image calls it):
//! which manifest digest, pushed to which repository. A verifier checks both against the image
//! it was asked about, so a signature cannot be moved to another image or repository.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_TYPE: &str = "cosign container image signature";

/// A signature payload: the manifest `digest` pushed to `repository` (`HOST/REPO`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleSigning {
    pub repository: String,
    pub digest: Digest,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    critical: Critical,
    optional: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

impl SimpleSigning {
    /// The payload's bytes, in the field order cosign writes (`optional` null).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Payload {
            critical: Critical {
                identity: Identity {
                    docker_reference: self.repository.clone(),
                },
                image: Image {
                    docker_manifest_digest: self.digest.to_string(),
                },
                kind: COSIGN_TYPE.to_owned(),
            },
            optional: None,
        })
        .expect("the payload serialises")
    }

    /// This payload signed by `signer`: the layer cosign stores it as (the payload, its base64
    /// DER signature in the signature annotation).
    pub fn signed_by(&self, signer: &super::Signer) -> super::StoredLayer {
        use base64::Engine;
        let payload = self.to_bytes();
        let signature = base64::engine::general_purpose::STANDARD.encode(signer.sign(&payload));
        super::StoredLayer {
            media_type: SIMPLE_SIGNING_MEDIA_TYPE.to_owned(),
            blob: payload,
            annotations: [(super::SIGNATURE_ANNOTATION.to_owned(), signature)].into(),
        }
    }

    /// A payload read back; `None` for anything that is not a cosign image signature payload.
    pub fn parse(bytes: &[u8]) -> Option<SimpleSigning> {
        let payload: Payload = serde_json::from_slice(bytes).ok()?;
        if payload.critical.kind != COSIGN_TYPE {
            return None;
        }
        Some(SimpleSigning {
            repository: payload.critical.identity.docker_reference,
            digest: payload.critical.image.docker_manifest_digest.parse().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_the_one_cosign_signs() {
        let digest = Digest::of(b"manifest");
        let p = SimpleSigning {
            repository: "127.0.0.1:5000/app".into(),
            digest: digest.clone(),
        };
        // cosign's payload.Cosign marshals exactly these fields, in this order.
        let expected = format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"127.0.0.1:5000/app"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
        );
        assert_eq!(String::from_utf8(p.to_bytes()).unwrap(), expected);
        assert_eq!(SimpleSigning::parse(&p.to_bytes()), Some(p));
        assert_eq!(SimpleSigning::parse(br#"{"critical":{}}"#), None);
    }
}
