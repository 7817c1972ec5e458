//! Test-only plugin claiming plugin ABI version 999, which the host must refuse
//! at load with a message naming the plugin and both versions.

use std::path::Path;

use tagd_plugin_api::{BoxError, ImportRecord, Importer, Options, PluginInfo, RowError};

pub struct WrongAbiImporter;

/// The version this plugin claims: one no host speaks.
pub const CLAIMED_ABI_VERSION: u32 = 999;

impl Importer for WrongAbiImporter {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "test-wrong-abi".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channel: "test".to_owned(),
            ..PluginInfo::default()
        }
    }

    fn open(
        _path: &Path,
        _options: &Options,
    ) -> Result<impl Iterator<Item = Result<ImportRecord, RowError>> + 'static, BoxError> {
        Ok(std::iter::empty())
    }
}

tagd_plugin_api::export_plugin!(@claiming WrongAbiImporter, CLAIMED_ABI_VERSION);
