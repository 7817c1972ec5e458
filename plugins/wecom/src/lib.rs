//! Tagd importer plugin for WeCom (企业微信) external contacts: a file of
//! `externalcontact/get` responses (a JSON array, or JSON Lines with one
//! response per line) or of `batch/get_by_user` items. Each contact is one
//! record: `external_userid` is the external id, followers' tags become tags
//! (`group_name` → category), each follower's add becomes an interaction.

mod contact;
mod elements;
mod reader;

use std::{fs::File, io::BufReader, path::Path};

use tagd_plugin_api::{
    BoxError, ImportRecord, Importer, OptionSpec, Options, PluginInfo, RowError,
};

pub use reader::WecomReader;

pub struct WecomImporter;

fn option(name: &str, description: &str, default_value: &str) -> OptionSpec {
    OptionSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        default_value: default_value.to_owned(),
        required: false,
    }
}

impl Importer for WecomImporter {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "wecom".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channel: "wecom".to_owned(),
            file_types: vec!["json".to_owned(), "jsonl".to_owned(), "ndjson".to_owned()],
            options: vec![
                option(
                    "tag_library",
                    "path of a get_corp_tag_list response, to name the tag ids of batch/get_by_user items",
                    "",
                ),
                option("personal_tags", "import staff members' personal tags (type 2) too: true or false", "true"),
                option("source_tags", "add add_way and state as tags (categories 添加方式 and 渠道活码): true or false", "true"),
            ],
            description: "WeCom external contacts (externalcontact/get or batch/get_by_user) as a JSON array or JSON Lines.".to_owned(),
            ..PluginInfo::default()
        }
    }

    fn open(
        path: &Path,
        options: &Options,
    ) -> Result<impl Iterator<Item = Result<ImportRecord, RowError>> + 'static, BoxError> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        WecomReader::new(BufReader::new(file), options)
    }
}

tagd_plugin_api::export_plugin!(WecomImporter);
