//! The kernel's AXI4-Lite register map (Vitis `ap_ctrl_hs` convention), defined once: the RTL
//! control slave (issue 5), the host driver and the manifest all take offsets from here.

use serde::Serialize;

/// Control: bit 0 `ap_start` (write 1 to start; clears when accepted), bit 1 `ap_done`
/// (clear on read), bit 2 `ap_idle`, bit 3 `ap_ready`, bit 7 `auto_restart`.
pub const CTRL: u32 = 0x00;
/// Global interrupt enable (bit 0).
pub const GIE: u32 = 0x04;
/// Interrupt enable: bit 0 done, bit 1 ready.
pub const IER: u32 = 0x08;
/// Interrupt status (toggle on write): bit 0 done, bit 1 ready.
pub const ISR: u32 = 0x0c;
/// Argument: device address of the program (64 bit: low word here, high word at +4).
pub const ARG_PROGRAM: u32 = 0x10;
/// Read-only error word of the last program: bits 7:0 code ([`error`]), 15:8 the opcode,
/// 31:16 the index of the descriptor that failed. Zero after a clean run.
pub const ERROR: u32 = 0x18;
/// Read-only counters from here, 64 bit each (low word, then high word).
pub const COUNTERS: u32 = 0x40;
/// Read-only identification word.
pub const MAGIC: u32 = 0x80;
/// Value of [`MAGIC`]: ASCII "trt" and the register-map version.
pub const MAGIC_VALUE: u32 = 0x7472_7401;

/// Error codes in [`ERROR`].
pub mod error {
    /// No error.
    pub const NONE: u32 = 0;
    /// The opcode is unknown or not implemented by this kernel.
    pub const UNSUPPORTED_OP: u32 = 1;
    /// An op came before `SETUP`.
    pub const NO_SETUP: u32 = 2;
    /// A memory access returned an error response.
    pub const BUS: u32 = 3;
    /// The op's sizes exceed what this kernel was generated for, or its formats differ (an LM
    /// head program for another code width).
    pub const SIZE: u32 = 4;
}

/// `CTRL` bits.
pub mod ctrl {
    /// Start.
    pub const START: u32 = 1 << 0;
    /// Done (clear on read).
    pub const DONE: u32 = 1 << 1;
    /// Idle.
    pub const IDLE: u32 = 1 << 2;
    /// Ready.
    pub const READY: u32 = 1 << 3;
    /// Auto-restart.
    pub const AUTO_RESTART: u32 = 1 << 7;
}

/// The performance counters, in register order from [`COUNTERS`].
pub const COUNTER_NAMES: &[&str] = &[
    "cycles",
    "tlmm_busy",
    "tlmm_stall",
    "vector_busy",
    "attention_busy",
    "dram_read_bytes",
    "dram_write_bytes",
    "descriptors",
];

/// Offset of counter `i` (low word).
pub fn counter(i: usize) -> u32 {
    COUNTERS + 8 * i as u32
}

/// One register, for the manifest and the generated documentation.
#[derive(Debug, Clone, Serialize)]
pub struct Register {
    /// Name.
    pub name: String,
    /// Byte offset.
    pub offset: u32,
    /// `rw`, `ro`, `cor` (clear on read) ...
    pub access: &'static str,
    /// What it holds.
    pub doc: &'static str,
}

/// The whole map.
pub fn registers() -> Vec<Register> {
    let r = |name: &str, offset, access, doc| Register { name: name.to_string(), offset, access, doc };
    let mut v = vec![
        r(
            "CTRL",
            CTRL,
            "rw",
            "bit0 ap_start, bit1 ap_done (clear on read), bit2 ap_idle, bit3 ap_ready, bit7 auto_restart",
        ),
        r("GIE", GIE, "rw", "global interrupt enable"),
        r("IER", IER, "rw", "interrupt enable: bit0 done, bit1 ready"),
        r("ISR", ISR, "tow", "interrupt status: bit0 done, bit1 ready (toggle on write)"),
        r("PROGRAM_LO", ARG_PROGRAM, "rw", "program address, bits 31:0"),
        r("PROGRAM_HI", ARG_PROGRAM + 4, "rw", "program address, bits 63:32"),
        r("ERROR", ERROR, "ro", "last program: bits 7:0 code (1 unsupported op, 2 op before SETUP, 3 bus error, 4 sizes beyond the kernel's maxima or another LM head code width), 15:8 opcode, 31:16 descriptor index"),
    ];
    for (i, name) in COUNTER_NAMES.iter().enumerate() {
        v.push(r(&format!("{}_LO", name.to_uppercase()), counter(i), "ro", "performance counter, bits 31:0"));
        v.push(r(&format!("{}_HI", name.to_uppercase()), counter(i) + 4, "ro", "performance counter, bits 63:32"));
    }
    v.push(r("MAGIC", MAGIC, "ro", "0x74727401: \"trt\" + register-map version 1"));
    v
}

/// The register map as a Markdown table (written by `trit gen`, embedded in `docs/isa.md`).
pub fn markdown() -> String {
    let mut s = String::from("| offset | name | access | meaning |\n|---|---|---|---|\n");
    for r in registers() {
        s.push_str(&format!("| `{:#04x}` | {} | {} | {} |\n", r.offset, r.name, r.access, r.doc));
    }
    s
}
