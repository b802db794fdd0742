//! The code an authenticator app shows (RFC 6238 with its defaults: HMAC-SHA-1, 6 digits, 30
//! seconds), computed here independently of the server's implementation, for tests that play
//! the person holding the app.

use aws_lc_rs::hmac;

/// The code for `unix_seconds` of the app whose secret is `secret_base32` (RFC 4648, no
/// padding, as an `otpauth://` URI or the manual-entry text carries it).
pub fn code_at(secret_base32: &str, unix_seconds: u64) -> String {
    let secret = base32_decode(secret_base32);
    let counter = unix_seconds / 30;
    // RFC 4226 section 5.3: HMAC-SHA-1 of the counter, dynamically truncated to 31 bits.
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = usize::from(mac[19] & 0x0f);
    let value = u32::from_be_bytes(mac[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}

/// The code shown now, by the wall clock.
#[allow(
    clippy::disallowed_methods,
    reason = "the person's app reads the wall clock, as the server under test does"
)]
pub fn code_now(secret_base32: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    code_at(secret_base32, now)
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut count, mut out) = (0u64, 0, Vec::new());
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("a base32 character") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_rfc_6238_appendix_b() {
        // The SHA-1 test vectors: the secret is ASCII "12345678901234567890"; the RFC shows
        // eight digits, of which an app shows the last six.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(code_at(secret, 59), "287082");
        assert_eq!(code_at(secret, 1_111_111_109), "081804");
        assert_eq!(code_at(secret, 1_234_567_890), "005924");
        assert_eq!(code_at(secret, 20_000_000_000), "353130");
    }
}
