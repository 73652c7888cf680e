//! DSSE, the envelope in-toto attestations travel in: the payload and its type, signed through
//! the pre-authentication encoding (`DSSEv1 <len> <type> <len> <body>`) so a signature for one
//! payload type is never valid for another. cosign attaches attestations in this envelope.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::{PublicKey, Signer};

pub const DSSE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope: its payload decoded, its signatures as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub payload_type: String,
    pub payload: Vec<u8>,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope: `sig` is DER (base64 in the JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    #[serde(default)]
    pub keyid: String,
    pub sig: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire {
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

/// Base64 as the DSSE spec allows it: standard or URL-safe, padded or not.
fn decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    [base64::alphabet::STANDARD, base64::alphabet::URL_SAFE]
        .iter()
        .find_map(|alphabet| GeneralPurpose::new(alphabet, lenient).decode(text).ok())
}

/// The pre-authentication encoding a DSSE signature covers.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

impl Envelope {
    /// `payload` (of `payload_type`) in an envelope signed by `signer`, or unsigned (no
    /// signature, as buildx attaches provenance without a key).
    pub fn new(payload_type: &str, payload: Vec<u8>, signer: Option<&Signer>) -> Envelope {
        let signatures = signer
            .map(|s| EnvelopeSignature {
                keyid: String::new(),
                sig: STANDARD.encode(s.sign(&pae(payload_type, &payload))),
            })
            .into_iter()
            .collect();
        Envelope {
            payload_type: payload_type.to_owned(),
            payload,
            signatures,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Wire {
            payload_type: self.payload_type.clone(),
            payload: STANDARD.encode(&self.payload),
            signatures: self.signatures.clone(),
        })
        .expect("an envelope serialises")
    }

    pub fn parse(bytes: &[u8]) -> Option<Envelope> {
        let wire: Wire = serde_json::from_slice(bytes).ok()?;
        Some(Envelope {
            payload: decode(&wire.payload)?,
            payload_type: wire.payload_type,
            signatures: wire.signatures,
        })
    }

    /// Whether some signature of the envelope is `key`'s.
    pub fn signed_by(&self, key: &PublicKey) -> bool {
        let message = pae(&self.payload_type, &self.payload);
        self.signatures
            .iter()
            .any(|s| decode(&s.sig).is_some_and(|sig| key.verifies(&message, &sig)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_specs_encoding() {
        // The DSSE protocol's own example: PAE("http://example.com/HelloWorld", "hello world").
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn a_signed_envelope_verifies_and_a_changed_one_does_not() {
        let signer = Signer::generate().unwrap();
        let e = Envelope::new(IN_TOTO_PAYLOAD_TYPE, b"{}".to_vec(), Some(&signer));
        let back = Envelope::parse(&e.to_bytes()).unwrap();
        assert_eq!(back, e);
        assert!(back.signed_by(&signer.public_key()));
        let mut changed = back.clone();
        changed.payload = b"{\"a\":1}".to_vec();
        assert!(!changed.signed_by(&signer.public_key()));
        let mut retyped = back;
        retyped.payload_type = "text/plain".into();
        assert!(!retyped.signed_by(&signer.public_key()));
        // URL-safe base64, unpadded, as the DSSE spec also allows.
        let url_safe = e.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&url_safe).unwrap();
        let sig = v["signatures"][0]["sig"]
            .as_str()
            .unwrap()
            .replace('+', "-")
            .replace('/', "_");
        let sig = sig.trim_end_matches('=');
        let payload = v["payload"]
            .as_str()
            .unwrap()
            .replace('+', "-")
            .replace('/', "_");
        let rewritten = serde_json::json!({"payloadType": v["payloadType"], "payload": payload, "signatures": [{"keyid": "", "sig": sig}]});
        let parsed = Envelope::parse(&serde_json::to_vec(&rewritten).unwrap()).unwrap();
        assert!(parsed.signed_by(&signer.public_key()));
        assert!(Envelope::new(IN_TOTO_PAYLOAD_TYPE, vec![], None)
            .signatures
            .is_empty());
    }
}
