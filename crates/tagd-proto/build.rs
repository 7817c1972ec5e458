//! Compiles `proto/tagd/v1/*.proto` with protox (no system protoc) into prost and tonic code.

use std::{env, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "tags.proto",
        "customers.proto",
        "tagging.proto",
        "jobs.proto",
        "imports.proto",
        "dedupe.proto",
        "purchases.proto",
        "interactions.proto",
        "metrics.proto",
        "cleanse.proto",
        "segments.proto",
        "rules.proto",
    ]
    .map(|name| proto_root.join("tagd/v1").join(name));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&proto_root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    // Reflection needs the encoded set; compile_fds ignores file_descriptor_set_path.
    fs::write(
        out_dir.join("tagd_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
