//! The frame protocol on the worker's stdout: each frame is a prost-encoded
//! [`WorkerFrame`] prefixed by its length as a protobuf varint.

use std::io::Write;

use prost::Message;

use crate::pb::WorkerFrame;

/// Writes one frame and flushes, so the supervisor sees progress at once.
pub fn write_frame(out: &mut impl Write, frame: &WorkerFrame) -> std::io::Result<()> {
    out.write_all(&frame.encode_length_delimited_to_vec())?;
    out.flush()
}

/// Decodes a varint length prefix from its first bytes: `Ok(None)` while
/// incomplete, `Err` when longer than 10 bytes.
pub fn decode_len(prefix: &[u8]) -> Result<Option<u64>, String> {
    let mut value: u64 = 0;
    for (i, byte) in prefix.iter().enumerate() {
        if i >= 10 {
            return Err("frame length prefix longer than 10 bytes".to_owned());
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some(value));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb::{Done, worker_frame::Frame};

    #[test]
    fn prefix_round_trip() {
        let frame = WorkerFrame {
            frame: Some(Frame::Done(Done {
                records: 300,
                row_errors: 1,
            })),
        };
        let mut bytes = Vec::new();
        write_frame(&mut bytes, &frame).unwrap();
        let len = decode_len(&bytes[..1]).unwrap().unwrap();
        assert_eq!(usize::try_from(len).unwrap(), bytes.len() - 1);
        assert_eq!(WorkerFrame::decode(&bytes[1..]).unwrap(), frame);
        assert_eq!(decode_len(&[0x80]).unwrap(), None);
        assert_eq!(decode_len(&[0xac, 0x02]).unwrap(), Some(300));
        assert!(decode_len(&[0xff; 11]).is_err());
    }
}
