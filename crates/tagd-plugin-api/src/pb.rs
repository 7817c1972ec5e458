//! Generated prost messages of `tagd.plugin.v1` (records, plugin metadata, worker frames).

include!(concat!(env!("OUT_DIR"), "/tagd.plugin.v1.rs"));
