//! The `Device` trait: everything the runtime may do to an accelerator. A simulated device
//! (Verilator), a real board (XRT) and the reference device implement it; nothing above the
//! trait knows which one it drives.

use anyhow::{bail, Result};
use hdl::regmap;
use std::time::Duration;

/// An accelerator: registers, device memory, start and wait.
pub trait Device {
    /// Human-readable backend name (`ref`, `sim`, `xrt:0`).
    fn name(&self) -> String;
    /// Read a 32-bit control register.
    fn read_reg(&mut self, offset: u32) -> Result<u32>;
    /// Write a 32-bit control register.
    fn write_reg(&mut self, offset: u32, value: u32) -> Result<()>;
    /// Allocate `bytes` of device memory (4 KiB aligned); returns the device address.
    fn alloc(&mut self, bytes: u64) -> Result<u64>;
    /// Copy host bytes to device memory.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<()>;
    /// Copy device memory to the host.
    fn read(&mut self, addr: u64, out: &mut [u8]) -> Result<()>;
    /// Wait until the kernel reports done, or fail after `timeout` (wall clock for boards,
    /// simulated time for models).
    fn wait(&mut self, timeout: Duration) -> Result<()>;

    /// Start the program at `program` (writes the argument, then `ap_start`).
    fn start(&mut self, program: u64) -> Result<()> {
        let ctrl = self.read_reg(regmap::CTRL)?;
        if ctrl & regmap::ctrl::IDLE == 0 {
            bail!("{}: cannot start, the kernel is not idle (CTRL = {ctrl:#x})", self.name());
        }
        self.write_reg(regmap::ARG_PROGRAM, program as u32)?;
        self.write_reg(regmap::ARG_PROGRAM + 4, (program >> 32) as u32)?;
        self.write_reg(regmap::CTRL, regmap::ctrl::START)
    }

    /// When each descriptor of the last program was decoded, as (descriptors decoded so far,
    /// cycles since start), where the backend observes it while it waits (the simulation, when
    /// asked with `SimDevice::trace_descriptors`); empty otherwise.
    fn descriptor_times(&mut self) -> Vec<(u64, u64)> {
        Vec::new()
    }

    /// The performance counters as (name, value).
    fn counters(&mut self) -> Result<Vec<(&'static str, u64)>> {
        let mut out = Vec::new();
        for (i, name) in regmap::COUNTER_NAMES.iter().enumerate() {
            let lo = self.read_reg(regmap::counter(i))? as u64;
            let hi = self.read_reg(regmap::counter(i) + 4)? as u64;
            out.push((*name, lo | hi << 32));
        }
        Ok(out)
    }
}

/// Little-endian helpers over a device.
pub trait DeviceExt: Device {
    /// Write i32 values.
    fn write_i32s(&mut self, addr: u64, v: &[i32]) -> Result<()> {
        self.write(addr, &v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>())
    }
    /// Read `n` i32 values.
    fn read_i32s(&mut self, addr: u64, n: usize) -> Result<Vec<i32>> {
        let mut b = vec![0u8; 4 * n];
        self.read(addr, &mut b)?;
        Ok(b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }
}

impl<D: Device + ?Sized> DeviceExt for D {}
