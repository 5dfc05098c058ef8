//! Opaque, unguessable ids for what buttons carry: approval requests (`req_…`) and triages
//! (`tri_…`). A button holds nothing but such an id; the server-side state decides.

use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

/// Hex digits after the prefix.
pub const HEX_LEN: usize = 16;

/// `prefix` and [`HEX_LEN`] lower-case hex digits of sha256 over the time, a process counter,
/// the pid and the standard library's per-process random hash keys: not sequential, not
/// guessable from another id.
pub fn unguessable(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let keyed = std::hash::RandomState::new().hash_one((n, nanos));
    let mut h = Sha256::new();
    h.update(nanos.to_le_bytes());
    h.update(n.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    h.update(keyed.to_le_bytes());
    let digest = h.finalize();
    format!("{prefix}{}", hex::encode(&digest[..HEX_LEN / 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_never_repeat() {
        let a = unguessable("tri_");
        let b = unguessable("tri_");
        assert!(a.starts_with("tri_") && a.len() == 4 + HEX_LEN, "{a}");
        assert_ne!(a, b);
    }
}
