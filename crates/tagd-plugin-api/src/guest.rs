//! The plugin side: the [`Importer`] trait, the `extern "C"` glue that turns it
//! into a [`PluginVTable`], and [`export_plugin!`].
//!
//! Every entry point runs inside `catch_unwind`: a panic becomes
//! [`STATUS_ERROR`] with the panic message as the last error, never an unwind
//! across the C boundary (which aborts since Rust 1.81).
#![expect(
    unsafe_code,
    reason = "the C ABI glue dereferences pointers handed over by the host"
)]

use std::{
    any::Any,
    cell::RefCell,
    ffi::{OsStr, c_void},
    os::unix::ffi::OsStrExt,
    panic::{AssertUnwindSafe, catch_unwind},
    path::Path,
};

use prost::Message;

use crate::{
    Options,
    abi::{ABI_VERSION, Buffer, PluginVTable, STATUS_END, STATUS_ERROR, STATUS_OK},
    pb::{ImportRecord, PluginInfo, PluginOptions, RecordBatch, RowError},
};

/// Any error a plugin's `open` may return; its `Display` is what the user sees.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A batch stops growing past this many encoded bytes, whatever `max_records`
/// says, so one frame stays small even when single records are huge.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// What a plugin implements: metadata, and a source turned into an iterator.
pub trait Importer {
    /// Name, version, channel, file types and options. `abi_version` is filled in by the glue.
    fn info() -> PluginInfo;

    /// Opens `path` and returns its records lazily (constant memory for big files).
    /// A row the plugin cannot parse is an `Err(RowError)` item, not the end of the import;
    /// an `Err` from `open` itself fails the import (unreadable file, bad options).
    fn open(
        path: &Path,
        options: &Options,
    ) -> Result<impl Iterator<Item = Result<ImportRecord, RowError>> + 'static, BoxError>;
}

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_last_error(message: String) {
    LAST_ERROR.with(|slot| *slot.borrow_mut() = Some(message));
}

/// The text of a panic payload (a `&str` or `String` for `panic!` with a message).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs `body`, turning an `Err` or a panic into [`STATUS_ERROR`] with a last error.
fn guarded(body: impl FnOnce() -> Result<i32, String>) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(status)) => status,
        Ok(Err(message)) => {
            set_last_error(message);
            STATUS_ERROR
        }
        Err(payload) => {
            set_last_error(format!(
                "plugin panicked: {}",
                panic_message(payload.as_ref())
            ));
            STATUS_ERROR
        }
    }
}

fn into_buffer(bytes: Vec<u8>) -> Buffer {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    Buffer {
        ptr: bytes.as_mut_ptr(),
        len: bytes.len(),
        cap: bytes.capacity(),
    }
}

/// One open source: the plugin's iterator behind the opaque handle.
struct Session {
    records: Box<dyn Iterator<Item = Result<ImportRecord, RowError>>>,
    /// Set once the iterator panicked: its state may be broken, so it is not polled again.
    poisoned: bool,
}

/// The table for importer `T`, speaking [`ABI_VERSION`].
pub const fn vtable<T: Importer>() -> PluginVTable {
    vtable_claiming::<T>(ABI_VERSION)
}

/// The table for `T` claiming another ABI version; only for the host's refusal tests.
#[doc(hidden)]
pub const fn vtable_claiming<T: Importer>(abi_version: u32) -> PluginVTable {
    PluginVTable {
        abi_version,
        #[expect(
            clippy::cast_possible_truncation,
            reason = "the table is a few dozen bytes"
        )]
        struct_size: size_of::<PluginVTable>() as u32,
        info: Some(info::<T>),
        open: Some(open::<T>),
        next_batch: Some(next_batch),
        close: Some(close),
        last_error: Some(last_error),
        free_buffer: Some(free_buffer),
    }
}

unsafe extern "C" fn info<T: Importer>(out: *mut Buffer) -> i32 {
    guarded(|| {
        if out.is_null() {
            return Err("info: null out-buffer".to_owned());
        }
        let mut info = T::info();
        info.abi_version = ABI_VERSION;
        // SAFETY: `out` is non-null and the host passes a writable `Buffer`.
        unsafe { out.write(into_buffer(info.encode_to_vec())) };
        Ok(STATUS_OK)
    })
}

unsafe extern "C" fn open<T: Importer>(
    path: *const u8,
    path_len: usize,
    options: *const u8,
    options_len: usize,
    handle_out: *mut *mut c_void,
) -> i32 {
    guarded(|| {
        if path.is_null() || handle_out.is_null() || (options.is_null() && options_len > 0) {
            return Err("open: null argument".to_owned());
        }
        // SAFETY: the host passes `path_len` readable bytes, borrowed for this call.
        let path = Path::new(OsStr::from_bytes(unsafe {
            std::slice::from_raw_parts(path, path_len)
        }));
        let options = if options_len == 0 {
            PluginOptions::default()
        } else {
            // SAFETY: as above, `options_len` readable bytes for this call.
            let bytes = unsafe { std::slice::from_raw_parts(options, options_len) };
            PluginOptions::decode(bytes).map_err(|e| format!("open: undecodable options: {e}"))?
        };
        let records = T::open(path, &Options::new(options.values)).map_err(|e| e.to_string())?;
        let session = Box::new(Session {
            records: Box::new(records),
            poisoned: false,
        });
        // SAFETY: `handle_out` is non-null and writable; the host owns the handle until `close`.
        unsafe { handle_out.write(Box::into_raw(session).cast()) };
        Ok(STATUS_OK)
    })
}

unsafe extern "C" fn next_batch(handle: *mut c_void, max_records: u32, out: *mut Buffer) -> i32 {
    if handle.is_null() || out.is_null() {
        set_last_error("next_batch: null argument".to_owned());
        return STATUS_ERROR;
    }
    // SAFETY: a non-null handle came from `open` and is not closed yet; the host calls
    // from one thread at a time, so this is the only reference.
    let session = unsafe { &mut *handle.cast::<Session>() };
    if session.poisoned {
        set_last_error("next_batch: the plugin panicked earlier in this import".to_owned());
        return STATUS_ERROR;
    }
    let status = guarded(|| {
        let mut batch = RecordBatch::default();
        let mut bytes = 0;
        let max = usize::try_from(max_records.max(1)).unwrap_or(usize::MAX);
        while batch.records.len() + batch.errors.len() < max && bytes < MAX_BATCH_BYTES {
            match session.records.next() {
                None => break,
                Some(Ok(record)) => {
                    bytes += record.encoded_len();
                    batch.records.push(record);
                }
                Some(Err(error)) => {
                    bytes += error.encoded_len();
                    batch.errors.push(error);
                }
            }
        }
        if batch.records.is_empty() && batch.errors.is_empty() {
            return Ok(STATUS_END);
        }
        // SAFETY: `out` is non-null and writable.
        unsafe { out.write(into_buffer(batch.encode_to_vec())) };
        Ok(STATUS_OK)
    });
    if status == STATUS_ERROR {
        session.poisoned = true;
    }
    status
}

unsafe extern "C" fn close(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the handle came from `Box::into_raw` in `open` and the host closes it once.
    let session = unsafe { Box::from_raw(handle.cast::<Session>()) };
    // A panicking Drop of the plugin's iterator must not unwind into the host.
    let _ = guarded(move || {
        drop(session);
        Ok(STATUS_OK)
    });
}

unsafe extern "C" fn last_error(out: *mut Buffer) -> i32 {
    if out.is_null() {
        return STATUS_ERROR;
    }
    match LAST_ERROR.with(|slot| slot.borrow_mut().take()) {
        None => STATUS_END,
        Some(message) => {
            // SAFETY: `out` is non-null and writable.
            unsafe { out.write(into_buffer(message.into_bytes())) };
            STATUS_OK
        }
    }
}

unsafe extern "C" fn free_buffer(buffer: Buffer) {
    if buffer.ptr.is_null() {
        return;
    }
    // SAFETY: a non-null buffer was made by `into_buffer` from a Vec of this allocator,
    // with its pointer, length and capacity unchanged.
    drop(unsafe { Vec::from_raw_parts(buffer.ptr, buffer.len, buffer.cap) });
}

/// Exports importer `$importer` as a plugin: defines the `tagd_plugin_entry`
/// symbol returning its table. Use once, at the root of a `cdylib` crate.
#[macro_export]
macro_rules! export_plugin {
    ($importer:ty) => {
        $crate::export_plugin!(@claiming $importer, $crate::abi::ABI_VERSION);
    };
    (@claiming $importer:ty, $abi_version:expr) => {
        /// The plugin's entry point, found by the host with `dlsym`.
        #[expect(unsafe_code, reason = "the entry symbol must be unmangled for dlsym")]
        #[unsafe(no_mangle)]
        pub extern "C" fn tagd_plugin_entry() -> *const $crate::abi::PluginVTable {
            static VTABLE: $crate::abi::PluginVTable =
                $crate::guest::vtable_claiming::<$importer>($abi_version);
            &VTABLE
        }
    };
}
