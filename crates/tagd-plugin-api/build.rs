//! Compiles `proto/tagd/plugin/v1/*.proto` with protox (no system protoc) into prost messages.

use std::{env, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files =
        ["records.proto", "worker.proto"].map(|name| proto_root.join("tagd/plugin/v1").join(name));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    prost_build::Config::new()
        .out_dir(&out_dir)
        // Options keep their order so a plugin sees them deterministically.
        .btree_map(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
