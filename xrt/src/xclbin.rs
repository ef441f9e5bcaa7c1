//! The xclbin (axlf) container: a checker run before XRT sees a file, and a writer of minimal
//! xclbins for tests and XRT's no-op emulation.
//!
//! An xclbin is the `axlf` header (magic `xclbin2\0`, signature fields, a 152-byte
//! `axlf_header` with the UUID and the section count), then one 40-byte header per section,
//! then the sections (8-byte aligned). The minimal file has the four sections XRT's host path
//! reads: `MEM_TOPOLOGY` (one DDR bank), `IP_LAYOUT` (one compute unit), `CONNECTIVITY` (which
//! argument goes to which bank) and `EMBEDDED_METADATA` (the kernel XML: arguments, offsets, ports).
//! It carries no bitstream, so a real board cannot be programmed with it: the board's xclbin comes
//! from Vitis (`v++ --link`). Offsets and sizes come from XRT's own `xclbin.h` through bindgen.
//!
//! (Debian's `xclbinutil` cannot be used instead: its wrapper points at a missing binary.)

use crate::ffi;
use crate::{Error, Result, Uuid};
use std::fmt::Write as _;
use std::mem::{offset_of, size_of};
use std::path::Path;

/// The file magic.
pub const MAGIC: &[u8; 8] = b"xclbin2\0";

// Layout of the container, from XRT's structures.
const HEADER: usize = offset_of!(ffi::axlf, m_header);
const SECTIONS: usize = offset_of!(ffi::axlf, m_sections);
const SECTION_HEADER: usize = size_of::<ffi::axlf_section_header>();
const H_LENGTH: usize = HEADER + offset_of!(ffi::axlf_header, m_length);
const H_VERSION_MAJOR: usize = HEADER + offset_of!(ffi::axlf_header, m_versionMajor);
const H_VERSION_MINOR: usize = HEADER + offset_of!(ffi::axlf_header, m_versionMinor);
const H_MODE: usize = HEADER + offset_of!(ffi::axlf_header, m_mode);
const H_VBNV: usize = HEADER + offset_of!(ffi::axlf_header, m_platformVBNV);
// The UUID shares a union with `m_next_axlf`; bindgen names the union field `__bindgen_anon_2`.
const H_UUID: usize = HEADER + offset_of!(ffi::axlf_header, __bindgen_anon_2);
const H_NUM_SECTIONS: usize = HEADER + offset_of!(ffi::axlf_header, m_numSections);
const S_KIND: usize = offset_of!(ffi::axlf_section_header, m_sectionKind);
const S_NAME: usize = offset_of!(ffi::axlf_section_header, m_sectionName);
const S_OFFSET: usize = offset_of!(ffi::axlf_section_header, m_sectionOffset);
const S_SIZE: usize = offset_of!(ffi::axlf_section_header, m_sectionSize);
/// XRT's limit on the number of sections.
const MAX_SECTIONS: u32 = 0x10000;

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}
fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

/// Checks that `bytes` is an xclbin container XRT can read without running off its end: the
/// magic, the total length, the section table, every section inside the file, and the element
/// counts of the sections this crate writes. The content of the sections is XRT's to judge.
pub fn check(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.len() < SECTIONS + SECTION_HEADER {
        return Err(format!("it has {} bytes; the smallest xclbin has {}", bytes.len(), SECTIONS + SECTION_HEADER));
    }
    if &bytes[..8] != MAGIC {
        return Err(format!("it starts with {:?}, not the magic \"xclbin2\"", String::from_utf8_lossy(&bytes[..8])));
    }
    let length = u64_at(bytes, H_LENGTH);
    if length > bytes.len() as u64 {
        return Err(format!("its header says {length} bytes but the file has {}: truncated?", bytes.len()));
    }
    let n = u32_at(bytes, H_NUM_SECTIONS);
    if n == 0 || n > MAX_SECTIONS {
        return Err(format!("its header says {n} sections"));
    }
    let table_end = SECTIONS as u64 + n as u64 * SECTION_HEADER as u64;
    if table_end > length {
        return Err(format!("its {n} section headers do not fit in its {length} bytes"));
    }
    for i in 0..n as usize {
        let h = SECTIONS + i * SECTION_HEADER;
        let (kind, off, size) = (u32_at(bytes, h + S_KIND), u64_at(bytes, h + S_OFFSET), u64_at(bytes, h + S_SIZE));
        if off.checked_add(size).is_none_or(|end| end > length) {
            return Err(format!("section {i} (kind {kind}) at {off}+{size} runs past the end ({length} bytes)"));
        }
        // The array sections: a count, then fixed-size elements.
        let (first, elem) = match kind {
            ffi::axlf_section_kind::MEM_TOPOLOGY => {
                (offset_of!(ffi::mem_topology, m_mem_data), size_of::<ffi::mem_data>())
            }
            ffi::axlf_section_kind::IP_LAYOUT => (offset_of!(ffi::ip_layout, m_ip_data), size_of::<ffi::ip_data>()),
            ffi::axlf_section_kind::CONNECTIVITY => {
                (offset_of!(ffi::connectivity, m_connection), size_of::<ffi::connection>())
            }
            _ => continue,
        };
        if size < 4 {
            return Err(format!("section {i} (kind {kind}) has {size} bytes, too few for its count"));
        }
        let count = u32_at(bytes, off as usize) as i32;
        if count < 0 || first as u64 + count as u64 * elem as u64 > size {
            return Err(format!("section {i} (kind {kind}) claims {count} entries, more than its {size} bytes hold"));
        }
    }
    Ok(())
}

/// Kind of a kernel argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgKind {
    /// A device address (64 bit), connected to the memory bank through the kernel's AXI master.
    Global,
    /// A 32-bit scalar.
    Scalar,
}

/// One kernel argument: its name, register offset and kind. Arguments are numbered in order.
#[derive(Clone, Copy, Debug)]
pub struct Arg<'a> {
    /// Name (letters, digits, `_`).
    pub name: &'a str,
    /// Byte offset of its register in the control slave.
    pub offset: u32,
    /// Kind.
    pub kind: ArgKind,
}

/// Name of the memory bank of a minimal xclbin.
pub const BANK: &str = "bank0";
/// Size of that bank (a placeholder: the no-op driver does not use it).
pub const BANK_BYTES: u64 = 4 << 30;
/// Address range of the control slave declared for the kernel (XRT's default).
pub const CONTROL_RANGE: u32 = 0x1_0000;
/// The AXI master the global arguments use.
const MASTER: &str = "m_axi_gmem0";

fn check_name(what: &str, s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 28
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what} {s:?}: want 1 to 28 letters, digits or '_', not starting with a digit"
        )))
    }
}

/// The kernel XML of `EMBEDDED_METADATA`, as Vitis writes it (the parts XRT reads).
fn metadata(kernel: &str, cu: &str, args: &[Arg]) -> String {
    let mut x = String::new();
    let _ = writeln!(x, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(x, r#"<project name="{kernel}">"#);
    let _ = writeln!(x, r#"  <platform vendor="trit" boardid="none" name="trit_minimal" featureRomTime="0">"#);
    let _ = writeln!(x, r#"    <version major="1" minor="0"/>"#);
    let _ = writeln!(x, r#"    <device name="fpga0" fpgaDevice="" addrWidth="0">"#);
    let _ = writeln!(
        x,
        r#"      <core name="OCL_REGION_0" target="hw" type="clc_region" clockFreq="0MHz" numComputeUnits="1">"#
    );
    let _ = writeln!(
        x,
        r#"        <kernel name="{kernel}" language="ip_c" vlnv="trit:kernel:{kernel}:1.0" preferredWorkGroupSizeMultiple="0" workGroupSize="1" interrupt="true" hwControlProtocol="ap_ctrl_hs">"#
    );
    let _ = writeln!(
        x,
        r#"          <port name="s_axi_control" mode="slave" range="{CONTROL_RANGE:#x}" dataWidth="32" portType="addressable" base="0x0"/>"#
    );
    let _ = writeln!(
        x,
        r#"          <port name="{MASTER}" mode="master" range="0xFFFFFFFFFFFFFFFF" dataWidth="512" portType="addressable" base="0x0"/>"#
    );
    for (id, a) in args.iter().enumerate() {
        let (qualifier, port, size, ty) = match a.kind {
            ArgKind::Global => (1, MASTER, 8, "void*"),
            ArgKind::Scalar => (0, "s_axi_control", 4, "uint"),
        };
        let _ = writeln!(
            x,
            r#"          <arg name="{}" addressQualifier="{qualifier}" id="{id}" port="{port}" size="{size:#x}" offset="{:#x}" hostOffset="0x0" hostSize="{size:#x}" type="{ty}"/>"#,
            a.name, a.offset
        );
    }
    let _ = writeln!(x, r#"          <instance name="{cu}">"#);
    let _ = writeln!(x, r#"            <addrRemap base="0x0" range="{CONTROL_RANGE:#x}" port="s_axi_control"/>"#);
    let _ = writeln!(x, r#"          </instance>"#);
    let _ = writeln!(x, r#"        </kernel>"#);
    let _ = writeln!(x, r#"      </core>"#);
    let _ = writeln!(x, r#"    </device>"#);
    let _ = writeln!(x, r#"  </platform>"#);
    let _ = writeln!(x, r#"</project>"#);
    x
}

/// 128-bit FNV-1a of the sections: the UUID is a function of the content, so the same kernel
/// description always gives the same file.
fn content_uuid(parts: &[&[u8]]) -> Uuid {
    const PRIME: u128 = 0x0000000001000000000000000000013B;
    let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
    for p in parts {
        for &b in *p {
            h ^= b as u128;
            h = h.wrapping_mul(PRIME);
        }
        h = h.wrapping_mul(PRIME); // separate the parts
    }
    Uuid(h.to_be_bytes())
}

/// The bytes of a minimal xclbin for `kernel` with `args` (one compute unit `<kernel>_1`, one
/// DDR bank [`BANK`] that every global argument is connected to), and its UUID.
pub fn build_minimal(kernel: &str, args: &[Arg]) -> Result<(Vec<u8>, Uuid)> {
    check_name("kernel name", kernel)?;
    for a in args {
        check_name("argument name", a.name)?;
        if a.offset % 4 != 0 || a.offset >= CONTROL_RANGE {
            return Err(Error::InvalidArgument(format!(
                "argument {}: offset {:#x} is not a register",
                a.name, a.offset
            )));
        }
    }
    let cu = format!("{kernel}_1");

    // MEM_TOPOLOGY: one used DDR4 bank.
    let mem_first = offset_of!(ffi::mem_topology, m_mem_data);
    let mut mem = vec![0u8; mem_first + size_of::<ffi::mem_data>()];
    put(&mut mem, 0, &1i32.to_le_bytes());
    let md = mem_first;
    mem[md + offset_of!(ffi::mem_data, m_type)] = ffi::MEM_TYPE::MEM_DDR4 as u8;
    mem[md + offset_of!(ffi::mem_data, m_used)] = 1;
    // m_size (in KiB) and m_base_address share unions with streaming fields.
    put(&mut mem, md + offset_of!(ffi::mem_data, __bindgen_anon_1), &(BANK_BYTES / 1024).to_le_bytes());
    put(&mut mem, md + offset_of!(ffi::mem_data, __bindgen_anon_2), &0u64.to_le_bytes());
    put(&mut mem, md + offset_of!(ffi::mem_data, m_tag), BANK.as_bytes());

    // IP_LAYOUT: one kernel instance, ap_ctrl_hs (properties 0: control in bits 15:8, no interrupt).
    let ip_first = offset_of!(ffi::ip_layout, m_ip_data);
    let mut ip = vec![0u8; ip_first + size_of::<ffi::ip_data>()];
    put(&mut ip, 0, &1i32.to_le_bytes());
    put(&mut ip, ip_first + offset_of!(ffi::ip_data, m_type), &ffi::IP_TYPE::IP_KERNEL.to_le_bytes());
    put(&mut ip, ip_first + offset_of!(ffi::ip_data, m_base_address), &0u64.to_le_bytes());
    put(&mut ip, ip_first + offset_of!(ffi::ip_data, m_name), format!("{kernel}:{cu}").as_bytes());

    // CONNECTIVITY: every global argument to bank 0 through compute unit 0.
    let globals: Vec<usize> =
        args.iter().enumerate().filter(|(_, a)| a.kind == ArgKind::Global).map(|(i, _)| i).collect();
    let conn_first = offset_of!(ffi::connectivity, m_connection);
    let conn_size = size_of::<ffi::connection>();
    let mut conn = vec![0u8; conn_first + conn_size * globals.len().max(1)];
    put(&mut conn, 0, &(globals.len() as i32).to_le_bytes());
    for (k, &arg) in globals.iter().enumerate() {
        let c = conn_first + k * conn_size;
        put(&mut conn, c + offset_of!(ffi::connection, arg_index), &(arg as i32).to_le_bytes());
        put(&mut conn, c + offset_of!(ffi::connection, m_ip_layout_index), &0i32.to_le_bytes());
        put(&mut conn, c + offset_of!(ffi::connection, mem_data_index), &0i32.to_le_bytes());
    }

    let xml = metadata(kernel, &cu, args);
    use ffi::axlf_section_kind as kind;
    let sections: [(u32, &str, &[u8]); 4] = [
        (kind::MEM_TOPOLOGY, "mem_topology", &mem),
        (kind::IP_LAYOUT, "ip_layout", &ip),
        (kind::CONNECTIVITY, "connectivity", &conn),
        (kind::EMBEDDED_METADATA, "metadata", xml.as_bytes()),
    ];
    let uuid = content_uuid(&[kernel.as_bytes(), &mem, &ip, &conn, xml.as_bytes()]);

    let align8 = |n: usize| n.div_ceil(8) * 8;
    let mut out = vec![0u8; align8(SECTIONS + sections.len() * SECTION_HEADER)];
    for (i, (k, name, data)) in sections.iter().enumerate() {
        let offset = out.len();
        out.extend_from_slice(data);
        out.resize(align8(out.len()), 0);
        let h = SECTIONS + i * SECTION_HEADER;
        put(&mut out, h + S_KIND, &k.to_le_bytes());
        put(&mut out, h + S_NAME, name.as_bytes());
        put(&mut out, h + S_OFFSET, &(offset as u64).to_le_bytes());
        put(&mut out, h + S_SIZE, &(data.len() as u64).to_le_bytes());
    }

    put(&mut out, 0, MAGIC);
    // Signature length -1: not signed.
    put(&mut out, offset_of!(ffi::axlf, m_signature_length), &(-1i32).to_le_bytes());
    // Reserved bytes and the key block are 0xff in files xclbinutil writes.
    out[offset_of!(ffi::axlf, reserved)..offset_of!(ffi::axlf, m_uniqueId)].fill(0xff);
    let length = out.len() as u64;
    put(&mut out, H_LENGTH, &length.to_le_bytes());
    // Timestamps stay 0, so the file is a function of its inputs.
    out[H_VERSION_MAJOR] = 2;
    out[H_VERSION_MINOR] = 13;
    put(&mut out, H_MODE, &(ffi::XCLBIN_MODE::XCLBIN_FLAT as u16).to_le_bytes());
    put(&mut out, H_VBNV, b"trit:minimal:none:1.0");
    put(&mut out, H_UUID, &uuid.0);
    put(&mut out, H_NUM_SECTIONS, &(sections.len() as u32).to_le_bytes());
    Ok((out, uuid))
}

/// Writes [`build_minimal`]'s xclbin to `path`; returns its UUID.
pub fn write_minimal(path: &Path, kernel: &str, args: &[Arg]) -> Result<Uuid> {
    let (bytes, uuid) = build_minimal(kernel, args)?;
    std::fs::write(path, bytes).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    Ok(uuid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_xclbin_format() {
        // The sizes XRT's xclbin.h asserts, seen through bindgen.
        assert_eq!(SECTIONS, 456);
        assert_eq!(SECTION_HEADER, 40);
        assert_eq!(size_of::<ffi::axlf_header>(), 152);
        assert_eq!(size_of::<ffi::axlf>(), 496);
        assert_eq!(size_of::<ffi::mem_data>(), 40);
        assert_eq!(size_of::<ffi::ip_data>(), 80);
        assert_eq!(size_of::<ffi::connection>(), 12);
    }

    #[test]
    fn minimal_passes_the_checker_and_is_deterministic() {
        let args = [Arg { name: "program", offset: 0x10, kind: ArgKind::Global }];
        let (a, ua) = build_minimal("trit_kernel", &args).unwrap();
        let (b, ub) = build_minimal("trit_kernel", &args).unwrap();
        assert_eq!(a, b);
        assert_eq!(ua, ub);
        check(&a).unwrap();
        assert_eq!(u64_at(&a, H_LENGTH), a.len() as u64);
        let (_, other) = build_minimal("other_kernel", &args).unwrap();
        assert_ne!(ua, other);
    }

    #[test]
    fn checker_rejects_damaged_files() {
        let (good, _) = build_minimal("k", &[Arg { name: "p", offset: 0x10, kind: ArgKind::Global }]).unwrap();
        assert!(check(b"hello").unwrap_err().contains("bytes"));
        let mut bad = good.clone();
        bad[..8].copy_from_slice(b"notxclb\0");
        assert!(check(&bad).unwrap_err().contains("magic"));
        assert!(check(&good[..good.len() - 8]).unwrap_err().contains("truncated"));
        let mut bad = good.clone();
        put(&mut bad, H_NUM_SECTIONS, &1000u32.to_le_bytes());
        assert!(check(&bad).is_err());
        let mut bad = good.clone();
        put(&mut bad, SECTIONS + S_SIZE, &u64::MAX.to_le_bytes());
        assert!(check(&bad).unwrap_err().contains("past the end"));
        let mut bad = good.clone();
        let ip_off = u64_at(&bad, SECTIONS + SECTION_HEADER + S_OFFSET) as usize;
        put(&mut bad, ip_off, &1000i32.to_le_bytes());
        assert!(check(&bad).unwrap_err().contains("entries"));
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(build_minimal("", &[]).is_err());
        assert!(build_minimal("a<b", &[]).is_err());
        assert!(build_minimal("k", &[Arg { name: "x", offset: 3, kind: ArgKind::Scalar }]).is_err());
    }
}
