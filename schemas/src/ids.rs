//! Entity identifiers: a short type prefix and 16 random base32 characters (80 bits).

use rand::Rng;

const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A new random identifier such as `adv_k3m9x2p4q8r7s6t5`.
pub fn new_id(prefix: &str) -> String {
    let mut rng = rand::rng();
    let mut id = String::with_capacity(prefix.len() + 17);
    id.push_str(prefix);
    id.push('_');
    for _ in 0..16 {
        id.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    id
}

/// Random characters drawn from `alphabet`.
pub fn random_code(alphabet: &[u8], len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// Letters and digits without the look-alikes 0/O, 1/I/L.
pub const UNAMBIGUOUS_UPPER: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
/// Letters and digits, upper case.
pub const ALNUM_UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Lower-case letters and digits without look-alikes, used for link codes.
pub const LINK_CODE_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
