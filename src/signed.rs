//! Tokens the service signs and alone can verify, with no state: `<claims>.<mac>`, both
//! base64url without padding, the claims JSON and the MAC HMAC-SHA256 with the secret over the
//! token's purpose, a NUL and the claims' bytes. The purpose (`device`, `unlock`) is signed, not
//! written: a token made for one purpose never verifies for another, under one secret.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::Sha256;

use crate::secret::Secret;

/// The longest token read: longer text is no token of ours (the longest claims, a username of
/// 255 four-byte characters and a scope, take under 1.6 KB).
pub const MAX_TOKEN_CHARS: usize = 4096;

/// The token of `claims` for `purpose`.
pub(crate) fn sign(secret: &Secret, purpose: &str, claims: &impl Serialize) -> String {
    let claims = serde_json::to_vec(claims).expect("claims serialise");
    let mac = mac(secret, purpose, &claims).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&claims),
        URL_SAFE_NO_PAD.encode(mac)
    )
}

/// The claims of `token` when this secret signed it for `purpose`; `None` for anything else
/// (forged, altered, another purpose's, not a token at all). The MAC is compared in constant
/// time, before the claims are parsed.
pub(crate) fn verify<T: DeserializeOwned>(
    secret: &Secret,
    purpose: &str,
    token: &str,
) -> Option<T> {
    if token.len() > MAX_TOKEN_CHARS {
        return None;
    }
    let (claims, signature) = token.split_once('.')?;
    let claims = URL_SAFE_NO_PAD.decode(claims).ok()?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    mac(secret, purpose, &claims)
        .verify_slice(&signature)
        .ok()?;
    serde_json::from_slice(&claims).ok()
}

fn mac(secret: &Secret, purpose: &str, claims: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(claims);
    mac
}

/// `bytes` random bytes from the operating system, base64url: an ID no one can guess.
pub(crate) fn random_id(bytes: usize) -> crate::Result<String> {
    let mut id = vec![0; bytes];
    getrandom::getrandom(&mut id).map_err(|err| crate::Error::Io {
        what: "random bytes".into(),
        source: std::io::Error::other(err.to_string()),
    })?;
    Ok(URL_SAFE_NO_PAD.encode(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Claims {
        u: String,
    }

    #[test]
    fn only_the_secret_and_purpose_that_signed_verify() {
        let secret = Secret::from("0123456789abcdef");
        let claims = Claims { u: "alice".into() };
        let token = sign(&secret, "device", &claims);
        assert_eq!(verify(&secret, "device", &token), Some(claims));
        assert_eq!(verify::<Claims>(&secret, "unlock", &token), None);
        let other = Secret::from("fedcba9876543210");
        assert_eq!(verify::<Claims>(&other, "device", &token), None);
        let (_, mac) = token.split_once('.').unwrap();
        let altered = format!("{}.{mac}", URL_SAFE_NO_PAD.encode(br#"{"u":"bob"}"#));
        assert_eq!(verify::<Claims>(&secret, "device", &altered), None);
        for garbage in [
            "",
            ".",
            "a.b",
            "not a token",
            &"a".repeat(MAX_TOKEN_CHARS + 1),
        ] {
            assert_eq!(
                verify::<Claims>(&secret, "device", garbage),
                None,
                "{garbage}"
            );
        }
    }

    #[test]
    fn random_ids_differ() {
        let (a, b) = (random_id(16).unwrap(), random_id(16).unwrap());
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
    }
}
