//! A cosign private key file read as sigstore-rs reads cosign's keys (scrypt, then NaCl
//! secretbox, then PKCS#8), so the tests know the Python key maker writes what cosign's
//! ecosystem accepts, and that a key nixpush made opens with the passphrase it was given.

use sigstore::crypto::signing_key::SigStoreKeyPair;

/// Where the passphrase comes from, as for cosign.
const PASSWORD_VAR: &str = "COSIGN_PASSWORD";

/// Decrypts `key` with $COSIGN_PASSWORD and checks its public half is the one in `public`;
/// one line saying so, or why not.
pub fn check(key: &str, public: &str) -> Result<String, String> {
    let password = std::env::var(PASSWORD_VAR).unwrap_or_default();
    let pem = std::fs::read(key).map_err(|e| format!("cannot read {key}: {e}"))?;
    let pair = SigStoreKeyPair::from_encrypted_pem(&pem, password.as_bytes())
        .map_err(|e| format!("cannot open {key}: {e}"))?;
    let derived = pair
        .public_key_to_pem()
        .map_err(|e| format!("cannot export {key}'s public key: {e}"))?;
    let given =
        std::fs::read_to_string(public).map_err(|e| format!("cannot read {public}: {e}"))?;
    // The same key is the same DER, so the same base64: only the line breaks may differ.
    let bare = |pem: &str| pem.split_whitespace().collect::<String>();
    if bare(&derived) != bare(&given) {
        return Err(format!("{key}'s public key is not the one in {public}"));
    }
    Ok(format!("{key} opens, and its public key is {public}'s"))
}
