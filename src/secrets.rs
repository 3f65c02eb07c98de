//! Secrets generated on first start and kept in the data directory (mode 0600), so that a
//! restart keeps verifying click tokens and accepting the same admin token.

use rand::Rng;
use std::io::Write;
use std::path::Path;

fn random_secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// The value in `dir/name`, created from `make` when absent.
fn kept(dir: &Path, name: &str, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    let path = dir.join(name);
    if let Ok(v) = std::fs::read_to_string(&path) {
        return Ok(v.trim().to_string());
    }
    let value = make();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&path)?;
    f.write_all(value.as_bytes())?;
    f.sync_all()?;
    Ok(value)
}

/// The admin token: given, else kept.
pub fn admin_token(dir: &Path, given: Option<&str>) -> anyhow::Result<String> {
    match given {
        Some(t) => Ok(t.to_string()),
        None => kept(dir, "admin-token", || {
            format!("ct_admin_{}", random_secret(32))
        }),
    }
}

/// The click key spec: given, else kept.
pub fn click_keys(dir: &Path, given: Option<&str>) -> anyhow::Result<String> {
    match given {
        Some(k) => Ok(k.to_string()),
        None => kept(dir, "click-keys", || format!("1:{}", random_secret(40))),
    }
}

/// The visitor hash salt, kept.
pub fn visitor_salt(dir: &Path) -> anyhow::Result<String> {
    kept(dir, "visitor-salt", || random_secret(32))
}
