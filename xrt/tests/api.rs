//! The API against the real XRT libraries, with no board.
//!
//! XRT reads `XCL_EMULATION_MODE` once per process, and tests in one binary share a process, so
//! every test that depends on the mode re-runs this binary for itself alone in a child process
//! with the mode set (`noop`) or removed (real driver). The child tests do nothing unless
//! `TRIT_XRT_TEST_CHILD` names them. `XILINX_XRT` is removed in the children too: the crate sets
//! it itself.

use std::path::Path;
use std::time::Duration;
use xrt::test_child::{in_child, is_child};
use xrt::xclbin::{Arg, ArgKind};
use xrt::{Access, Bo, Device, Error, Kernel, Run, SyncDirection, Xclbin};

const KERNEL: &str = "trit_kernel";
const ARGS: [Arg; 1] = [Arg { name: "program", offset: 0x10, kind: ArgKind::Global }];

#[test]
fn no_board_means_no_device() {
    let out = in_child("child_no_board", None);
    assert!(out.contains("open(0): xrt: no device found"), "{out}");
}

#[test]
fn child_no_board() {
    if !is_child("child_no_board") {
        return;
    }
    let n = xrt::device_count().unwrap();
    if n > 0 {
        println!("open(0): xrt: no device found — skipped: XRT sees {n} device(s) on this machine");
        return;
    }
    match Device::open(0) {
        Err(e @ Error::NoDevice { index: 0, found: 0, .. }) => println!("open(0): {e}"),
        Err(e) => panic!("expected NoDevice, got {e}"),
        Ok(_) => panic!("opened device 0 with no board"),
    }
}

#[test]
fn xrt_parses_the_minimal_xclbin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.xclbin");
    let uuid = xrt::xclbin::write_minimal(&path, KERNEL, &ARGS).unwrap();
    let x = Xclbin::from_file(&path).unwrap();
    assert_eq!(x.uuid(), uuid);
    assert_eq!(x.kernel_names(), [KERNEL]);
}

#[test]
fn non_xclbin_files_never_reach_xrt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not.xclbin");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let e = Xclbin::from_file(&path).err().expect("accepted garbage");
    assert!(matches!(e, Error::NotXclbin { .. }), "{e}");
    assert!(e.to_string().contains("not an xclbin") && e.to_string().contains("magic"), "{e}");
    let e = Xclbin::from_file(Path::new("/nonexistent/k.xclbin")).err().unwrap();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

#[test]
fn xrt_errors_come_back_as_errors() {
    // A sound container with broken kernel metadata: XRT's XML parser throws, the shim catches.
    let (mut bytes, _) = xrt::xclbin::build_minimal(KERNEL, &ARGS).unwrap();
    let xml = bytes.windows(5).position(|w| w == b"<?xml").unwrap();
    bytes[xml..xml + 200].fill(b'#');
    let e = Xclbin::from_bytes(&bytes).err().expect("XRT accepted broken metadata");
    assert!(matches!(e, Error::Xrt { .. }), "{e}");
    println!("{e}");
}

#[test]
fn noop_host_path() {
    in_child("child_noop_host_path", Some("noop"));
}

/// Everything XRT's no-op driver supports, end to end; and what it does not, pinned down.
#[test]
fn child_noop_host_path() {
    if !is_child("child_noop_host_path") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.xclbin");
    xrt::xclbin::write_minimal(&path, KERNEL, &ARGS).unwrap();

    // The no-op driver enumerates no device, yet opens device 0.
    assert_eq!(xrt::device_count().unwrap(), 0);
    let dev = Device::open(0).unwrap();
    let xclbin = Xclbin::from_file(&path).unwrap();
    let uuid = dev.load_xclbin(&xclbin).unwrap();
    assert_eq!(uuid, xclbin.uuid());

    let e = Kernel::open(&dev, &uuid, "nosuch", Access::Exclusive).err().unwrap();
    assert!(e.to_string().contains("nosuch"), "{e}");
    let mut kernel = Kernel::open(&dev, &uuid, KERNEL, Access::Exclusive).unwrap();
    assert_eq!(kernel.arg_offset(0).unwrap(), 0x10);
    let group = kernel.group_id(0).unwrap();

    // Buffers: write, sync both ways, read back.
    let mut a = Bo::alloc(&dev, 8192, group).unwrap();
    let mut b = Bo::alloc(&dev, 4096, group).unwrap();
    let data: Vec<u8> = (0..=255).collect();
    a.write(100, &data).unwrap();
    a.sync(SyncDirection::ToDevice, 100, data.len()).unwrap();
    b.write(0, &[7; 16]).unwrap();
    a.sync(SyncDirection::FromDevice, 0, 8192).unwrap();
    let mut back = vec![0u8; 256];
    a.read(100, &mut back).unwrap();
    assert_eq!(back, data);
    let mut seven = [0u8; 16];
    b.read(0, &mut seven).unwrap();
    assert_eq!(seven, [7; 16], "buffers are separate");
    assert!(matches!(a.write(8000, &data), Err(Error::InvalidArgument(_))));
    assert!(matches!(Bo::alloc(&dev, 0, group), Err(Error::InvalidArgument(_))));
    // The no-op driver's fake device address, the same for every buffer.
    assert_eq!((a.address(), b.address()), (0xdeadbeef, 0xdeadbeef));

    // An XRT-scheduled run completes at once.
    let mut run = Run::new(&kernel).unwrap();
    run.set_arg_bo(0, &a).unwrap();
    run.start().unwrap();
    run.wait(Duration::from_secs(5)).unwrap();

    // Register access: the no-op driver's xclRegRead/xclRegWrite are stubs that fail, and XRT
    // reports it ("failed to read ip(0): Operation not permitted").
    let e = kernel.read_register(0x80).expect_err("noop register read succeeded");
    assert!(matches!(e, Error::Xrt { .. }) && e.to_string().contains("failed to read"), "{e}");
    let e = kernel.write_register(0x10, 1).expect_err("noop register write succeeded");
    assert!(e.to_string().contains("failed to write"), "{e}");
    println!("noop register read: {}", kernel.read_register(0).unwrap_err());
}
