//! Configuration: built-in defaults, then an optional TOML file, then `TAGD_*`
//! environment variables. Unknown keys are errors, not silently ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;
use tagd_core::auth::Role;
use tagd_core::customers::ContactRules;
use tagd_grpc::{ApiKey, KeyRing};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the gRPC server listens on.
    pub listen: SocketAddr,
    /// `sqlite://<path>` or `mysql://user:pass@host:port/db`.
    pub database_url: String,
    /// Database connections in the pool.
    pub pool_size: usize,
    /// Each SQLite connection's page cache, in MiB (ignored on MySQL).
    pub sqlite_cache_mib: u32,
    /// ISO 3166 region for phone numbers written without a country code.
    pub phone_region: String,
    pub log_format: LogFormat,
    /// A tracing filter, e.g. `info` or `tagd=debug,info`.
    pub log_level: String,
    /// The largest request message accepted, in bytes.
    pub max_request_bytes: usize,
    /// Seconds between sweeps that remove expired assignments.
    pub expiry_sweep_secs: u64,
    /// Where importer plugins (`lib*.so`) are found; "" = next to the `tagd`
    /// executable, where a workspace build puts them.
    pub plugins_dir: String,
    /// Folders the server may import files from; none by default.
    pub import_dirs: Vec<String>,
    /// Where uploaded import files are kept while their import runs; "" = a
    /// `tagd-uploads` folder in the system's temporary folder.
    pub upload_dir: String,
    /// The largest file UploadImport accepts, in MiB.
    pub max_upload_mb: u64,
    /// Seconds an import plugin may go without producing a batch before its job fails.
    pub import_stall_secs: u64,
    /// Address-space limit of an import worker process, in MiB.
    pub import_memory_mb: u64,
    /// The windows (in days) customer metrics count orders and amounts over.
    #[serde(deserialize_with = "one_or_many")]
    pub metric_windows_days: Vec<u32>,
    /// Milliseconds between the segment index's reads of other servers' changes.
    pub segment_poll_millis: u64,
    /// Seconds between checks for customers deleted by another server.
    pub segment_reconcile_secs: u64,
    /// Seconds between full rebuilds of the segment index.
    pub segment_rebuild_secs: u64,
    /// Seconds between the rule scheduler's looks for due rules.
    pub rule_tick_secs: u64,
    /// Seconds without progress after which a rule run is taken for dead (its server
    /// stopped) and the rule may run again.
    pub rule_stale_secs: u64,
    pub auth: AuthSettings,
}

/// A list of day counts, or one for a list of one. The config crate reads
/// `TAGD_METRIC_WINDOWS_DAYS=30` (no comma) as a number and the items of
/// `30,90` as text, so both forms and both item types are accepted here.
fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Number(i64),
        Text(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(Item),
        Many(Vec<Item>),
    }
    let items = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(item) => vec![item],
        OneOrMany::Many(items) => items,
    };
    items
        .into_iter()
        .map(|item| match item {
            // Out-of-range counts fail here; zero and too long a window in `check`.
            Item::Number(days) => u32::try_from(days).map_err(|_| {
                serde::de::Error::custom(format!("{days} is not a whole number of days"))
            }),
            Item::Text(text) => text.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("{text:?} is not a whole number of days"))
            }),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default)]
    pub keys: Vec<KeySettings>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    pub name: String,
    pub key: String,
    pub role: String,
}

impl std::fmt::Debug for KeySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySettings")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// The shortest API key accepted.
const MIN_KEY_CHARS: usize = 16;

impl Settings {
    /// Defaults, then `file` (if given), then the `TAGD_*` environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder()
            .set_default("listen", "127.0.0.1:50051")?
            .set_default("database_url", "sqlite://tagd.db")?
            .set_default("pool_size", 8)?
            .set_default("sqlite_cache_mib", tagd_store::DEFAULT_SQLITE_CACHE_MIB)?
            .set_default("phone_region", "CN")?
            .set_default("log_format", "text")?
            .set_default("log_level", "info")?
            .set_default("max_request_bytes", 16 * 1024 * 1024)?
            .set_default("expiry_sweep_secs", 60)?
            .set_default("plugins_dir", "")?
            .set_default("import_dirs", Vec::<String>::new())?
            .set_default("upload_dir", "")?
            .set_default("max_upload_mb", 1024)?
            .set_default("import_stall_secs", 60)?
            .set_default("import_memory_mb", 2048)?
            .set_default(
                "metric_windows_days",
                tagd_core::metrics::DEFAULT_WINDOWS_DAYS
                    .iter()
                    .map(|&days| i64::from(days))
                    .collect::<Vec<i64>>(),
            )?
            .set_default("segment_poll_millis", 200)?
            .set_default("segment_reconcile_secs", 10)?
            .set_default("segment_rebuild_secs", 600)?
            .set_default("rule_tick_secs", 5)?
            .set_default("rule_stale_secs", 600)?
            .set_default("auth.keys", Vec::<String>::new())?;
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("TAGD")
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                // TAGD_IMPORT_DIRS=/srv/a,/srv/b
                .list_separator(",")
                .with_list_parse_key("import_dirs")
                // TAGD_METRIC_WINDOWS_DAYS=30,90,365
                .with_list_parse_key("metric_windows_days"),
        );
        let settings: Settings = builder
            .build()
            .context("cannot read the configuration")?
            .try_deserialize()
            .context("invalid configuration")?;
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.pool_size == 0 || self.pool_size > 1024 {
            bail!("pool_size must be 1..=1024, got {}", self.pool_size);
        }
        if self.sqlite_cache_mib == 0 || self.sqlite_cache_mib > 65_536 {
            bail!(
                "sqlite_cache_mib must be 1..=65536, got {}",
                self.sqlite_cache_mib
            );
        }
        if self.max_request_bytes < 1024 {
            bail!(
                "max_request_bytes must be at least 1024, got {}",
                self.max_request_bytes
            );
        }
        if self.expiry_sweep_secs == 0 {
            bail!("expiry_sweep_secs must be at least 1");
        }
        if self.import_stall_secs == 0 {
            bail!("import_stall_secs must be at least 1");
        }
        if self.max_upload_mb == 0 {
            bail!("max_upload_mb must be at least 1");
        }
        if self.import_memory_mb < 64 {
            bail!(
                "import_memory_mb must be at least 64, got {}",
                self.import_memory_mb
            );
        }
        if self.segment_poll_millis == 0 || self.segment_poll_millis > 60_000 {
            bail!(
                "segment_poll_millis must be 1..=60000, got {}",
                self.segment_poll_millis
            );
        }
        if self.segment_reconcile_secs == 0 || self.segment_rebuild_secs == 0 {
            bail!("segment_reconcile_secs and segment_rebuild_secs must be at least 1");
        }
        if self.rule_tick_secs == 0 || self.rule_stale_secs < 60 {
            bail!("rule_tick_secs must be at least 1 and rule_stale_secs at least 60");
        }
        self.metric_windows_days()?;
        self.contact_rules()?;
        self.key_ring()?;
        Ok(())
    }

    /// The plugins folder: as configured, or the folder of this executable.
    pub fn plugins_dir(&self) -> anyhow::Result<PathBuf> {
        if !self.plugins_dir.is_empty() {
            return Ok(PathBuf::from(&self.plugins_dir));
        }
        let exe = std::env::current_exe().context("cannot locate the tagd executable")?;
        exe.parent()
            .map(Path::to_path_buf)
            .context("the tagd executable has no folder")
    }

    pub fn upload_dir(&self) -> PathBuf {
        if self.upload_dir.is_empty() {
            std::env::temp_dir().join("tagd-uploads")
        } else {
            PathBuf::from(&self.upload_dir)
        }
    }

    /// The metric windows, checked and in ascending order.
    pub fn metric_windows_days(&self) -> anyhow::Result<Vec<u32>> {
        tagd_core::metrics::windows("metric_windows_days", &self.metric_windows_days)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    pub fn contact_rules(&self) -> anyhow::Result<ContactRules> {
        ContactRules::for_region(&self.phone_region)
            .map_err(|e| anyhow::anyhow!("phone_region: {e}"))
    }

    pub fn key_ring(&self) -> anyhow::Result<KeyRing> {
        let mut keys: Vec<ApiKey> = Vec::with_capacity(self.auth.keys.len());
        for (index, entry) in self.auth.keys.iter().enumerate() {
            let field = format!("auth.keys[{index}]");
            if entry.name.trim().is_empty() {
                bail!("{field}.name must not be empty");
            }
            if entry.key.chars().count() < MIN_KEY_CHARS {
                bail!(
                    "{field}.key (for {:?}) must be at least {MIN_KEY_CHARS} characters",
                    entry.name
                );
            }
            let role: Role = entry
                .role
                .parse()
                .map_err(|e| anyhow::anyhow!("{field}.role: {e}"))?;
            if keys.iter().any(|key| key.name == entry.name) {
                bail!("{field}.name {:?} is used by another key", entry.name);
            }
            if keys.iter().any(|key| key.key == entry.key) {
                bail!(
                    "{field}.key (for {:?}) is the same as another key's",
                    entry.name
                );
            }
            keys.push(ApiKey {
                name: entry.name.clone(),
                key: entry.key.clone(),
                role,
            });
        }
        Ok(KeyRing::new(keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Windows {
        #[serde(deserialize_with = "one_or_many")]
        days: Vec<u32>,
    }

    fn windows(json: &str) -> Result<Vec<u32>, String> {
        serde_json::from_str::<Windows>(&format!("{{\"days\": {json}}}"))
            .map(|w| w.days)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn metric_windows_are_one_number_or_a_list_of_numbers_or_texts() {
        assert_eq!(windows("30"), Ok(vec![30]));
        assert_eq!(windows("[365, 30]"), Ok(vec![365, 30]));
        // What TAGD_METRIC_WINDOWS_DAYS=7,14 becomes.
        assert_eq!(windows("[\"7\", \" 14\"]"), Ok(vec![7, 14]));
        assert!(
            windows("-3")
                .unwrap_err()
                .contains("-3 is not a whole number of days")
        );
        assert!(
            windows("[\"x\"]")
                .unwrap_err()
                .contains("\"x\" is not a whole number")
        );
    }
}
