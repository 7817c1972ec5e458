//! The `tagd.v1` wire API: messages and service stubs generated from `proto/`.
//!
//! Nothing but generated code lives here; conversions to domain types are in `tagd-grpc`.

#[expect(
    clippy::all,
    clippy::pedantic,
    unused_qualifications,
    reason = "generated code"
)]
pub mod v1 {
    tonic::include_proto!("tagd.v1");
}

/// The encoded file descriptor set of `tagd.v1`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tagd_descriptor.bin"));
