//! Tagd importer plugin for vCard files (2.1, 3.0 and 4.0, RFC 6350): folded
//! lines, quoted-printable with CHARSET, several TEL/EMAIL, ORG, ADR, BDAY,
//! GENDER, and CATEGORIES as tags. Each card is one record whose position is
//! the line number of its `BEGIN:VCARD`.

mod card;
mod content;
mod reader;

use std::{fs::File, io::BufReader, path::Path};

use tagd_plugin_api::{
    BoxError, ImportRecord, Importer, OptionSpec, Options, PluginInfo, RowError,
};

pub use reader::VcardReader;

pub struct VcardImporter;

fn option(name: &str, description: &str, default_value: &str) -> OptionSpec {
    OptionSpec {
        name: name.to_owned(),
        description: description.to_owned(),
        default_value: default_value.to_owned(),
        required: false,
    }
}

impl Importer for VcardImporter {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "vcard".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channel: "vcard".to_owned(),
            file_types: vec!["vcf".to_owned(), "vcard".to_owned()],
            options: vec![
                option(
                    "encoding",
                    "file encoding where a property has no CHARSET: utf-8, gbk or gb18030",
                    "utf-8",
                ),
                option(
                    "tag_category",
                    "tag category for CATEGORIES values; empty means the import's default",
                    "",
                ),
            ],
            description:
                "vCard 2.1/3.0/4.0 contacts; UID is the external id, CATEGORIES become tags."
                    .to_owned(),
            ..PluginInfo::default()
        }
    }

    fn open(
        path: &Path,
        options: &Options,
    ) -> Result<impl Iterator<Item = Result<ImportRecord, RowError>> + 'static, BoxError> {
        let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        VcardReader::new(BufReader::new(file), options)
    }
}

tagd_plugin_api::export_plugin!(VcardImporter);
