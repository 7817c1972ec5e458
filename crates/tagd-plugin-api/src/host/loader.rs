//! Loads a plugin library and checks its table before calling anything else.
//! Only the worker process uses this; loading runs the library's initialisers.
#![expect(
    unsafe_code,
    reason = "loading a library and calling its C functions is unsafe by nature"
)]

use std::{
    collections::BTreeMap,
    ffi::c_void,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

use libloading::Library;
use prost::Message;

use crate::{
    Error,
    abi::{ABI_VERSION, Buffer, ENTRY_SYMBOL, EntryFn, PluginVTable, STATUS_END, STATUS_OK},
    pb::{PluginInfo, PluginOptions, RecordBatch},
};

/// A loaded plugin whose ABI version and table were checked.
#[derive(Debug)]
pub struct Plugin {
    path: PathBuf,
    vtable: *const PluginVTable,
    info: PluginInfo,
    // Last field: dropped after everything that points into it.
    _library: Library,
}

/// The checked function pointers, copied out of the table.
#[derive(Clone, Copy)]
struct Functions {
    open: crate::abi::OpenFn,
    next_batch: crate::abi::NextBatchFn,
    close: crate::abi::CloseFn,
    last_error: crate::abi::LastErrorFn,
    free_buffer: crate::abi::FreeBufferFn,
}

impl Plugin {
    /// Loads `path`, refusing a file that is no library, a library without the
    /// entry symbol, or a plugin of another ABI version (naming both versions).
    pub fn load(path: &Path) -> Result<Self, Error> {
        // SAFETY: loading runs the library's initialisers; that is why only the
        // disposable worker process calls this.
        let library = unsafe { Library::new(path) }.map_err(|e| Error::NotAPlugin {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        // SAFETY: the symbol's type is fixed by the ABI; a library exporting the
        // name with another type is a broken plugin we cannot detect.
        let entry =
            unsafe { library.get::<EntryFn>(ENTRY_SYMBOL) }.map_err(|_| Error::MissingSymbol {
                path: path.to_owned(),
            })?;
        // SAFETY: the entry function takes nothing and returns a pointer to a static table.
        let vtable = unsafe { entry() };
        if vtable.is_null() {
            return Err(bad_table(path, "the entry symbol returned a null table"));
        }
        // SAFETY: non-null; `abi_version` is the first field of every version's table,
        // so it is readable whatever version the plugin speaks.
        let abi_version = unsafe { (*vtable).abi_version };
        if abi_version != ABI_VERSION {
            return Err(Error::AbiMismatch {
                path: path.to_owned(),
                plugin: abi_version,
                host: ABI_VERSION,
            });
        }
        // SAFETY: same version as ours, so the header (two u32) is laid out like ours.
        let struct_size = unsafe { (*vtable).struct_size };
        if (struct_size as usize) < size_of::<PluginVTable>() {
            return Err(bad_table(
                path,
                &format!(
                    "table of {struct_size} bytes, expected at least {}",
                    size_of::<PluginVTable>()
                ),
            ));
        }
        let mut plugin = Self {
            path: path.to_owned(),
            vtable,
            info: PluginInfo::default(),
            _library: library,
        };
        plugin.functions()?;
        plugin.info = plugin.read_info()?;
        if plugin.info.abi_version != ABI_VERSION {
            return Err(Error::AbiMismatch {
                path: path.to_owned(),
                plugin: plugin.info.abi_version,
                host: ABI_VERSION,
            });
        }
        Ok(plugin)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata the plugin reported at load.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    fn table(&self) -> &PluginVTable {
        // SAFETY: checked non-null at load; the table is static in the library, which lives as long as `self`.
        unsafe { &*self.vtable }
    }

    fn functions(&self) -> Result<Functions, Error> {
        let t = self.table();
        match (t.open, t.next_batch, t.close, t.last_error, t.free_buffer) {
            (Some(open), Some(next_batch), Some(close), Some(last_error), Some(free_buffer)) => {
                Ok(Functions {
                    open,
                    next_batch,
                    close,
                    last_error,
                    free_buffer,
                })
            }
            _ => Err(bad_table(&self.path, "a null function pointer")),
        }
    }

    fn read_info(&self) -> Result<PluginInfo, Error> {
        let info_fn = self
            .table()
            .info
            .ok_or_else(|| bad_table(&self.path, "a null `info` pointer"))?;
        let functions = self.functions()?;
        let mut buffer = Buffer::empty();
        // SAFETY: `buffer` is a valid out-parameter for the call.
        let status = unsafe { info_fn(&raw mut buffer) };
        if status != STATUS_OK {
            return Err(self.plugin_error(functions, "info"));
        }
        let bytes = take_buffer(functions, buffer);
        PluginInfo::decode(bytes.as_slice())
            .map_err(|e| bad_table(&self.path, &format!("undecodable plugin info: {e}")))
    }

    /// The plugin's last error message, or a generic one when it has none.
    fn plugin_error(&self, functions: Functions, call: &str) -> Error {
        let mut buffer = Buffer::empty();
        // SAFETY: `buffer` is a valid out-parameter for the call.
        let status = unsafe { (functions.last_error)(&raw mut buffer) };
        let message = if status == STATUS_OK {
            String::from_utf8_lossy(&take_buffer(functions, buffer)).into_owned()
        } else {
            format!("`{call}` failed without an error message")
        };
        Error::Plugin {
            plugin: self.label(),
            message,
        }
    }

    fn label(&self) -> String {
        if self.info.name.is_empty() {
            self.path.display().to_string()
        } else {
            self.info.name.clone()
        }
    }

    /// Opens a source with the given options.
    pub fn open(
        &self,
        source: &Path,
        options: &BTreeMap<String, String>,
    ) -> Result<Session<'_>, Error> {
        let functions = self.functions()?;
        let path = source.as_os_str().as_bytes();
        let options = PluginOptions {
            values: options.clone(),
        }
        .encode_to_vec();
        let mut handle: *mut c_void = std::ptr::null_mut();
        // SAFETY: both slices are valid for the call; `handle` is a valid out-parameter.
        let status = unsafe {
            (functions.open)(
                path.as_ptr(),
                path.len(),
                options.as_ptr(),
                options.len(),
                &raw mut handle,
            )
        };
        if status != STATUS_OK || handle.is_null() {
            return Err(self.plugin_error(functions, "open"));
        }
        Ok(Session {
            plugin: self,
            functions,
            handle,
        })
    }
}

fn bad_table(path: &Path, reason: &str) -> Error {
    Error::BadTable {
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Copies a plugin-filled buffer and gives it back to the plugin to free.
fn take_buffer(functions: Functions, buffer: Buffer) -> Vec<u8> {
    let bytes = if buffer.ptr.is_null() {
        Vec::new()
    } else {
        // SAFETY: the plugin filled `len` initialised bytes at `ptr`.
        unsafe { std::slice::from_raw_parts(buffer.ptr, buffer.len) }.to_vec()
    };
    // SAFETY: the buffer came from this plugin and is freed once, by its allocator.
    unsafe { (functions.free_buffer)(buffer) };
    bytes
}

/// One open source; closed on drop.
#[derive(Debug)]
pub struct Session<'a> {
    plugin: &'a Plugin,
    functions: Functions,
    handle: *mut c_void,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Functions")
    }
}

impl Session<'_> {
    /// The next batch of at most `max_records` records and row errors, `None` at the end.
    pub fn next_batch(&mut self, max_records: u32) -> Result<Option<RecordBatch>, Error> {
        let mut buffer = Buffer::empty();
        // SAFETY: the handle is open (closed only in Drop); `buffer` is a valid out-parameter.
        let status =
            unsafe { (self.functions.next_batch)(self.handle, max_records, &raw mut buffer) };
        match status {
            STATUS_OK => {
                let bytes = take_buffer(self.functions, buffer);
                RecordBatch::decode(bytes.as_slice())
                    .map(Some)
                    .map_err(|e| Error::Plugin {
                        plugin: self.plugin.label(),
                        message: format!("undecodable record batch: {e}"),
                    })
            }
            STATUS_END => Ok(None),
            _ => Err(self.plugin.plugin_error(self.functions, "next_batch")),
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from `open` and is closed exactly once, here.
        unsafe { (self.functions.close)(self.handle) };
    }
}
