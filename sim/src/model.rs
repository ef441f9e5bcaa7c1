//! A loaded Verilator model: set and read ports of any width, clock it, count cycles, run until
//! a condition or a cycle limit, and dump a window of cycles to FST.

use crate::build::{build, BuildSpec, Built};
use crate::wrapper::PortSpec;
use crate::SimError;
use libloading::{Library, Symbol};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::path::Path;

type NewFn = unsafe extern "C" fn() -> *mut c_void;
type FreeFn = unsafe extern "C" fn(*mut c_void);
type EvalFn = unsafe extern "C" fn(*mut c_void);
type SetFn = unsafe extern "C" fn(*mut c_void, u32, *const u32) -> c_int;
type GetFn = unsafe extern "C" fn(*mut c_void, u32, *mut u32) -> c_int;
type TraceOpenFn = unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int;
type TraceEnableFn = unsafe extern "C" fn(*mut c_void, c_int);

/// Index of a port, from [`Model::port`]; cheaper than a name on every cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortId(usize);

/// A running model.
pub struct Model {
    // Function pointers stay valid while `_lib` is alive; it is dropped last.
    new: NewFn,
    free: FreeFn,
    eval: EvalFn,
    tick: EvalFn,
    set: SetFn,
    get: GetFn,
    trace_open: TraceOpenFn,
    trace_enable: TraceEnableFn,
    handle: *mut c_void,
    top: String,
    ports: Vec<PortSpec>,
    by_name: HashMap<String, usize>,
    cycle: u64,
    trace_window: Option<(u64, u64)>,
    /// How the library was obtained.
    pub built: Built,
    _lib: Library,
}

// The model is used from one thread at a time; the handle is owned exclusively.
unsafe impl Send for Model {}

impl Model {
    /// Build (or reuse) and load the model described by `spec`.
    pub fn new(spec: &BuildSpec) -> Result<Model, SimError> {
        let built = build(spec)?;
        // SAFETY: the library was built by `build` from our own wrapper; loading it runs only
        // Verilator's static initialisers.
        let lib = unsafe { Library::new(&built.lib) }
            .map_err(|e| SimError::Load { path: built.lib.clone(), msg: e.to_string() })?;
        macro_rules! sym {
            ($name:literal, $ty:ty) => {{
                // SAFETY: the wrapper defines the symbol with exactly this signature.
                let s: Symbol<$ty> = unsafe { lib.get($name) }
                    .map_err(|e| SimError::Load { path: built.lib.clone(), msg: e.to_string() })?;
                *s
            }};
        }
        let new = sym!(b"trit_sim_new", NewFn);
        let mut m = Model {
            new,
            free: sym!(b"trit_sim_free", FreeFn),
            eval: sym!(b"trit_sim_eval", EvalFn),
            tick: sym!(b"trit_sim_tick", EvalFn),
            set: sym!(b"trit_sim_set", SetFn),
            get: sym!(b"trit_sim_get", GetFn),
            trace_open: sym!(b"trit_sim_trace_open", TraceOpenFn),
            trace_enable: sym!(b"trit_sim_trace_enable", TraceEnableFn),
            handle: std::ptr::null_mut(),
            top: spec.top.clone(),
            ports: spec.ports.clone(),
            by_name: spec.ports.iter().enumerate().map(|(i, p)| (p.name.clone(), i)).collect(),
            cycle: 0,
            trace_window: None,
            built,
            _lib: lib,
        };
        // SAFETY: creates a fresh model instance owned by `m`.
        m.handle = unsafe { (m.new)() };
        Ok(m)
    }

    /// The port called `name`.
    pub fn port(&self, name: &str) -> Result<PortId, SimError> {
        self.by_name.get(name).map(|&i| PortId(i)).ok_or_else(|| SimError::Spec {
            top: self.top.clone(),
            msg: format!(
                "no port `{name}` (ports: {})",
                self.ports.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Width of a port in bits.
    pub fn width(&self, p: PortId) -> usize {
        self.ports[p.0].width
    }

    /// Drive an input from little-endian words (missing high words are zero, bits above the
    /// width are ignored).
    pub fn set(&mut self, p: PortId, words: &[u32]) {
        let spec = &self.ports[p.0];
        assert!(spec.input, "port `{}` is an output", spec.name);
        let mut w = vec![0u32; spec.words()];
        let n = w.len().min(words.len());
        w[..n].copy_from_slice(&words[..n]);
        // SAFETY: `w` holds exactly the port's word count; the index is a valid arm.
        let rc = unsafe { (self.set)(self.handle, p.0 as u32, w.as_ptr()) };
        debug_assert_eq!(rc, 0);
    }

    /// Drive an input from an integer.
    pub fn set_u64(&mut self, p: PortId, v: u64) {
        self.set(p, &[v as u32, (v >> 32) as u32]);
    }

    /// Read a port as little-endian words.
    pub fn get(&self, p: PortId) -> Vec<u32> {
        let mut w = vec![0u32; self.ports[p.0].words()];
        // SAFETY: `w` holds exactly the port's word count.
        let rc = unsafe { (self.get)(self.handle, p.0 as u32, w.as_mut_ptr()) };
        debug_assert_eq!(rc, 0);
        w
    }

    /// Read a port of at most 64 bits.
    pub fn get_u64(&self, p: PortId) -> u64 {
        let w = self.get(p);
        w[0] as u64 | w.get(1).map(|&h| (h as u64) << 32).unwrap_or(0)
    }

    /// Settle combinational logic after changing inputs.
    pub fn eval(&mut self) {
        // SAFETY: valid handle.
        unsafe { (self.eval)(self.handle) }
    }

    /// One clock cycle (falling then rising edge).
    pub fn tick(&mut self) {
        if let Some((from, to)) = self.trace_window {
            let on = self.cycle >= from && self.cycle < to;
            // SAFETY: valid handle.
            unsafe { (self.trace_enable)(self.handle, on as c_int) };
        }
        // SAFETY: valid handle.
        unsafe { (self.tick)(self.handle) };
        self.cycle += 1;
    }

    /// Cycles since the model was created.
    pub fn cycles(&self) -> u64 {
        self.cycle
    }

    /// Tick until `done(self)` holds (checked before each tick); error after `limit` cycles.
    pub fn run_until(&mut self, limit: u64, mut done: impl FnMut(&mut Model) -> bool) -> Result<u64, SimError> {
        let start = self.cycle;
        loop {
            self.eval();
            if done(self) {
                return Ok(self.cycle - start);
            }
            if self.cycle - start >= limit {
                return Err(SimError::Timeout { top: self.top.clone(), cycles: limit });
            }
            self.tick();
        }
    }

    /// Dump cycles `from..to` to an FST file (needs a model built with `trace: true`).
    pub fn trace(&mut self, path: &Path, from: u64, to: u64) -> Result<(), SimError> {
        let c = CString::new(path.to_string_lossy().as_bytes()).expect("path without NUL");
        // SAFETY: valid handle and NUL-terminated path.
        let rc = unsafe { (self.trace_open)(self.handle, c.as_ptr()) };
        if rc != 0 {
            return Err(SimError::Spec {
                top: self.top.clone(),
                msg: "model was built without tracing (BuildSpec::trace)".into(),
            });
        }
        self.trace_window = Some((from, to));
        Ok(())
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            // SAFETY: the handle came from `new` and is freed once; the library is still loaded.
            unsafe { (self.free)(self.handle) };
        }
    }
}
