//! A safe Rust API over the Xilinx Runtime (XRT 2.13, `libxrt_coreutil`): devices, xclbins,
//! kernels (compute units) and their registers, buffer objects, and XRT-scheduled runs.
//!
//! Every call goes through a C++ shim (`src/shim.cpp`) that catches XRT's exceptions and hands
//! back their message; bindgen generates the shim's bindings. Every failure is an [`Error`]
//! carrying XRT's own message.
//!
//! Run-time environment: XRT loads its driver library from `$XILINX_XRT/lib`. When
//! `XILINX_XRT` is unset, the crate points it at a directory made by the build script whose
//! `lib/` links to the system's XRT libraries (Debian installs them in the multiarch directory),
//! so nothing needs to be set by hand. `XCL_EMULATION_MODE=noop` makes XRT use its no-op driver:
//! devices, xclbins, kernels, buffers and runs work without hardware, but register access fails
//! and every buffer gets the same fake device address (`0xdeadbeef`).
//!
//! [`xclbin::write_minimal`] writes a small xclbin (no bitstream) that XRT parses and that the
//! no-op driver loads.
#![deny(missing_docs)]

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};
use std::sync::Once;
use std::time::Duration;

#[doc(hidden)]
pub mod test_child;
pub mod xclbin;

/// The raw bindings bindgen generated from `src/wrapper.h`.
#[allow(non_camel_case_types, non_upper_case_globals, non_snake_case, dead_code, missing_docs)]
mod ffi {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

/// Where the build script put a directory whose `lib/` links to the XRT libraries.
const DEFAULT_ROOT: &str = env!("TRIT_XRT_DEFAULT_ROOT");

/// Size of the buffer the shim writes error messages into.
const ERR_LEN: usize = 1024;

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// XRT sees no device at the requested index (no board, or its driver is not loaded).
    #[error(
        "xrt: no device found at index {index}: XRT sees {found} device(s) \
         (no board, or its driver is not loaded; XCL_EMULATION_MODE=noop emulates one without hardware); \
         XRT said: {message}"
    )]
    NoDevice {
        /// Requested index.
        index: u32,
        /// How many devices XRT enumerated.
        found: u32,
        /// XRT's message from the failed open.
        message: String,
    },
    /// XRT raised an error.
    #[error("xrt: {op}: {message}")]
    Xrt {
        /// What was being done.
        op: &'static str,
        /// XRT's message.
        message: String,
    },
    /// A file or byte string is not an xclbin (checked before XRT sees it: XRT crashes on some
    /// malformed files).
    #[error("xrt: {what} is not an xclbin: {reason}")]
    NotXclbin {
        /// The file (or `<bytes>`).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("xrt: cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A caller's argument is invalid (out-of-range buffer access, a name with a NUL, ...).
    #[error("xrt: {0}")]
    InvalidArgument(String),
    /// A run did not finish in time.
    #[error("xrt: the run did not finish within {0:?}")]
    Timeout(Duration),
    /// A run finished in a state other than completed.
    #[error("xrt: the run ended in state {state} ({name})")]
    RunFailed {
        /// XRT's `ert_cmd_state`.
        state: u32,
        /// Its name.
        name: &'static str,
    },
}

/// This crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Points `XILINX_XRT` at the build script's library directory if it is unset. Runs once, before
/// the first XRT call of the process: XRT reads the variable when it first loads its driver, and
/// setting it before any XRT thread exists keeps `setenv` from racing XRT's `getenv`.
fn init_env() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let unset = std::env::var_os("XILINX_XRT").is_none_or(|v| v.is_empty());
        if unset && Path::new(DEFAULT_ROOT).join("lib").is_dir() {
            std::env::set_var("XILINX_XRT", DEFAULT_ROOT);
        }
    });
}

/// Calls a shim function with an error buffer; turns its status into a `Result`.
fn call(op: &'static str, f: impl FnOnce(*mut c_char, usize) -> i32) -> Result<()> {
    let mut err = [0 as c_char; ERR_LEN];
    let rc = f(err.as_mut_ptr(), ERR_LEN);
    if rc == ffi::TRIT_XRT_OK as i32 {
        return Ok(());
    }
    // SAFETY: the shim always NUL-terminates within ERR_LEN (and the buffer starts zeroed).
    let message = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned();
    Err(Error::Xrt { op, message })
}

/// A handle the shim returned through an out-pointer; null means the shim broke its contract.
fn non_null<T>(op: &'static str, p: *mut T) -> Result<NonNull<T>> {
    NonNull::new(p).ok_or_else(|| Error::Xrt { op, message: "the shim returned a null handle".into() })
}

fn c_string(what: &str, s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidArgument(format!("{what} {s:?} contains a NUL byte")))
}

/// An xclbin's UUID.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uuid(pub [u8; 16]);

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// How many devices XRT enumerates. Under `XCL_EMULATION_MODE=noop` this is 0, yet device 0
/// opens: ask [`Device::open`] rather than this count.
pub fn device_count() -> Result<u32> {
    init_env();
    let mut n = 0u32;
    // SAFETY: valid out-pointer and error buffer.
    call("enumerating devices", |e, l| unsafe { ffi::trit_xrt_device_count(&mut n, e, l) })?;
    Ok(n)
}

/// An opened device.
pub struct Device {
    raw: NonNull<ffi::trit_xrt_device>,
    index: u32,
}

// SAFETY: XRT's device object may be used from any thread; `Device` is not `Sync`, so it is used
// from one thread at a time.
unsafe impl Send for Device {}

impl Device {
    /// Opens device `index`; [`Error::NoDevice`] if that fails and XRT enumerates no such device.
    pub fn open(index: u32) -> Result<Device> {
        init_env();
        let mut raw = ptr::null_mut();
        // SAFETY: valid out-pointer and error buffer.
        let opened = call("opening the device", |e, l| unsafe { ffi::trit_xrt_device_open(index, &mut raw, e, l) });
        match opened {
            Ok(()) => Ok(Device { raw: non_null("opening the device", raw)?, index }),
            // The open is tried first because the count is wrong under noop emulation (see
            // `device_count`); a failed open with too few devices is "no device".
            Err(Error::Xrt { op, message }) => match device_count() {
                Ok(found) if index >= found => Err(Error::NoDevice { index, found, message }),
                _ => Err(Error::Xrt { op, message }),
            },
            Err(e) => Err(e),
        }
    }

    /// The index it was opened with.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Loads (programs) an xclbin; returns its UUID, which kernels are opened with.
    pub fn load_xclbin(&self, xclbin: &Xclbin) -> Result<Uuid> {
        let mut uuid = [0u8; 16];
        // SAFETY: live handles, a 16-byte out buffer and an error buffer.
        call("loading the xclbin", |e, l| unsafe {
            ffi::trit_xrt_device_load_xclbin(self.raw.as_ptr(), xclbin.raw.as_ptr(), uuid.as_mut_ptr(), e, l)
        })?;
        Ok(Uuid(uuid))
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        // SAFETY: the handle came from the shim and is freed once.
        unsafe { ffi::trit_xrt_device_free(self.raw.as_ptr()) }
    }
}

/// An xclbin parsed by XRT.
pub struct Xclbin {
    raw: NonNull<ffi::trit_xrt_xclbin>,
    uuid: Uuid,
    kernels: Vec<String>,
}

// SAFETY: as for `Device`.
unsafe impl Send for Xclbin {}

impl Xclbin {
    /// Reads and parses an xclbin file. The container is checked first ([`xclbin::check`]): a file
    /// that is not an xclbin is rejected with [`Error::NotXclbin`] before XRT sees it.
    pub fn from_file(path: &Path) -> Result<Xclbin> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        Self::parse(&path.display().to_string(), &bytes)
    }

    /// Parses an xclbin held in memory (checked first, as [`Xclbin::from_file`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Xclbin> {
        Self::parse("<bytes>", bytes)
    }

    fn parse(what: &str, bytes: &[u8]) -> Result<Xclbin> {
        xclbin::check(bytes).map_err(|reason| Error::NotXclbin { what: what.to_string(), reason })?;
        init_env();
        let op = "parsing the xclbin";
        let mut raw = ptr::null_mut();
        // SAFETY: `bytes` is valid for its length; out-pointer and error buffer are valid.
        call(op, |e, l| unsafe { ffi::trit_xrt_xclbin_from_bytes(bytes.as_ptr(), bytes.len(), &mut raw, e, l) })?;
        // Owned from here on, so an error below frees it.
        let mut x = Xclbin { raw: non_null(op, raw)?, uuid: Uuid([0; 16]), kernels: Vec::new() };
        let mut uuid = [0u8; 16];
        // SAFETY: live handle, 16-byte out buffer.
        call(op, |e, l| unsafe { ffi::trit_xrt_xclbin_uuid(x.raw.as_ptr(), uuid.as_mut_ptr(), e, l) })?;
        x.uuid = Uuid(uuid);
        let mut n = 0usize;
        // SAFETY: live handle, valid out-pointer.
        call(op, |e, l| unsafe { ffi::trit_xrt_xclbin_kernel_count(x.raw.as_ptr(), &mut n, e, l) })?;
        for i in 0..n {
            let mut name = [0 as c_char; 256];
            // SAFETY: live handle; the shim NUL-terminates within the given length.
            call(op, |e, l| unsafe {
                ffi::trit_xrt_xclbin_kernel_name(x.raw.as_ptr(), i, name.as_mut_ptr(), name.len(), e, l)
            })?;
            // SAFETY: NUL-terminated by the shim.
            x.kernels.push(unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned());
        }
        Ok(x)
    }

    /// Its UUID (from the header).
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// The names of its kernels, as XRT reads them from the metadata.
    pub fn kernel_names(&self) -> &[String] {
        &self.kernels
    }
}

impl Drop for Xclbin {
    fn drop(&mut self) {
        // SAFETY: the handle came from the shim and is freed once.
        unsafe { ffi::trit_xrt_xclbin_free(self.raw.as_ptr()) }
    }
}

/// How a kernel's compute units are opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Shared with other processes; XRT forbids register access.
    Shared,
    /// Owned by this process; required for [`Kernel::read_register`] and [`Kernel::write_register`].
    Exclusive,
}

/// A memory bank group, as XRT numbers it (from [`Kernel::group_id`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryGroup(pub i32);

/// A kernel (its compute units) of a loaded xclbin.
pub struct Kernel {
    raw: NonNull<ffi::trit_xrt_kernel>,
    name: String,
}

// SAFETY: as for `Device`.
unsafe impl Send for Kernel {}

impl Kernel {
    /// Opens kernel `name` of the xclbin `xclbin` loaded on `device`.
    pub fn open(device: &Device, xclbin: &Uuid, name: &str, access: Access) -> Result<Kernel> {
        let cname = c_string("kernel name", name)?;
        let mut raw = ptr::null_mut();
        let exclusive = i32::from(access == Access::Exclusive);
        // SAFETY: live device handle, 16-byte uuid, NUL-terminated name, valid out-pointer.
        call("opening the kernel", |e, l| unsafe {
            ffi::trit_xrt_kernel_open(device.raw.as_ptr(), xclbin.0.as_ptr(), cname.as_ptr(), exclusive, &mut raw, e, l)
        })
        .map_err(|err| match err {
            Error::Xrt { op, message } => Error::Xrt { op, message: format!("{name}: {message}") },
            other => other,
        })?;
        Ok(Kernel { raw: non_null("opening the kernel", raw)?, name: name.to_string() })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The memory bank group that argument `arg` is connected to (where its buffers go).
    pub fn group_id(&self, arg: u32) -> Result<MemoryGroup> {
        let mut g = 0i32;
        // SAFETY: live handle, valid out-pointer.
        call("reading an argument's memory group", |e, l| unsafe {
            ffi::trit_xrt_kernel_group_id(self.raw.as_ptr(), arg as i32, &mut g, e, l)
        })?;
        Ok(MemoryGroup(g))
    }

    /// The register offset of argument `arg`.
    pub fn arg_offset(&self, arg: u32) -> Result<u32> {
        let mut o = 0u32;
        // SAFETY: live handle, valid out-pointer.
        call("reading an argument's offset", |e, l| unsafe {
            ffi::trit_xrt_kernel_arg_offset(self.raw.as_ptr(), arg as i32, &mut o, e, l)
        })?;
        Ok(o)
    }

    /// Reads a 32-bit register of the compute unit (needs [`Access::Exclusive`]).
    pub fn read_register(&self, offset: u32) -> Result<u32> {
        let mut v = 0u32;
        // SAFETY: live handle, valid out-pointer.
        call("reading a kernel register", |e, l| unsafe {
            ffi::trit_xrt_kernel_read_register(self.raw.as_ptr(), offset, &mut v, e, l)
        })?;
        Ok(v)
    }

    /// Writes a 32-bit register of the compute unit (needs [`Access::Exclusive`]).
    pub fn write_register(&mut self, offset: u32, value: u32) -> Result<()> {
        // SAFETY: live handle.
        call("writing a kernel register", |e, l| unsafe {
            ffi::trit_xrt_kernel_write_register(self.raw.as_ptr(), offset, value, e, l)
        })
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        // SAFETY: the handle came from the shim and is freed once.
        unsafe { ffi::trit_xrt_kernel_free(self.raw.as_ptr()) }
    }
}

/// Direction of a [`Bo::sync`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncDirection {
    /// Host buffer to device memory (after writing).
    ToDevice,
    /// Device memory to host buffer (before reading).
    FromDevice,
}

/// A buffer object: device memory with a host-side copy. [`Bo::write`] and [`Bo::read`] touch the
/// host copy; [`Bo::sync`] moves bytes between it and the device.
pub struct Bo {
    raw: NonNull<ffi::trit_xrt_bo>,
    size: usize,
    address: u64,
}

// SAFETY: as for `Device`.
unsafe impl Send for Bo {}

impl Bo {
    /// Allocates `size` bytes (> 0) in memory group `group` of `device`.
    pub fn alloc(device: &Device, size: usize, group: MemoryGroup) -> Result<Bo> {
        if size == 0 {
            return Err(Error::InvalidArgument("cannot allocate a buffer of 0 bytes".into()));
        }
        let op = "allocating a buffer";
        let mut raw = ptr::null_mut();
        // SAFETY: live device handle, valid out-pointer.
        call(op, |e, l| unsafe { ffi::trit_xrt_bo_alloc(device.raw.as_ptr(), size, group.0, &mut raw, e, l) })
            .map_err(|err| match err {
                Error::Xrt { op, message } => {
                    Error::Xrt { op, message: format!("{size} bytes in group {}: {message}", group.0) }
                }
                other => other,
            })?;
        let mut bo = Bo { raw: non_null(op, raw)?, size, address: 0 };
        // SAFETY: live handle, valid out-pointer.
        call(op, |e, l| unsafe { ffi::trit_xrt_bo_address(bo.raw.as_ptr(), &mut bo.address, e, l) })?;
        Ok(bo)
    }

    /// Its size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Its device address (what the kernel is given).
    pub fn address(&self) -> u64 {
        self.address
    }

    fn check_range(&self, what: &str, offset: usize, len: usize) -> Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(Error::InvalidArgument(format!(
                "{what} of {len} bytes at offset {offset} is outside the {}-byte buffer at {:#x}",
                self.size, self.address
            )));
        }
        Ok(())
    }

    /// Copies `data` into the host copy at `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        self.check_range("write", offset, data.len())?;
        // SAFETY: live handle; `data` is valid for its length, which fits the buffer.
        call("writing a buffer", |e, l| unsafe {
            ffi::trit_xrt_bo_write(self.raw.as_ptr(), data.as_ptr().cast(), data.len(), offset, e, l)
        })
    }

    /// Copies the host copy at `offset` into `out`.
    pub fn read(&self, offset: usize, out: &mut [u8]) -> Result<()> {
        self.check_range("read", offset, out.len())?;
        // SAFETY: live handle; `out` is valid for its length, which fits the buffer.
        call("reading a buffer", |e, l| unsafe {
            ffi::trit_xrt_bo_read(self.raw.as_ptr(), out.as_mut_ptr().cast(), out.len(), offset, e, l)
        })
    }

    /// Moves `len` bytes at `offset` between the host copy and the device.
    pub fn sync(&mut self, dir: SyncDirection, offset: usize, len: usize) -> Result<()> {
        self.check_range("sync", offset, len)?;
        let to_device = i32::from(dir == SyncDirection::ToDevice);
        // SAFETY: live handle; the range fits the buffer.
        call("syncing a buffer", |e, l| unsafe {
            ffi::trit_xrt_bo_sync(self.raw.as_ptr(), to_device, len, offset, e, l)
        })
    }
}

impl Drop for Bo {
    fn drop(&mut self) {
        // SAFETY: the handle came from the shim and is freed once.
        unsafe { ffi::trit_xrt_bo_free(self.raw.as_ptr()) }
    }
}

/// One execution of a kernel, scheduled by XRT (arguments set through XRT, which writes the
/// registers and `ap_start`, and detects `ap_done` itself).
pub struct Run {
    raw: NonNull<ffi::trit_xrt_run>,
}

// SAFETY: as for `Device`.
unsafe impl Send for Run {}

/// Name of an `ert_cmd_state`.
fn state_name(state: u32) -> &'static str {
    use ffi::ert_cmd_state as s;
    match state {
        s::ERT_CMD_STATE_NEW => "new",
        s::ERT_CMD_STATE_QUEUED => "queued",
        s::ERT_CMD_STATE_RUNNING => "running",
        s::ERT_CMD_STATE_COMPLETED => "completed",
        s::ERT_CMD_STATE_ERROR => "error",
        s::ERT_CMD_STATE_ABORT => "abort",
        s::ERT_CMD_STATE_SUBMITTED => "submitted",
        s::ERT_CMD_STATE_TIMEOUT => "timeout",
        s::ERT_CMD_STATE_NORESPONSE => "no response",
        _ => "unknown",
    }
}

impl Run {
    /// A run of `kernel`.
    pub fn new(kernel: &Kernel) -> Result<Run> {
        let mut raw = ptr::null_mut();
        // SAFETY: live kernel handle, valid out-pointer.
        call("creating a run", |e, l| unsafe { ffi::trit_xrt_run_open(kernel.raw.as_ptr(), &mut raw, e, l) })?;
        Ok(Run { raw: non_null("creating a run", raw)? })
    }

    /// Sets argument `arg` to a buffer (its device address).
    pub fn set_arg_bo(&mut self, arg: u32, bo: &Bo) -> Result<()> {
        // SAFETY: live handles.
        call("setting a run argument", |e, l| unsafe {
            ffi::trit_xrt_run_set_arg_bo(self.raw.as_ptr(), arg as i32, bo.raw.as_ptr(), e, l)
        })
    }

    /// Starts it.
    pub fn start(&mut self) -> Result<()> {
        // SAFETY: live handle.
        call("starting a run", |e, l| unsafe { ffi::trit_xrt_run_start(self.raw.as_ptr(), e, l) })
    }

    /// Waits until it completes: [`Error::Timeout`] after `timeout` (at least 1 ms: XRT takes 0 as
    /// "forever"), [`Error::RunFailed`] if it ends in another state.
    pub fn wait(&mut self, timeout: Duration) -> Result<()> {
        let ms = timeout.as_millis().clamp(1, u32::MAX as u128) as u32;
        let mut state = 0u32;
        // SAFETY: live handle, valid out-pointer.
        call("waiting for a run", |e, l| unsafe { ffi::trit_xrt_run_wait(self.raw.as_ptr(), ms, &mut state, e, l) })?;
        match state {
            ffi::ert_cmd_state::ERT_CMD_STATE_COMPLETED => Ok(()),
            ffi::ert_cmd_state::ERT_CMD_STATE_TIMEOUT => Err(Error::Timeout(timeout)),
            _ => Err(Error::RunFailed { state, name: state_name(state) }),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        // SAFETY: the handle came from the shim and is freed once.
        unsafe { ffi::trit_xrt_run_free(self.raw.as_ptr()) }
    }
}
