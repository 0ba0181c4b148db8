//! One resource per key: the name tether gives a resource, and the label and annotations it
//! puts on it.
//!
//! - The name is a readable prefix (the manifest's `metadata.name`, else its
//!   `metadata.generateName`, else its kind; lowercased, reduced to DNS-1123 characters) and
//!   a digest of the key: `nightly-etl-3f9c2a7d1b6e4f08`. It is at most 63 characters and a
//!   DNS-1123 label, so it is a valid name for every resource type (a Job's name becomes its
//!   pods' label value, which allows no more), and a new generation of a job (a new key)
//!   gets a new name.
//! - The label `tether.dev/managed-by: tether` marks tether's resources (what its watches and
//!   lists select); `tether.dev/key-digest` holds the key's digest (a label value allows 63
//!   characters, fewer than a key may have), and the annotation `tether.dev/key` holds the
//!   key in full (tether's key namespace is part of it). A resource found under our name is
//!   ours only if that annotation names our key.

use sha2::{Digest, Sha256};

/// The label every resource tether makes carries, with [`MANAGED_BY_VALUE`].
pub const MANAGED_BY: &str = "tether.dev/managed-by";
/// Its value.
pub const MANAGED_BY_VALUE: &str = "tether";
/// The label holding the key's digest.
pub const KEY_DIGEST: &str = "tether.dev/key-digest";
/// The annotation holding the key.
pub const KEY: &str = "tether.dev/key";
/// The longest name: a DNS-1123 label.
pub const MAX_NAME: usize = 63;
/// Hex digits of the key's digest in the name and the label.
const DIGEST_HEX: usize = 16;

/// The first [`DIGEST_HEX`] hex digits of the SHA-256 of `key`.
pub fn key_digest(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest
        .iter()
        .take(DIGEST_HEX / 2)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The name of the resource of `key` whose manifest suggests `prefix`.
pub fn resource_name(prefix: &str, key: &str) -> String {
    let mut readable: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    // The digest and its dash take 17 characters; a name starts with a letter or digit.
    readable.truncate(MAX_NAME - DIGEST_HEX - 1);
    let readable = readable.trim_matches('-');
    let mut squeezed = String::with_capacity(readable.len());
    for c in readable.chars() {
        if !(c == '-' && squeezed.ends_with('-')) {
            squeezed.push(c);
        }
    }
    let digest = key_digest(key);
    if squeezed.is_empty() {
        format!("t-{digest}")
    } else {
        format!("{squeezed}-{digest}")
    }
}

/// Whether `name` is a DNS-1123 label (what [`resource_name`] makes).
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_readable_dns_labels_that_change_with_the_key() {
        let n = resource_name("Nightly_ETL.job", "tether-0123");
        assert!(n.starts_with("nightly-etl-job-"), "{n}");
        assert!(is_dns_label(&n), "{n}");
        assert_ne!(n, resource_name("Nightly_ETL.job", "tether-0124"));
        let long = resource_name(&"x".repeat(200), "k");
        assert_eq!(long.len(), MAX_NAME);
        assert!(is_dns_label(&long));
        assert!(is_dns_label(&resource_name("--", "k")));
        assert!(resource_name("", "k").starts_with("t-"));
        assert!(is_dns_label(&resource_name("a--b__-", "k")));
    }

    #[test]
    fn dns_labels_are_checked() {
        assert!(is_dns_label("job-1"));
        for bad in ["", "-a", "a-", "A", "a.b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
    }
}
