//! `XrtDevice`: the kernel on a real board through XRT (the `xrt` crate), behind the [`Device`]
//! trait. Device memory is XRT buffer objects in the memory bank of the kernel's program argument,
//! found again by device address; registers are the compute unit's, opened for exclusive access;
//! `start` and `wait` drive `ap_start` / `ap_done` directly, as the other backends do (XRT's own
//! scheduler is not used: it would consume the clear-on-read `ap_done`).
//!
//! Under `XCL_EMULATION_MODE=noop` (XRT's no-op driver, no hardware) opening works: the device,
//! the xclbin and the kernel. Register access fails (the no-op driver's register calls are stubs)
//! and `alloc` fails (every buffer gets the same unaligned fake address, `0xdeadbeef`), each with
//! a clear error; `host/tests/xrt.rs` checks both.

use crate::device::Device;
use anyhow::{bail, Context, Result};
use hdl::regmap;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Name of the kernel in the xclbin.
pub const KERNEL: &str = "trit_kernel";

/// Alignment of device buffers promised by [`Device::alloc`].
const ALIGN: u64 = 4096;

/// The kernel's arguments as the xclbin declares them: the program address only.
fn kernel_args() -> [xrt::xclbin::Arg<'static>; 1] {
    [xrt::xclbin::Arg { name: "program", offset: regmap::ARG_PROGRAM, kind: xrt::xclbin::ArgKind::Global }]
}

/// Writes a minimal xclbin with the kernel's interface and no bitstream: it loads under XRT's
/// no-op emulation (tests, CI), not on a board, whose xclbin comes from Vitis.
pub fn write_minimal_xclbin(path: &Path) -> Result<()> {
    xrt::xclbin::write_minimal(path, KERNEL, &kernel_args())?;
    Ok(())
}

struct Buffer {
    size: u64,
    bo: xrt::Bo,
}

/// The buffer (by base address) holding `addr .. addr + len`, and the offset of `addr` in it.
fn locate<T>(map: &BTreeMap<u64, T>, size: impl Fn(&T) -> u64, addr: u64, len: u64) -> Option<(u64, u64)> {
    let (&base, b) = map.range(..=addr).next_back()?;
    let end = addr.checked_add(len)?;
    (end <= base + size(b)).then_some((base, addr - base))
}

/// A board running the kernel.
pub struct XrtDevice {
    // Fields drop in order: buffers and the kernel's context go before the device closes.
    buffers: BTreeMap<u64, Buffer>,
    kernel: xrt::Kernel,
    device: xrt::Device,
    index: u32,
    group: xrt::MemoryGroup,
    magic_checked: bool,
}

impl XrtDevice {
    /// Opens device `index`, loads the xclbin at `xclbin_path` and opens its kernel for exclusive
    /// access. Fails clearly when there is no device, the file is not an xclbin, or the xclbin
    /// does not hold the kernel with the register map of `hdl::regmap`.
    pub fn open(index: u32, xclbin_path: &Path) -> Result<XrtDevice> {
        let name = format!("xrt:{index}");
        let xclbin = xrt::Xclbin::from_file(xclbin_path).with_context(|| format!("{name}: reading the xclbin"))?;
        if !xclbin.kernel_names().iter().any(|k| k == KERNEL) {
            bail!(
                "{name}: {} has no kernel {KERNEL} (it has: {})",
                xclbin_path.display(),
                xclbin.kernel_names().join(", ")
            );
        }
        let device = xrt::Device::open(index).with_context(|| format!("{name}: opening the device"))?;
        let uuid = device.load_xclbin(&xclbin).with_context(|| format!("{name}: loading {}", xclbin_path.display()))?;
        let kernel = xrt::Kernel::open(&device, &uuid, KERNEL, xrt::Access::Exclusive)
            .with_context(|| format!("{name}: opening kernel {KERNEL}"))?;
        // The runtime writes the program address to ARG_PROGRAM itself; the xclbin must agree.
        let offset = kernel.arg_offset(0).with_context(|| format!("{name}: reading the kernel's arguments"))?;
        if offset != regmap::ARG_PROGRAM {
            bail!(
                "{name}: {} puts the kernel's argument 0 at {offset:#x}, the register map at {:#x}",
                xclbin_path.display(),
                regmap::ARG_PROGRAM
            );
        }
        // Every buffer goes to the bank of the program argument (one AXI master for now).
        let group =
            kernel.group_id(0).with_context(|| format!("{name}: reading the program argument's memory bank"))?;
        Ok(XrtDevice { buffers: BTreeMap::new(), kernel, device, index, group, magic_checked: false })
    }

    fn buffer(&mut self, addr: u64, len: usize) -> Result<(&mut xrt::Bo, usize)> {
        let Some((base, offset)) = locate(&self.buffers, |b| b.size, addr, len as u64) else {
            bail!("{}: device address range {addr:#x}+{len} is outside allocated memory", self.name());
        };
        let b = self.buffers.get_mut(&base).expect("located buffer exists");
        Ok((&mut b.bo, offset as usize))
    }
}

impl Device for XrtDevice {
    fn name(&self) -> String {
        format!("xrt:{}", self.index)
    }

    fn read_reg(&mut self, offset: u32) -> Result<u32> {
        self.kernel.read_register(offset).with_context(|| format!("{}: reading register {offset:#x}", self.name()))
    }

    fn write_reg(&mut self, offset: u32, value: u32) -> Result<()> {
        self.kernel
            .write_register(offset, value)
            .with_context(|| format!("{}: writing {value:#x} to register {offset:#x}", self.name()))
    }

    fn alloc(&mut self, bytes: u64) -> Result<u64> {
        let size = bytes.max(1).div_ceil(ALIGN) * ALIGN;
        let bo = xrt::Bo::alloc(&self.device, size as usize, self.group)
            .with_context(|| format!("{}: allocating {bytes} bytes of device memory", self.name()))?;
        let addr = bo.address();
        // XRT's buffers are page aligned on boards; the no-op emulation hands out 0xdeadbeef.
        if addr % ALIGN != 0 {
            bail!(
                "{}: XRT gave a buffer the device address {addr:#x}, which is not {ALIGN}-byte aligned \
                 (XCL_EMULATION_MODE=noop gives every buffer the fake address 0xdeadbeef)",
                self.name()
            );
        }
        let overlaps =
            self.buffers.range(..addr.saturating_add(size)).next_back().is_some_and(|(&b, buf)| b + buf.size > addr);
        if overlaps {
            bail!("{}: XRT gave a buffer the device address {addr:#x}, which overlaps another buffer", self.name());
        }
        self.buffers.insert(addr, Buffer { size, bo });
        Ok(addr)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<()> {
        let name = self.name();
        let (bo, offset) = self.buffer(addr, data.len())?;
        bo.write(offset, data).with_context(|| format!("{name}: writing {} bytes at {addr:#x}", data.len()))?;
        bo.sync(xrt::SyncDirection::ToDevice, offset, data.len())
            .with_context(|| format!("{name}: copying {} bytes to the device at {addr:#x}", data.len()))
    }

    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<()> {
        let name = self.name();
        let (bo, offset) = self.buffer(addr, out.len())?;
        bo.sync(xrt::SyncDirection::FromDevice, offset, out.len())
            .with_context(|| format!("{name}: copying {} bytes from the device at {addr:#x}", out.len()))?;
        bo.read(offset, out).with_context(|| format!("{name}: reading {} bytes at {addr:#x}", out.len()))
    }

    /// Checks the kernel's identification register on the first start (a bitstream of another
    /// kernel or register-map version would otherwise misread every register), then starts.
    fn start(&mut self, program: u64) -> Result<()> {
        if !self.magic_checked {
            let magic = self.read_reg(regmap::MAGIC)?;
            if magic != regmap::MAGIC_VALUE {
                bail!(
                    "{}: MAGIC register reads {magic:#010x}, not {:#010x}: the board runs another kernel \
                     or another register-map version",
                    self.name(),
                    regmap::MAGIC_VALUE
                );
            }
            self.magic_checked = true;
        }
        let ctrl = self.read_reg(regmap::CTRL)?;
        if ctrl & regmap::ctrl::IDLE == 0 {
            bail!("{}: cannot start, the kernel is not idle (CTRL = {ctrl:#x})", self.name());
        }
        self.write_reg(regmap::ARG_PROGRAM, program as u32)?;
        self.write_reg(regmap::ARG_PROGRAM + 4, (program >> 32) as u32)?;
        self.write_reg(regmap::CTRL, regmap::ctrl::START)
    }

    /// Polls `ap_done` (wall clock), sleeping between reads from 10 µs up to 1 ms so short programs
    /// finish promptly without a busy loop on long ones.
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        let start = Instant::now();
        let mut pause = Duration::from_micros(10);
        loop {
            let ctrl = self.read_reg(regmap::CTRL)?;
            if ctrl & regmap::ctrl::DONE != 0 {
                break;
            }
            if start.elapsed() >= timeout {
                bail!("{}: the kernel did not finish within {timeout:?}; CTRL = {ctrl:#x}", self.name());
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(1));
        }
        let err = self.read_reg(regmap::ERROR)?;
        if err != 0 {
            let (code, op, index) = (err & 0xff, (err >> 8) & 0xff, err >> 16);
            let what = match code {
                regmap::error::UNSUPPORTED_OP => "opcode not implemented by this kernel",
                regmap::error::NO_SETUP => "op before SETUP",
                regmap::error::BUS => "memory access error",
                _ => "unknown error",
            };
            bail!(
                "{}: the kernel stopped at descriptor {index} (opcode {op:#04x}): {what} (ERROR = {err:#010x})",
                self.name()
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::locate;
    use std::collections::BTreeMap;

    #[test]
    fn locate_finds_the_buffer_holding_a_range() {
        let map: BTreeMap<u64, u64> = [(0x1000, 0x1000), (0x4000, 0x2000)].into_iter().collect();
        let size = |s: &u64| *s;
        assert_eq!(locate(&map, size, 0x1000, 0x1000), Some((0x1000, 0)));
        assert_eq!(locate(&map, size, 0x1800, 16), Some((0x1000, 0x800)));
        assert_eq!(locate(&map, size, 0x5fff, 1), Some((0x4000, 0x1fff)));
        assert_eq!(locate(&map, size, 0x1800, 0x1000), None); // runs past the buffer
        assert_eq!(locate(&map, size, 0x2000, 1), None); // between buffers
        assert_eq!(locate(&map, size, 0x800, 1), None); // below all
        assert_eq!(locate(&map, size, 0x6000, 0), Some((0x4000, 0x2000))); // empty, at the end
        assert_eq!(locate(&map, size, u64::MAX, 2), None); // overflow
    }
}
