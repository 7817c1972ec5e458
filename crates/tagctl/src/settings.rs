//! Connection settings: defaults, then the TOML file, then `TAGCTL_*`, then flags.
//!
//! The environment comes in as a map rather than being read here, so precedence is
//! testable without mutating the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cli::Global;
use crate::exit::Failure;

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:50051";

/// The environment variables tagctl reads; others with the prefix are not settings
/// (e.g. a future `TAGCTL_LOG`) and must not trip the unknown-key check.
const ENV_KEYS: [&str; 2] = ["TAGCTL_SERVER", "TAGCTL_KEY"];

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `http://host:port`; a bare `host:port` gets `http://`.
    pub server: String,
    /// Bearer key; none means calling without `authorization`.
    #[serde(default)]
    pub key: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("server", &self.server)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Settings {
    pub fn load(flags: &Global, env: &HashMap<String, String>) -> Result<Self, Failure> {
        let bad = |e: config::ConfigError| Failure::usage(format!("configuration: {e}"));
        let mut builder = config::Config::builder()
            .set_default("server", DEFAULT_SERVER)
            .map_err(bad)?;
        if let Some(file) = config_file(flags.config.as_deref(), env)? {
            builder = builder
                .add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml));
        }
        let ours = env
            .iter()
            .filter(|(name, _)| ENV_KEYS.contains(&name.as_str()))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        builder = builder
            .add_source(
                config::Environment::with_prefix("TAGCTL")
                    .prefix_separator("_")
                    .ignore_empty(true)
                    .source(Some(ours)),
            )
            .set_override_option("server", flags.server.clone())
            .map_err(bad)?
            .set_override_option("key", flags.key.clone())
            .map_err(bad)?;
        let mut settings: Settings = builder
            .build()
            .map_err(bad)?
            .try_deserialize()
            .map_err(bad)?;
        settings.server = normalise_server(&settings.server)?;
        if settings.key.as_deref().is_some_and(str::is_empty) {
            settings.key = None;
        }
        Ok(settings)
    }
}

/// The explicit `--config` file (which must exist), else the default one if present.
fn config_file(
    explicit: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Option<PathBuf>, Failure> {
    if let Some(path) = explicit {
        if !path.is_file() {
            return Err(Failure::usage(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        return Ok(Some(path.to_owned()));
    }
    let base = match (env.get("XDG_CONFIG_HOME"), env.get("HOME")) {
        (Some(xdg), _) if !xdg.is_empty() => PathBuf::from(xdg),
        (_, Some(home)) if !home.is_empty() => Path::new(home).join(".config"),
        _ => return Ok(None),
    };
    let path = base.join("tagctl").join("config.toml");
    Ok(path.is_file().then_some(path))
}

fn normalise_server(server: &str) -> Result<String, Failure> {
    let server = server.trim().trim_end_matches('/');
    if server.starts_with("https://") {
        return Err(Failure::usage(
            "server: https:// is not supported by this build; use http:// (or a TLS-terminating proxy on loopback)",
        ));
    }
    if server.starts_with("http://") {
        return Ok(server.to_owned());
    }
    if server.contains("://") || server.is_empty() {
        return Err(Failure::usage(format!(
            "server: {server:?} is not an http:// URL"
        )));
    }
    Ok(format!("http://{server}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(server: Option<&str>, key: Option<&str>, config: Option<&Path>) -> Global {
        Global {
            server: server.map(str::to_owned),
            key: key.map(str::to_owned),
            config: config.map(Path::to_owned),
            json: false,
        }
    }

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_apply_without_any_source() {
        let settings = Settings::load(&flags(None, None, None), &env(&[])).expect("load");
        assert_eq!(settings.server, DEFAULT_SERVER);
        assert_eq!(settings.key, None);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("tagctl.toml");
        std::fs::write(&file, "server = \"http://file:1\"\nkey = \"file-key\"\n").expect("write");

        let only_file = Settings::load(&flags(None, None, Some(&file)), &env(&[])).expect("load");
        assert_eq!(
            (only_file.server.as_str(), only_file.key.as_deref()),
            ("http://file:1", Some("file-key"))
        );

        let vars = env(&[
            ("TAGCTL_SERVER", "env:2"),
            ("TAGCTL_KEY", "env-key"),
            ("TAGCTL_OTHER", "x"),
        ]);
        let with_env = Settings::load(&flags(None, None, Some(&file)), &vars).expect("load");
        assert_eq!(
            (with_env.server.as_str(), with_env.key.as_deref()),
            ("http://env:2", Some("env-key"))
        );

        let with_flags = Settings::load(
            &flags(Some("http://flag:3"), Some("flag-key"), Some(&file)),
            &vars,
        )
        .expect("load");
        assert_eq!(
            (with_flags.server.as_str(), with_flags.key.as_deref()),
            ("http://flag:3", Some("flag-key"))
        );
    }

    #[test]
    fn the_default_file_is_read_when_present() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_dir = dir.path().join(".config").join("tagctl");
        std::fs::create_dir_all(&config_dir).expect("mkdir");
        std::fs::write(config_dir.join("config.toml"), "key = \"home-key\"\n").expect("write");
        let home = dir.path().to_str().expect("utf-8 path");
        let settings =
            Settings::load(&flags(None, None, None), &env(&[("HOME", home)])).expect("load");
        assert_eq!(settings.key.as_deref(), Some("home-key"));
        assert_eq!(settings.server, DEFAULT_SERVER);
    }

    #[test]
    fn bad_files_are_usage_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.toml");
        let failure =
            Settings::load(&flags(None, None, Some(&missing)), &env(&[])).expect_err("missing");
        assert_eq!(failure.exit_code(), crate::exit::USAGE);

        let typo = dir.path().join("typo.toml");
        std::fs::write(&typo, "sever = \"http://x:1\"\n").expect("write");
        let failure = Settings::load(&flags(None, None, Some(&typo)), &env(&[])).expect_err("typo");
        assert!(failure.to_string().contains("sever"), "{failure}");
    }

    #[test]
    fn servers_are_http_urls() {
        assert_eq!(
            normalise_server("localhost:50051").ok().as_deref(),
            Some("http://localhost:50051")
        );
        assert!(normalise_server("https://x:1").is_err());
        assert!(normalise_server("ftp://x").is_err());
    }

    #[test]
    fn debug_hides_the_key() {
        let settings = Settings {
            server: DEFAULT_SERVER.into(),
            key: Some("secret-key".into()),
        };
        assert!(!format!("{settings:?}").contains("secret-key"));
    }
}
