//! stream_repack: rows of bytes re-cut from bus words into engine words, zero past the row's
//! length, every input word consumed, exactly the requested outputs, under random handshakes.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{BuildSpec, Model, PortSpec};
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

fn build(inb: usize, outb: usize) -> Model {
    let text = include_str!("../../hdl/rtl/stream_repack.sv");
    let top = format!(
        "`default_nettype none\nmodule rp_top (input wire logic clk_i, input wire logic rst_ni, input wire logic start_i,\n  input wire logic [31:0] len_i, input wire logic [31:0] in_words_i, input wire logic [31:0] out_words_i,\n  output logic busy_o, input wire logic in_valid_i, output logic in_ready_o, input wire logic [{}:0] in_data_i,\n  output logic out_valid_o, input wire logic out_ready_i, output logic [{}:0] out_data_o);\n  stream_repack #(.IN_BYTES({inb}), .OUT_BYTES({outb})) u (.*);\nendmodule\n`resetall\n",
        8 * inb - 1,
        8 * outb - 1
    );
    let p = |n: &str, w: usize, input: bool| PortSpec { name: n.into(), width: w, input };
    let spec = BuildSpec {
        top: "rp_top".into(),
        sources: vec![("stream_repack.sv".into(), text.into()), ("rp_top.sv".into(), top)],
        ports: vec![
            p("clk_i", 1, true),
            p("rst_ni", 1, true),
            p("start_i", 1, true),
            p("len_i", 32, true),
            p("in_words_i", 32, true),
            p("out_words_i", 32, true),
            p("busy_o", 1, false),
            p("in_valid_i", 1, true),
            p("in_ready_o", 1, false),
            p("in_data_i", 8 * inb, true),
            p("out_valid_o", 1, false),
            p("out_ready_i", 1, true),
            p("out_data_o", 8 * outb, false),
        ],
        clock: "clk_i".into(),
        trace: false,
        cache_dir: None,
    };
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    Model::new(&spec).unwrap_or_else(|e| panic!("{e}"))
}

fn words(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks(4).map(|c| c.iter().rev().fold(0u32, |a, &b| a << 8 | b as u32)).collect()
}

#[test]
fn rows_are_recut_exactly() {
    for (inb, outb) in [(16usize, 12usize), (16, 84), (64, 12), (16, 4), (64, 100)] {
        let mut m = build(inb, outb);
        let g = |n: &str| m.port(n).unwrap();
        let (rst, start, len, inw, outw, busy, iv, ir, id, ov, or, od) = (
            g("rst_ni"),
            g("start_i"),
            g("len_i"),
            g("in_words_i"),
            g("out_words_i"),
            g("busy_o"),
            g("in_valid_i"),
            g("in_ready_o"),
            g("in_data_i"),
            g("out_valid_o"),
            g("out_ready_i"),
            g("out_data_o"),
        );
        m.set_u64(rst, 0);
        m.tick();
        m.set_u64(rst, 1);
        let mut rng = ChaCha8Rng::seed_from_u64((inb * 1000 + outb) as u64);
        for row in 0..40 {
            let n = rng.random_range(1..700usize);
            let in_words = (n.div_ceil(64) * 64).div_ceil(inb) + rng.random_range(0..2); // padded row (+ a spare word)
            let out_words = n.div_ceil(outb) + rng.random_range(0..2);
            let data: Vec<u8> = (0..in_words * inb).map(|_| rng.random::<u8>()).collect(); // padding is garbage
            m.set_u64(len, n as u64);
            m.set_u64(inw, in_words as u64);
            m.set_u64(outw, out_words as u64);
            m.set_u64(start, 1);
            m.tick();
            m.set_u64(start, 0);
            let (mut sent, mut got) = (0usize, Vec::<u8>::new());
            let mut cycles = 0;
            loop {
                m.eval();
                if m.get_u64(busy) == 0 {
                    break;
                }
                let give = sent < in_words && rng.random_bool(0.7);
                m.set_u64(iv, give as u64);
                if give {
                    m.set(id, &words(&data[sent * inb..(sent + 1) * inb]));
                }
                let take = rng.random_bool(0.7);
                m.set_u64(or, take as u64);
                m.eval();
                if give && m.get_u64(ir) == 1 {
                    sent += 1;
                }
                if take && m.get_u64(ov) == 1 {
                    let w = m.get(od);
                    got.extend(w.iter().flat_map(|x| x.to_le_bytes()).take(outb));
                }
                m.tick();
                cycles += 1;
                assert!(cycles < 100_000, "row {row} hangs");
            }
            assert_eq!(sent, in_words, "({inb},{outb}) row {row}: every input word must be consumed");
            let mut want = data[..n].to_vec();
            want.resize(out_words * outb, 0);
            assert_eq!(got, want, "({inb},{outb}) row {row}: n = {n}");
        }
    }
}
