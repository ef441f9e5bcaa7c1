//! trit-sim: Verilator orchestration. For now it holds [`tools`], the one place where every
//! external tool (Verilator, yosys, iverilog) is found.
#![deny(missing_docs)]

pub mod tools;
