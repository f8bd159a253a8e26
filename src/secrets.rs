//! The cluster's secret files: the admin token (operators) and the peer key
//! (node-to-node MACs). `raftcart up` and `raftcart restore` create them in
//! the data dir on first use; elsewhere they are mounted (deploy/).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ring::rand::{SecureRandom, SystemRandom};

pub const ADMIN_TOKEN_FILE: &str = "admin.token";
pub const PEER_KEY_FILE: &str = "peer.key";

/// `<data_dir>/admin.token` and `<data_dir>/peer.key`, created if missing.
pub struct ClusterSecrets {
    pub admin_token: PathBuf,
    pub peer_key: PathBuf,
}

impl ClusterSecrets {
    pub fn ensure(data_dir: &Path) -> anyhow::Result<ClusterSecrets> {
        let secrets = ClusterSecrets {
            admin_token: data_dir.join(ADMIN_TOKEN_FILE),
            peer_key: data_dir.join(PEER_KEY_FILE),
        };
        create_if_missing(&secrets.admin_token)?;
        create_if_missing(&secrets.peer_key)?;
        Ok(secrets)
    }
}

/// Writes 32 random bytes, as 64 hex digits, to a new file only its owner
/// can read; a file already there is kept as it is. Returns whether it
/// created one.
pub fn create_if_missing(path: &Path) -> anyhow::Result<bool> {
    let mut secret = [0u8; 32];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| anyhow::anyhow!("the system's random number generator failed"))?;
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(mut f) => {
            f.write_all(format!("{hex}\n").as_bytes())
                .and_then(|_| f.sync_all())
                .with_context(|| format!("writing {}", path.display()))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// The secret in `path`, without surrounding whitespace.
pub fn read(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))?;
    let secret = bytes.trim_ascii();
    if secret.is_empty() {
        bail!("the {what} {} is empty", path.display());
    }
    Ok(secret.to_vec())
}

/// The admin token in `path`, as the text sent in `Authorization`.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    String::from_utf8(read(path, "admin token")?)
        .with_context(|| format!("the admin token {} is not text", path.display()))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_secret_is_created_once_private_and_then_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        assert!(create_if_missing(&path).unwrap());
        let first = read(&path, "secret").unwrap();
        assert_eq!(first.len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!create_if_missing(&path).unwrap());
        assert_eq!(read(&path, "secret").unwrap(), first);
        let other = dir.path().join("t");
        create_if_missing(&other).unwrap();
        assert_ne!(read(&other, "secret").unwrap(), first);
    }

    #[test]
    fn an_empty_or_missing_secret_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let err = read(&path, "admin token").unwrap_err();
        assert!(
            format!("{err:#}").contains("reading the admin token"),
            "{err:#}"
        );
        std::fs::write(&path, " \n").unwrap();
        let err = read(&path, "admin token").unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
    }
}
