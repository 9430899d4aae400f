//! The JWT signing secret: `CRM_JWT_SECRET` from the environment (at least 32 bytes), or —
//! in local mode only — one generated once and kept in `<data dir>/jwt-secret`, readable by
//! the owner only. The secret is never logged.

use std::io::Write;
use std::path::Path;

use crm_core::identity::Secret;

use crate::BoxError;
use crate::store::create_private_dir;

/// The environment variable holding the secret.
pub const ENV: &str = "CRM_JWT_SECRET";
/// Name of the generated secret's file in the data directory.
pub const FILE: &str = "jwt-secret";
/// Shortest accepted secret, in bytes (HS256 keys should be at least as long as the hash).
pub const MIN_LEN: usize = 32;

/// Where the secret came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `CRM_JWT_SECRET`.
    Environment,
    /// The data directory's file, read.
    File,
    /// The data directory's file, just generated.
    Generated,
}

/// The secret from `env_value` (the value of [`ENV`], if set) or, in local mode, from (or
/// into) the data directory.
///
/// # Errors
/// A secret shorter than [`MIN_LEN`]; no secret outside local mode; the file cannot be read
/// or written.
pub fn load(
    env_value: Option<String>,
    data_dir: &Path,
    local: bool,
) -> Result<(Secret, Origin), BoxError> {
    if let Some(value) = env_value {
        if value.len() < MIN_LEN {
            return Err(format!("{ENV} must be at least {MIN_LEN} bytes long").into());
        }
        return Ok((Secret::new(value.into_bytes()), Origin::Environment));
    }
    if !local {
        return Err(format!(
            "set {ENV} (at least {MIN_LEN} random bytes): a secret is generated only in local mode (a loopback --bind address)"
        )
        .into());
    }
    let path = data_dir.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = text.trim().to_owned();
            if text.len() < MIN_LEN {
                return Err(format!("{} is shorter than {MIN_LEN} bytes", path.display()).into());
            }
            Ok((Secret::new(text.into_bytes()), Origin::File))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_private_dir(data_dir)?;
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a secret: {e}"))?;
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            file.write_all(hex.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok((Secret::new(hex.into_bytes()), Origin::Generated))
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display()).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_owner_only_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (first, origin) = load(None, &data, true).unwrap();
        assert_eq!(origin, Origin::Generated);
        assert_eq!(first.expose().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(&data).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let (again, origin) = load(None, &data, true).unwrap();
        assert_eq!(origin, Origin::File);
        assert_eq!(again.expose(), first.expose());
    }

    #[test]
    fn the_environment_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let (s, origin) = load(Some("x".repeat(40)), dir.path(), false).unwrap();
        assert_eq!((s.expose().len(), origin), (40, Origin::Environment));
        assert!(load(Some("short".into()), dir.path(), true).is_err());
        // Outside local mode nothing is generated.
        let err = load(None, dir.path(), false).unwrap_err().to_string();
        assert!(err.contains(ENV), "{err}");
        assert!(!dir.path().join(FILE).exists());
    }
}
