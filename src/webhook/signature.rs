//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body under the webhook's secret, compared in
//! constant time against every secret that is currently accepted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header's name, as GitHub sends it.
pub const HEADER: &str = "X-Hub-Signature-256";
const PREFIX: &str = "sha256=";

/// Why a delivery's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "the {HEADER} header is missing: give the webhook a secret in GitHub (the stack's webhook secret)"
    )]
    Missing,
    #[error(
        "the {HEADER} header is missing; an X-Hub-Signature (SHA-1) header came, which is not accepted: GitHub sends {HEADER} beside it for every webhook with a secret, so save the webhook again in GitHub (or recreate it) to have it signed with SHA-256"
    )]
    OnlySha1,
    #[error("the {HEADER} header is malformed ({0}): expected `sha256=` and 64 hex digits")]
    Malformed(&'static str),
    #[error(
        "the {HEADER} signature does not match: the webhook's secret in GitHub is not the one the function holds"
    )]
    Mismatch,
    #[error("no webhook secret is configured: put the secret in the webhook secret's value")]
    NoSecret,
}

/// Parses `sha256=<64 hex digits>` (hex in either case) into the 32 signature bytes.
pub fn parse(header: &str) -> Result<[u8; 32], SignatureError> {
    let hex = header
        .trim()
        .strip_prefix(PREFIX)
        .ok_or(SignatureError::Malformed("no `sha256=` prefix"))?;
    if hex.len() != 64 {
        return Err(SignatureError::Malformed("wrong length"));
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or(SignatureError::Malformed("not hex"))?;
        let lo = nibble(pair[1]).ok_or(SignatureError::Malformed("not hex"))?;
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Checks `header` against `body` under each of `secrets` in order; returns the index of the
/// first secret that signed it. Each comparison is constant-time; which secret matched may show
/// in the timing, what the secrets are does not.
pub fn verify<S: AsRef<[u8]>>(
    secrets: &[S],
    body: &[u8],
    header: Option<&str>,
) -> Result<usize, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let expected = parse(header)?;
    if secrets.is_empty() {
        return Err(SignatureError::NoSecret);
    }
    secrets
        .iter()
        .position(|secret| {
            let mut mac = mac(secret.as_ref());
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        })
        .ok_or(SignatureError::Mismatch)
}

/// The header value GitHub would send for `body` under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!(
        "{PREFIX}{}",
        crate::generate::hex(&mac.finalize().into_bytes())
    )
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // `InvalidLength` is only returned by MACs with fixed key sizes; HMAC takes any key.
    let Ok(mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    // GitHub's documented test vector.
    const SECRET: &str = "It's a Secret to Everybody";
    const BODY: &str = "Hello, World!";
    const SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn githubs_test_vector_signs_and_verifies() {
        assert_eq!(sign(SECRET.as_bytes(), BODY.as_bytes()), SIGNATURE);
        assert_eq!(verify(&[SECRET], BODY.as_bytes(), Some(SIGNATURE)), Ok(0));
        let upper = format!("sha256={}", SIGNATURE[7..].to_uppercase());
        assert_eq!(verify(&[SECRET], BODY.as_bytes(), Some(&upper)), Ok(0));
    }

    #[test]
    fn any_accepted_secret_verifies_and_is_named() {
        assert_eq!(
            verify(&["new", SECRET], BODY.as_bytes(), Some(SIGNATURE)),
            Ok(1)
        );
        assert_eq!(
            verify(&["new", "old"], BODY.as_bytes(), Some(SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_malformed_and_wrong_signatures_are_told_apart() {
        let body = BODY.as_bytes();
        assert_eq!(verify(&[SECRET], body, None), Err(SignatureError::Missing));
        for (header, reason) in [
            (
                "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                "no `sha256=` prefix",
            ),
            (
                "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                "no `sha256=` prefix",
            ),
            ("sha256=757107ea", "wrong length"),
            ("sha256=", "wrong length"),
            (
                "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
                "not hex",
            ),
            (
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043eé",
                "not hex",
            ),
        ] {
            assert_eq!(
                verify(&[SECRET], body, Some(header)),
                Err(SignatureError::Malformed(reason)),
                "{header}"
            );
        }
        let flipped = SIGNATURE.replace("e17", "e18");
        assert_eq!(
            verify(&[SECRET], body, Some(&flipped)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&[SECRET], b"Hello, World?", Some(SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        let none: [&str; 0] = [];
        assert_eq!(
            verify(&none, body, Some(SIGNATURE)),
            Err(SignatureError::NoSecret)
        );
    }
}

/// What identifies a delivery: the hex SHA-256 of the event name and the verified body.
///
/// GitHub signs the body but not the `X-GitHub-Delivery` header, so a captured delivery can be
/// replayed under any delivery id; the body cannot change without breaking the signature. A
/// manual redelivery from GitHub's log sends the same body, and so has the same key.
pub fn delivery_key(event: &str, body: &[u8]) -> String {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(event.as_bytes());
    h.update([0]);
    h.update(body);
    crate::generate::hex(&h.finalize())
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn the_key_follows_the_signed_body_and_the_event_not_the_delivery_id() {
        let a = delivery_key("push", b"{\"after\":\"1\"}");
        assert_eq!(a.len(), 64);
        assert_eq!(a, delivery_key("push", b"{\"after\":\"1\"}"));
        assert_ne!(a, delivery_key("push", b"{\"after\":\"2\"}"));
        assert_ne!(a, delivery_key("pull_request", b"{\"after\":\"1\"}"));
        // The separator keeps the event and the body apart.
        assert_ne!(delivery_key("pus", b"h{}"), delivery_key("push", b"{}"));
    }
}
