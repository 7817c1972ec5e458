//! Tagd importer plugin for order exports as JSON Lines: one order per line
//! with its buyer and items becomes one record (the buyer as the customer, the
//! order as a purchase). Common field-name variants of shop exports are accepted.

mod order;
mod reader;

use std::{fs::File, io::BufReader, path::Path};

use tagd_plugin_api::{
    BoxError, ImportRecord, Importer, OptionSpec, Options, PluginInfo, RowError,
};

pub use reader::OrdersReader;

pub struct OrdersImporter;

impl Importer for OrdersImporter {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "orders".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channel: "orders".to_owned(),
            file_types: vec!["jsonl".to_owned(), "ndjson".to_owned(), "json".to_owned()],
            options: vec![
                OptionSpec {
                    name: "id_channel".to_owned(),
                    description: "channel of the buyer ids (e.g. taobao); when set they are reported as that channel's identity instead of the orders channel's".to_owned(),
                    default_value: String::new(),
                    required: false,
                },
                OptionSpec {
                    name: "currency".to_owned(),
                    description: "currency of orders that name none".to_owned(),
                    default_value: String::new(),
                    required: false,
                },
            ],
            description: "JSON Lines order exports: buyers become customers, orders purchases.".to_owned(),
            ..PluginInfo::default()
        }
    }

    fn open(
        path: &Path,
        options: &Options,
    ) -> Result<impl Iterator<Item = Result<ImportRecord, RowError>> + 'static, BoxError> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        OrdersReader::new(BufReader::new(file), options)
    }
}

tagd_plugin_api::export_plugin!(OrdersImporter);
