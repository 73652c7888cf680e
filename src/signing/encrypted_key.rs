//! cosign's encrypted private key: a PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY`, or the older
//! `ENCRYPTED COSIGN PRIVATE KEY`) whose body is JSON naming a scrypt key derivation and a NaCl
//! secretbox, holding the key's PKCS#8 DER. cosign, `skopeo generate-sigstore-key` and
//! containers/image all read and write this; byte fields are standard base64 (Go's `[]byte`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::XSalsa20Poly1305;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::passphrase::Passphrase;

pub const SIGSTORE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
pub const COSIGN_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// cosign's scrypt cost: N = 2^15, r = 8, p = 1.
const LOG_N: u8 = 15;
const R: u32 = 8;
const P: u32 = 1;
/// The largest costs accepted when reading: N up to 2^20, r up to 32, p up to 16, and at most
/// 1 GiB of memory (128 * r * N bytes): a key file cannot make nixpush spend more.
const MAX_LOG_N: u8 = 20;
const MAX_R: u32 = 32;
const MAX_P: u32 = 16;
const MAX_MEMORY: u64 = 1 << 30;

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "b64")]
    ciphertext: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: ScryptParams,
    #[serde(with = "b64")]
    salt: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
#[allow(non_snake_case)]
struct ScryptParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "b64")]
    nonce: Vec<u8>,
}

mod b64 {
    use super::{Engine, STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// Why an encrypted key did not open.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum OpenError {
    Malformed(String),
    WrongPassphrase,
}

fn derive(
    passphrase: &Passphrase,
    salt: &[u8],
    log_n: u8,
    r: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, OpenError> {
    let params = scrypt::Params::new(log_n, r, p)
        .map_err(|e| OpenError::Malformed(format!("scrypt parameters: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(passphrase.bytes(), salt, &params, key.as_mut())
        .map_err(|e| OpenError::Malformed(format!("scrypt: {e}")))?;
    Ok(key)
}

/// The PKCS#8 DER inside an encrypted key's PEM body (`body`: the bytes under the PEM label).
pub(super) fn open(body: &[u8], passphrase: &Passphrase) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let sealed: Sealed = serde_json::from_slice(body)
        .map_err(|e| OpenError::Malformed(format!("not cosign's key JSON: {e}")))?;
    if sealed.kdf.name != "scrypt" || sealed.cipher.name != "nacl/secretbox" {
        return Err(OpenError::Malformed(format!(
            "unknown encryption {} + {}",
            sealed.kdf.name, sealed.cipher.name
        )));
    }
    let (n, r, p) = (
        sealed.kdf.params.N,
        sealed.kdf.params.r,
        sealed.kdf.params.p,
    );
    if !n.is_power_of_two()
        || n < 2
        || n.trailing_zeros() > u32::from(MAX_LOG_N)
        || r == 0
        || r > MAX_R
        || p == 0
        || p > MAX_P
        || 128 * u64::from(r) * n > MAX_MEMORY
    {
        return Err(OpenError::Malformed(format!(
            "scrypt N = {n}, r = {r}, p = {p}: past what nixpush spends on a key"
        )));
    }
    let key = derive(
        passphrase,
        &sealed.kdf.salt,
        n.trailing_zeros() as u8,
        sealed.kdf.params.r,
        sealed.kdf.params.p,
    )?;
    let nonce: [u8; 24] = sealed
        .cipher
        .nonce
        .as_slice()
        .try_into()
        .map_err(|_| OpenError::Malformed("the nonce is not 24 bytes".into()))?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(&nonce.into(), sealed.ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| OpenError::WrongPassphrase)
}

/// `der` (a PKCS#8 private key) sealed under `passphrase` with a fresh salt and nonce, as
/// cosign writes it: the JSON body of the PEM block.
pub(super) fn seal(der: &[u8], passphrase: &Passphrase) -> Result<Vec<u8>, String> {
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
    let key = derive(passphrase, &salt, LOG_N, R, P).map_err(|e| format!("{e:?}"))?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt(&nonce.into(), der)
        .map_err(|_| "secretbox refused to encrypt".to_owned())?;
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".into(),
            params: ScryptParams {
                N: 1 << LOG_N,
                r: R,
                p: P,
            },
            salt: salt.to_vec(),
        },
        cipher: Cipher {
            name: "nacl/secretbox".into(),
            nonce: nonce.to_vec(),
        },
        ciphertext,
    };
    Ok(serde_json::to_vec(&sealed).expect("the key JSON serialises"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_sealed_opens_with_the_same_passphrase_only() {
        let body = seal(b"pkcs8 bytes", &Passphrase::new("right")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kdf"]["name"], "scrypt");
        assert_eq!(v["kdf"]["params"]["N"], 32768);
        assert_eq!(v["cipher"]["name"], "nacl/secretbox");
        assert_eq!(
            open(&body, &Passphrase::new("right")).unwrap().as_slice(),
            b"pkcs8 bytes"
        );
        assert_eq!(
            open(&body, &Passphrase::new("wrong")).unwrap_err(),
            OpenError::WrongPassphrase
        );
    }

    #[test]
    fn an_unbounded_cost_is_refused_before_any_work() {
        let body = br#"{"kdf":{"name":"scrypt","params":{"N":1073741824,"r":8,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#;
        assert!(matches!(
            open(body, &Passphrase::new("")),
            Err(OpenError::Malformed(m)) if m.contains("scrypt N")
        ));
        let wide = br#"{"kdf":{"name":"scrypt","params":{"N":32768,"r":1048576,"p":1},"salt":""},"cipher":{"name":"nacl/secretbox","nonce":""},"ciphertext":""}"#;
        assert!(matches!(
            open(wide, &Passphrase::new("")),
            Err(OpenError::Malformed(_))
        ));
    }
}
