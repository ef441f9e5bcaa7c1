//! `XrtDevice` against the real XRT libraries, with no board.
//!
//! XRT reads `XCL_EMULATION_MODE` once per process and the tests of one binary share a process,
//! so each test that depends on the mode re-runs this binary for one `child_*` test alone, in a
//! child process with the mode set (`noop`) or removed (the real driver, which finds no board).
//! A `child_*` test does nothing unless `TRIT_XRT_TEST_CHILD` names it. `XILINX_XRT` is removed
//! in the children as well: the `xrt` crate points it at its own library directory.
//!
//! What XRT's no-op driver supports, and so what is tested end to end: opening the device,
//! loading the xclbin the project writes, opening the kernel, and buffer objects (allocate,
//! write, sync both ways, read back) and XRT-scheduled runs through the `xrt` crate. What it does
//! not support, pinned down here as clear errors: register access (its register calls are
//! stubs), hence `start`, `wait` and the counters; and usable device addresses (every buffer gets
//! the unaligned fake address 0xdeadbeef), hence `XrtDevice::alloc`, `write` and `read`.

use host::device::Device;
use host::xrtdev::{self, XrtDevice};
use std::path::Path;
use std::time::Duration;
use xrt::test_child::{in_child, is_child};

fn minimal_xclbin(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("trit.xclbin");
    xrtdev::write_minimal_xclbin(&path).unwrap();
    path
}

// (a) No board: opening device 0 fails with "no device found", without crashing.

#[test]
fn no_board_open_says_no_device() {
    in_child("child_no_board_open", None);
}

#[test]
fn child_no_board_open() {
    if !is_child("child_no_board_open") {
        return;
    }
    if xrt::device_count().unwrap() > 0 {
        println!("skipped: XRT sees a device on this machine");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let e = XrtDevice::open(0, &minimal_xclbin(dir.path())).err().expect("opened device 0 with no board");
    let msg = format!("{e:#}");
    println!("{msg}");
    assert!(msg.contains("xrt:0") && msg.contains("no device found at index 0"), "{msg}");
}

// (b) The xclbin writer's output is accepted by XRT's parser; other files are rejected first.

#[test]
fn xrt_accepts_the_written_xclbin() {
    let dir = tempfile::tempdir().unwrap();
    let x = xrt::Xclbin::from_file(&minimal_xclbin(dir.path())).unwrap();
    assert_eq!(x.kernel_names(), [xrtdev::KERNEL]);
}

#[test]
fn a_non_xclbin_is_rejected_before_xrt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bogus.xclbin");
    std::fs::write(&path, b"this is not an FPGA image, but it is long enough to need a real check. ".repeat(20))
        .unwrap();
    let e = XrtDevice::open(0, &path).err().expect("accepted a non-xclbin");
    let msg = format!("{e:#}");
    assert!(msg.contains("is not an xclbin") && msg.contains("magic"), "{msg}");
    // A wrong kernel is refused before the device is touched as well.
    let other = dir.path().join("other.xclbin");
    xrt::xclbin::write_minimal(&other, "other_kernel", &[]).unwrap();
    let msg = format!("{:#}", XrtDevice::open(0, &other).err().unwrap());
    assert!(msg.contains("has no kernel trit_kernel"), "{msg}");
}

// (c) The no-op emulation, as far as it goes.

#[test]
fn noop_emulation() {
    in_child("child_noop_emulation", Some("noop"));
}

#[test]
fn child_noop_emulation() {
    if !is_child("child_noop_emulation") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = minimal_xclbin(dir.path());

    // Open, load the xclbin, open the kernel (and check its argument against the register map).
    let mut dev = XrtDevice::open(0, &path).unwrap();
    assert_eq!(dev.name(), "xrt:0");

    // Buffer objects through the xrt crate, in the kernel's memory bank: write, sync, read back.
    let xdev = xrt::Device::open(0).unwrap();
    let xclbin = xrt::Xclbin::from_file(&path).unwrap();
    let uuid = xdev.load_xclbin(&xclbin).unwrap();
    let kernel = xrt::Kernel::open(&xdev, &uuid, xrtdev::KERNEL, xrt::Access::Shared).unwrap();
    let mut bo = xrt::Bo::alloc(&xdev, 4096, kernel.group_id(0).unwrap()).unwrap();
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    bo.write(0, &bytes).unwrap();
    bo.sync(xrt::SyncDirection::ToDevice, 0, 4096).unwrap();
    bo.sync(xrt::SyncDirection::FromDevice, 0, 4096).unwrap();
    let mut back = vec![0u8; 4096];
    bo.read(0, &mut back).unwrap();
    assert_eq!(back, bytes);
    // An XRT-scheduled run of the kernel with the buffer as its program completes.
    let mut run = xrt::Run::new(&kernel).unwrap();
    run.set_arg_bo(0, &bo).unwrap();
    run.start().unwrap();
    run.wait(Duration::from_secs(5)).unwrap();

    // Not supported by the no-op driver: device addresses (so XrtDevice::alloc refuses them)...
    let msg = format!("{:#}", dev.alloc(4096).expect_err("noop alloc gave a usable address"));
    println!("{msg}");
    assert!(msg.contains("0xdeadbeef") && msg.contains("not 4096-byte aligned"), "{msg}");
    let msg = format!("{:#}", dev.write(0x1000, &[1, 2, 3]).err().unwrap());
    assert!(msg.contains("outside allocated memory"), "{msg}");
    // ... and registers, hence start, wait and the counters.
    for msg in [
        format!("{:#}", dev.read_reg(hdl::regmap::MAGIC).expect_err("noop register read succeeded")),
        format!("{:#}", dev.write_reg(hdl::regmap::GIE, 0).err().unwrap()),
        format!("{:#}", dev.start(0x1000).err().unwrap()),
        format!("{:#}", dev.wait(Duration::from_millis(10)).err().unwrap()),
        format!("{:#}", dev.counters().err().unwrap()),
    ] {
        println!("{msg}");
        assert!(msg.starts_with("xrt:0: ") && msg.contains("Operation not permitted"), "{msg}");
    }
}
