//! The server key: from the config, from a file, or generated once into the data directory.

use std::io::Write as _;
use std::path::Path;

use gatehouse_core::config::Config;
use gatehouse_core::crypto::ServerKey;
use gatehouse_core::random::Random;

/// Where the key came from, for the start-up log line.
pub enum KeySource {
    Config,
    File(String),
    Generated(String),
}

pub fn load_server_key(config: &Config, random: &dyn Random) -> anyhow::Result<(ServerKey, KeySource)> {
    if let Some(text) = &config.server.secret_key {
        return Ok((
            ServerKey::from_base64(text).map_err(|e| anyhow::anyhow!("server.secret_key: {e}"))?,
            KeySource::Config,
        ));
    }
    let (path, generated) = match &config.server.secret_key_file {
        Some(p) => (p.clone(), false),
        None => (config.server.data_dir.join("secret.key"), true),
    };
    if !path.exists() && generated {
        write_new_key(&path, &ServerKey::generate_base64(random))?;
        let key = read_key(&path)?;
        return Ok((key, KeySource::Generated(path.display().to_string())));
    }
    Ok((read_key(&path)?, KeySource::File(path.display().to_string())))
}

/// The server key as [`load_server_key`] would find it, without generating one: `None` when none exists yet;
/// with where it was found.
pub fn find_server_key(config: &Config) -> anyhow::Result<Option<(ServerKey, String)>> {
    if let Some(text) = &config.server.secret_key {
        let key = ServerKey::from_base64(text).map_err(|e| anyhow::anyhow!("server.secret_key: {e}"))?;
        return Ok(Some((key, "server.secret_key".into())));
    }
    let path = config.server.secret_key_file.clone().unwrap_or_else(|| config.server.data_dir.join("secret.key"));
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some((read_key(&path)?, path.display().to_string())))
}

fn read_key(path: &Path) -> anyhow::Result<ServerKey> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read secret key {}: {e}", path.display()))?;
    ServerKey::from_base64(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn write_new_key(path: &Path, key: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut f) => f
            .write_all(format!("{key}\n").as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display())),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot create {}: {e}", path.display())),
    }
}
