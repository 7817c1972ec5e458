//! Test-only plugin whose `mode` option picks a misbehaviour, so the host's
//! supervisor can be tested against each: `ok` (default), `panic`,
//! `panic-in-open`, `open-error`, `segfault`, `abort`, `hang`, `leak-memory`,
//! `noisy` (writes to stdout, which must not corrupt the frame stream).
//! Each misbehaviour happens after one good record, i.e. mid-import.

use std::path::Path;

use tagd_plugin_api::{
    BoxError, Customer, ImportRecord, Importer, OptionSpec, Options, PluginInfo, RowError,
};

pub struct CrashImporter;

/// A stop to `leak-memory` should the host fail to apply its limit, so a
/// broken test cannot take the machine's memory.
const LEAK_CAP_BYTES: usize = 4 << 30;

fn record(position: u64) -> ImportRecord {
    ImportRecord {
        position,
        external_id: format!("test-{position}"),
        customer: Some(Customer {
            name: format!("Customer {position}"),
            ..Customer::default()
        }),
        ..ImportRecord::default()
    }
}

#[expect(unsafe_code, reason = "the `segfault` mode must fault for real")]
fn segfault() {
    // SAFETY: not safe at all, on purpose: address 16 is never mapped, so this
    // write faults and the worker dies from SIGSEGV, which is what the test wants.
    unsafe { std::ptr::without_provenance_mut::<u8>(16).write_volatile(1) };
}

fn misbehave(mode: &str) -> Result<ImportRecord, RowError> {
    match mode {
        "panic" => panic!("boom: the test plugin panics on purpose"),
        "segfault" => segfault(),
        "abort" => std::process::abort(),
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        "leak-memory" => {
            let mut leaked = 0;
            while leaked < LEAK_CAP_BYTES {
                // Non-zero bytes so the pages are really touched.
                std::mem::forget(vec![1_u8; 64 << 20]);
                leaked += 64 << 20;
            }
        }
        _ => {}
    }
    Err(RowError::new(
        2,
        "",
        format!("mode `{mode}` did not misbehave"),
        "",
    ))
}

impl Importer for CrashImporter {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "test-crash".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            channel: "test".to_owned(),
            file_types: vec!["txt".to_owned()],
            options: vec![
                OptionSpec {
                    name: "mode".to_owned(),
                    description: "ok, panic, panic-in-open, open-error, segfault, abort, hang, leak-memory, noisy".to_owned(),
                    default_value: "ok".to_owned(),
                    required: false,
                },
                OptionSpec {
                    name: "count".to_owned(),
                    description: "records produced in `ok` and `noisy` modes".to_owned(),
                    default_value: "3".to_owned(),
                    required: false,
                },
            ],
            description: "Misbehaves on request, for the host's tests.".to_owned(),
            ..PluginInfo::default()
        }
    }

    fn open(
        _path: &Path,
        options: &Options,
    ) -> Result<impl Iterator<Item = Result<ImportRecord, RowError>> + 'static, BoxError> {
        let mode = options.get_or("mode", "ok").to_owned();
        let count = options.number("count", 3)?;
        match mode.as_str() {
            "panic-in-open" => panic!("boom in open"),
            "open-error" => return Err("the test plugin refuses to open".into()),
            _ => {}
        }
        let good = matches!(mode.as_str(), "ok" | "noisy");
        let mut position = 0;
        Ok(std::iter::from_fn(move || {
            position += 1;
            if mode == "noisy" {
                #[expect(
                    clippy::print_stdout,
                    reason = "the noise on stdout is the point of this mode"
                )]
                {
                    println!("noise on stdout from record {position}");
                }
            }
            match (good, position) {
                (true, p) if p <= count => Some(Ok(record(p))),
                (true, _) => None,
                (false, 1) => Some(Ok(record(1))),
                (false, 2) => Some(misbehave(&mode)),
                (false, _) => None,
            }
        }))
    }
}

tagd_plugin_api::export_plugin!(CrashImporter);
