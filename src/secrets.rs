//! Secrets generated on first start and kept in the data directory, so that a restart keeps
//! verifying click tokens, signatures and the same admin token.
//!
//! The data directory is made private (mode 0700) and every secret file is 0600, tightened
//! when found looser: other users of the machine read neither the secrets nor the log and
//! store beside them.

use rand::Rng;
use std::io::Write;
use std::path::Path;

/// `len` random characters from an alphabet without look-alikes (no 0, O, 1, l, I).
pub fn random_secret(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Creates `dir` if needed and makes it readable by its owner only (0700).
/// Errors: it cannot be created, or its mode cannot be set.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes `contents` to `path` readable by its owner only (mode 0600), replacing the file
/// atomically (a temporary file renamed into place).
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A secret and whether this start created it.
pub struct Kept {
    /// The secret.
    pub value: String,
    /// Whether it was generated now (and so has never been shown).
    pub created: bool,
}

/// The value in `dir/name` (mode 0600), created from `make` when absent.
fn kept(dir: &Path, name: &str, make: impl FnOnce() -> String) -> anyhow::Result<Kept> {
    let path = dir.join(name);
    if let Ok(v) = std::fs::read_to_string(&path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        }
        return Ok(Kept {
            value: v.trim().to_string(),
            created: false,
        });
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
    Ok(Kept {
        value,
        created: true,
    })
}

/// The admin token: given (never kept), else kept in `dir/admin-token`.
pub fn admin_token(dir: &Path, given: Option<&str>) -> anyhow::Result<Kept> {
    match given {
        Some(t) => Ok(Kept {
            value: t.to_string(),
            created: false,
        }),
        None => kept(dir, "admin-token", || {
            format!("ct_admin_{}", random_secret(32))
        }),
    }
}

/// The click key spec: given, else kept.
pub fn click_keys(dir: &Path, given: Option<&str>) -> anyhow::Result<String> {
    match given {
        Some(k) => Ok(k.to_string()),
        None => Ok(kept(dir, "click-keys", || format!("1:{}", random_secret(40)))?.value),
    }
}

/// The visitor hash salt, kept.
pub fn visitor_salt(dir: &Path) -> anyhow::Result<String> {
    Ok(kept(dir, "visitor-salt", || random_secret(32))?.value)
}

/// The key of API keys' signing secrets: given, else kept.
pub fn signing_key(dir: &Path, given: Option<&str>) -> anyhow::Result<String> {
    match given {
        Some(k) => Ok(k.to_string()),
        None => Ok(kept(dir, "signing-key", || random_secret(48))?.value),
    }
}
