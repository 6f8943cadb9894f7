//! JSON string bodies for `--log-format json`: the hot path of the JSON relay.
//!
//! Child output is bytes; a JSON string must be UTF-8. Valid UTF-8 passes
//! through (escaped where JSON requires), invalid sequences become U+FFFD, and
//! printable ASCII, the common case, is copied in bulk.

/// Appends `bytes` as a JSON string; invalid UTF-8 becomes U+FFFD.
pub(super) fn push_json_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    // Most log lines are printable ASCII: copy that prefix as it is, and only
    // validate and escape from the first byte that may need it.
    let plain = plain_ascii_prefix(bytes);
    out.extend_from_slice(&bytes[..plain]);
    let rest = &bytes[plain..];
    if !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => push_json_escaped(out, text.as_bytes()),
            Err(_) => push_json_escaped(out, String::from_utf8_lossy(rest).as_bytes()),
        }
    }
    out.push(b'"');
}

/// Whether a byte goes into a JSON string as it is and is ASCII.
const fn is_plain(b: u8) -> bool {
    b >= 0x20 && b < 0x7f && b != b'"' && b != b'\\'
}

/// The length of the longest prefix of `bytes` that is printable ASCII with no
/// `"` or `\`, checked eight bytes at a time.
fn plain_ascii_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Exact per-word tests (bit-twiddling "haszero" and "hasless"): a non-zero
    // result means the word holds a byte that is not plain.
    let special = |word: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        let has_zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
        (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | has_zero(w ^ (ONES * u64::from(b'"')))
            | has_zero(w ^ (ONES * u64::from(b'\\')))
            | has_zero(w ^ (ONES * 0x7f))
            | (w & HIGH)
    };
    let mut i = 0;
    // Four words per test, so that the compiler can use vector registers.
    for block in bytes.chunks_exact(32) {
        if block.chunks_exact(8).fold(0, |acc, w| acc | special(w)) != 0 {
            break;
        }
        i += 32;
    }
    for word in bytes[i..].chunks_exact(8) {
        if special(word) != 0 {
            break;
        }
        i += 8;
    }
    while i < bytes.len() && is_plain(bytes[i]) {
        i += 1;
    }
    i
}

/// Copies valid UTF-8 into a JSON string body, escaping in runs rather than
/// byte by byte (the JSON relay is on the hot path).
fn push_json_escaped(out: &mut Vec<u8>, text: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut run = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[run..i]);
        if escape.is_empty() {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        } else {
            out.extend_from_slice(escape);
        }
        run = i + 1;
    }
    out.extend_from_slice(&text[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn json_line_round_trips_any_bytes(
            line in proptest::collection::vec(proptest::prop_oneof![
                proptest::num::u8::ANY,
                proptest::sample::select(b" \"\\\x7f\x1fazAZ~".to_vec()),
            ], 0..40)
        ) {
            let mut out = Vec::new();
            push_json_str(&mut out, &line);
            let parsed: String = serde_json::from_slice(&out).expect("valid json");
            proptest::prop_assert_eq!(parsed, String::from_utf8_lossy(&line));
            proptest::prop_assert!(!out.contains(&0x7f) && out.iter().all(|&b| b >= 0x20));
        }
    }
}
