//! The runtime and the command stream, on the reference device: programs built by the runtime,
//! executed descriptor by descriptor from device memory, give exactly the reference's logits.

use host::refdev::RefDevice;
use host::runtime::{DeviceShape, Runtime};
use model::reference::{QuantModel, Reference};
use model::Config;
use std::sync::Arc;

fn variant(edit: &str) -> Config {
    Config::preset_with("tiny", edit).unwrap_or_else(|e| panic!("{e}"))
}

fn setup(cfg: &Config, seed: u64) -> (Reference, Runtime<RefDevice>) {
    let w = model::tiny::random_weights(cfg, seed);
    let q = Arc::new(QuantModel::from_float(cfg, &w));
    let p = hdl::TlmmParams::from_config(cfg);
    let shape = DeviceShape::of(cfg, &p);
    let dev = RefDevice::new(shape.tl, shape.buffer_beats, shape.bus_bytes, 64 << 20);
    (Reference::new(Arc::clone(&q)), Runtime::new(dev, &q, shape).unwrap())
}

fn prompt(n: usize) -> Vec<u32> {
    (0..n as u32).map(|i| (i * 37 + 11) % 256).collect()
}

#[test]
fn runtime_on_the_reference_device_equals_the_reference() {
    let configs = [
        ("tiny", Config::preset("tiny").unwrap()),
        (
            "silu, no sub-norms, MHA, head_dim 32",
            variant("[model]\nffn_activation = \"silu\"\nsub_norms = false\nheads = 2\nkv_heads = 2\nhead_dim = 32\n"),
        ),
        ("GQA 4:1, tied, int4 KV", variant("[model]\nkv_heads = 1\ntied_embeddings = true\n[quant]\nkv = \"int4\"\n")),
    ];
    for (name, cfg) in configs {
        for len in [1, 7, 33] {
            let (mut r, mut rt) = setup(&cfg, 3);
            let p = prompt(len);
            assert_eq!(rt.prefill(&p).unwrap(), r.prefill(&p).unwrap(), "{name}: prefill of {len}");
            let mut next = 5;
            for step in 0..16 {
                let a = rt.decode(next).unwrap();
                let b = r.decode(next).unwrap();
                assert_eq!(a, b, "{name}: prompt {len}, decode step {step}");
                next = model::reference::argmax(&a);
            }
        }
    }
}

#[test]
fn runtime_runs_to_the_context_limit_and_then_refuses() {
    let cfg = variant("[model]\nmax_seq = 24\n");
    let (mut r, mut rt) = setup(&cfg, 9);
    let p = prompt(10);
    assert_eq!(rt.prefill(&p).unwrap(), r.prefill(&p).unwrap());
    for t in 0..14 {
        assert_eq!(rt.decode(t).unwrap(), r.decode(t).unwrap(), "position {}", 10 + t);
    }
    assert_eq!(rt.position(), 24);
    let e = rt.decode(1).unwrap_err().to_string();
    assert!(e.contains("exceed the context length max_seq = 24"), "{e}");
}

#[test]
fn program_errors_name_the_descriptor() {
    use host::device::Device;
    let mut dev = RefDevice::new(model::pack::Tlmm { g: 3, tables: 4, cols: 4, acc_bits: 24 }, 256, 16, 1 << 20);
    let prog = dev.alloc(128).unwrap();
    let mut bytes = hdl::isa::Op::End.encode().to_vec();
    bytes[0] = 0x55;
    dev.write(prog, &bytes).unwrap();
    let e = format!("{:#}", dev.start(prog).unwrap_err());
    assert!(e.contains("unknown opcode 0x55"), "{e}");
    let e = format!("{:#}", dev.write(0x10, &[1]).unwrap_err());
    assert!(e.contains("outside allocated memory"), "{e}");
}
