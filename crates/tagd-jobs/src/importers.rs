//! Importer discovery: every plugin library in `plugins_dir`, probed in a
//! worker process (a plugin is never loaded into the server), with its
//! metadata or the reason it cannot be used. Probes are cached per file and
//! modification time, so listing importers is cheap after the first time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tagd_plugin_api::host::{Event, Limits, spawn};
use tagd_plugin_api::{OptionSpec, PluginInfo};
use tokio::sync::Mutex;

use crate::registry::JobsConfig;

/// How long a plugin may take to load and describe itself.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A plugin found in `plugins_dir`.
#[derive(Debug, Clone, PartialEq)]
pub struct Importer {
    /// The name StartImport takes (the library's file stem when it cannot be loaded).
    pub name: String,
    pub version: String,
    pub abi_version: u32,
    pub channel: String,
    pub file_types: Vec<String>,
    pub options: Vec<OptionSpec>,
    pub description: String,
    pub path: PathBuf,
    /// Why it cannot be used ("" when it can).
    pub error: String,
}

impl Importer {
    fn from_info(info: PluginInfo, path: PathBuf) -> Self {
        Self {
            name: info.name,
            version: info.version,
            abi_version: info.abi_version,
            channel: info.channel,
            file_types: info.file_types,
            options: info.options,
            description: info.description,
            path,
            error: String::new(),
        }
    }

    fn broken(path: PathBuf, error: String) -> Self {
        Self {
            name: library_stem(&path),
            version: String::new(),
            abi_version: 0,
            channel: String::new(),
            file_types: Vec::new(),
            options: Vec::new(),
            description: String::new(),
            path,
            error,
        }
    }
}

/// "libtagd_plugin_vcard.so" → "tagd_plugin_vcard".
fn library_stem(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    stem.strip_prefix("lib").map(str::to_owned).unwrap_or(stem)
}

fn is_library(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .unwrap_or_default();
    name.starts_with("lib") && (name.ends_with(".so") || name.ends_with(".dylib"))
}

/// Probe results by library path, valid while the file's modification time is unchanged.
#[derive(Default)]
pub(crate) struct ImporterCache {
    probes: Mutex<HashMap<PathBuf, (SystemTime, Importer)>>,
}

impl ImporterCache {
    /// Every library in `plugins_dir`, sorted by name.
    pub(crate) async fn discover(&self, config: &JobsConfig) -> Vec<Importer> {
        let mut paths = Vec::new();
        if let Ok(mut entries) = tokio::fs::read_dir(&config.plugins_dir).await {
            while let Ok(Some(entry)) = entries.next_entry().await {
                let path = entry.path();
                if is_library(&path) {
                    paths.push(path);
                }
            }
        }
        paths.sort();
        let mut importers = Vec::with_capacity(paths.len());
        let mut probes = self.probes.lock().await;
        probes.retain(|path, _| paths.contains(path));
        for path in paths {
            let modified = tokio::fs::metadata(&path)
                .await
                .and_then(|meta| meta.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            match probes.get(&path) {
                Some((seen, importer)) if *seen == modified => importers.push(importer.clone()),
                _ => {
                    let importer = probe(config, &path).await;
                    probes.insert(path, (modified, importer.clone()));
                    importers.push(importer);
                }
            }
        }
        importers.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.path.cmp(&b.path)));
        importers
    }
}

/// Loads one plugin in a worker and reads its metadata.
async fn probe(config: &JobsConfig, path: &Path) -> Importer {
    let mut command = config.worker_command();
    command.arg("--probe").arg(path);
    let limits = Limits {
        stall_timeout: PROBE_TIMEOUT,
        ..config.limits
    };
    let mut run = match spawn(command, library_stem(path), limits) {
        Ok(run) => run,
        Err(error) => return Importer::broken(path.to_owned(), error.to_string()),
    };
    let mut found = None;
    loop {
        match run.next().await {
            Ok(Some(Event::Info(info))) => found = Some(info),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(error) => return Importer::broken(path.to_owned(), error.to_string()),
        }
    }
    match found {
        Some(info) => Importer::from_info(info, path.to_owned()),
        None => Importer::broken(path.to_owned(), "the worker reported no plugin".to_owned()),
    }
}
