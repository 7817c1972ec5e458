//! A stand-alone import worker, for the supervisor's tests and for running a
//! plugin by hand: `tagd-plugin-worker PLUGIN.so SOURCE [key=value …]` or
//! `tagd-plugin-worker --probe PLUGIN.so`. Frames go to stdout (see
//! `plugins/README.md`); the server runs the same code as `tagd import-worker`.

use std::{collections::BTreeMap, path::PathBuf, process::ExitCode};

use tagd_plugin_api::host::{frame_output, run_probe, run_worker};

const USAGE: &str =
    "usage: tagd-plugin-worker PLUGIN SOURCE [key=value ...] | tagd-plugin-worker --probe PLUGIN";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = match frame_output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("tagd-plugin-worker: cannot take stdout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.as_slice() {
        [flag, plugin] if flag == "--probe" => run_probe(&PathBuf::from(plugin), out).map(|_| ()),
        [plugin, source, pairs @ ..] => {
            let mut options = BTreeMap::new();
            for pair in pairs {
                let Some((key, value)) = pair.split_once('=') else {
                    eprintln!("tagd-plugin-worker: option `{pair}` is not key=value\n{USAGE}");
                    return ExitCode::from(2);
                };
                options.insert(key.to_owned(), value.to_owned());
            }
            run_worker(
                &PathBuf::from(plugin),
                &PathBuf::from(source),
                &options,
                out,
            )
            .map(|_| ())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tagd-plugin-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
