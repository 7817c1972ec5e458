//! The C ABI: one exported symbol returning a `#[repr(C)]` table of functions.
//!
//! Versioning: `abi_version` is the table's first field forever, so any host can
//! read it before trusting the rest. The host accepts only its own version.
//! Appending a function at the end is compatible (the host checks `struct_size`);
//! changing, removing or reordering anything bumps [`ABI_VERSION`].

use std::ffi::c_void;

/// The ABI this crate speaks.
pub const ABI_VERSION: u32 = 1;

/// The one symbol a plugin exports (a C string for `libloading`).
pub const ENTRY_SYMBOL: &[u8] = b"tagd_plugin_entry\0";

/// Its type: returns a pointer to a table that lives as long as the library.
pub type EntryFn = unsafe extern "C" fn() -> *const PluginVTable;

/// The call succeeded; an out-buffer, if any, was filled.
pub const STATUS_OK: i32 = 0;
/// `next_batch`: the source is exhausted. `last_error`: there is no error. No buffer was filled.
pub const STATUS_END: i32 = 1;
/// The call failed; `last_error` holds the message.
pub const STATUS_ERROR: i32 = -1;

/// Bytes allocated by the plugin. The host copies them out and hands the
/// buffer back to `free_buffer`; the plugin's allocator frees it.
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    pub ptr: *mut u8,
    pub len: usize,
    pub cap: usize,
}

impl Buffer {
    /// No allocation; safe to pass to `free_buffer`.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }
}

/// `info(out)`: writes a prost-encoded [`crate::PluginInfo`].
pub type InfoFn = unsafe extern "C" fn(out: *mut Buffer) -> i32;
/// `open(path, path_len, options, options_len, handle_out)`: `path` is the
/// source's bytes (a Unix path, not NUL-terminated), `options` a prost-encoded
/// [`crate::pb::PluginOptions`]. Both are borrowed for the call only.
pub type OpenFn = unsafe extern "C" fn(
    path: *const u8,
    path_len: usize,
    options: *const u8,
    options_len: usize,
    handle_out: *mut *mut c_void,
) -> i32;
/// `next_batch(handle, max_records, out)`: writes a prost-encoded
/// [`crate::RecordBatch`] of at most `max_records` entries (records plus row
/// errors), or returns [`STATUS_END`].
pub type NextBatchFn =
    unsafe extern "C" fn(handle: *mut c_void, max_records: u32, out: *mut Buffer) -> i32;
/// `close(handle)`: frees the session; the handle is dead afterwards.
pub type CloseFn = unsafe extern "C" fn(handle: *mut c_void);
/// `last_error(out)`: the calling thread's last error message as UTF-8, or [`STATUS_END`].
pub type LastErrorFn = unsafe extern "C" fn(out: *mut Buffer) -> i32;
/// `free_buffer(buffer)`: releases a buffer this plugin filled.
pub type FreeBufferFn = unsafe extern "C" fn(buffer: Buffer);

/// The table behind [`ENTRY_SYMBOL`]. Function pointers are `Option` so a
/// malformed table reads as `None` rather than undefined behaviour.
#[repr(C)]
#[derive(Debug)]
pub struct PluginVTable {
    pub abi_version: u32,
    /// `size_of::<PluginVTable>()` as the plugin was compiled.
    pub struct_size: u32,
    pub info: Option<InfoFn>,
    pub open: Option<OpenFn>,
    pub next_batch: Option<NextBatchFn>,
    pub close: Option<CloseFn>,
    pub last_error: Option<LastErrorFn>,
    pub free_buffer: Option<FreeBufferFn>,
}
