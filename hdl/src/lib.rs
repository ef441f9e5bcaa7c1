//! trit-hdl: the generator that turns a typed [`model::Config`] into Verilog, a manifest and
//! board scripts. The TLMM engine and its generator arrive with issue 4; this crate exists now so
//! the workspace has its final shape.
#![deny(missing_docs)]
