//! The AXI masters (hdl/rtl/axi_*_master.sv, through mem_copy) against the DRAM model, under
//! the protocol monitor: data arrives intact for any length and alignment to 4 KiB pages, under
//! latency and scarce bandwidth; and the monitor catches a master that breaks the rules.

use sim::axi::{AxiMem, MemTiming};
use sim::{BuildSpec, Model, PortSpec, SimError};
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

fn copy_model(data_bits: usize, max_burst: usize) -> Model {
    mem_copy_model(
        "copy_top",
        &format!("  mem_copy #(.DATA_W({data_bits}), .MAX_BURST({max_burst}), .MAX_OUTSTANDING(4)) u (.*);\n"),
        ports(data_bits),
    )
}

/// A Verilator model of the module `top` with `ports`, whose body (`body`) instantiates
/// mem_copy and the AXI masters.
fn mem_copy_model(top: &str, body: &str, ports: Vec<PortSpec>) -> Model {
    let src = |n: &str| std::fs::read_to_string(format!("{}/../hdl/rtl/{n}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let decls: Vec<String> = ports
        .iter()
        .map(|p| {
            let dir = if p.input { "input  wire logic" } else { "output      logic" };
            let r = if p.width > 1 { format!("[{}:0] ", p.width - 1) } else { String::new() };
            format!("  {dir} {r}{}", p.name)
        })
        .collect();
    let text =
        format!("`default_nettype none\nmodule {top} (\n{}\n);\n{body}endmodule\n`resetall\n", decls.join(",\n"));
    let spec = BuildSpec {
        top: top.into(),
        sources: vec![
            ("axi_rd_master.sv".into(), src("axi_rd_master.sv")),
            ("axi_wr_master.sv".into(), src("axi_wr_master.sv")),
            ("mem_copy.sv".into(), src("mem_copy.sv")),
            (format!("{top}.sv"), text),
        ],
        ports,
        clock: "ap_clk".into(),
        trace: false,
        cache_dir: None,
    };
    let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    Model::new(&spec).unwrap_or_else(|e| panic!("{e}"))
}

/// The AXI4 master's ports as the generator defines them, in the simulator's terms.
fn master_ports(prefix: &str, data_bits: usize, addr_bits: usize) -> Vec<PortSpec> {
    hdl::axi_master_ports(prefix, data_bits, addr_bits)
        .into_iter()
        .map(|p| PortSpec { name: p.name, width: p.width, input: p.dir == hdl::Dir::Input })
        .collect()
}

fn ports(data_bits: usize) -> Vec<PortSpec> {
    let p = |n: &str, w: usize, input: bool| PortSpec { name: n.into(), width: w, input };
    let mut v = vec![
        p("ap_clk", 1, true),
        p("ap_rst_n", 1, true),
        p("start_i", 1, true),
        p("src_i", 64, true),
        p("dst_i", 64, true),
        p("beats_i", 32, true),
        p("busy_o", 1, false),
        p("done_o", 1, false),
        p("err_o", 1, false),
    ];
    v.extend(master_ports("m_axi_gmem_", data_bits, 64));
    v
}

/// Copy `beats` words from `src` to `dst`; returns cycles.
fn copy(m: &mut Model, mem: &mut AxiMem, src: u64, dst: u64, beats: u64) -> Result<u64, SimError> {
    let (start, s, d, n, done) =
        (m.port("start_i")?, m.port("src_i")?, m.port("dst_i")?, m.port("beats_i")?, m.port("done_o")?);
    m.set_u64(s, src);
    m.set_u64(d, dst);
    m.set_u64(n, beats);
    m.set_u64(start, 1);
    let t0 = m.cycles();
    loop {
        mem.drive(m);
        m.eval();
        let finished = m.get_u64(done) == 1;
        mem.observe(m)?;
        m.tick();
        m.set_u64(start, 0);
        if finished {
            return Ok(m.cycles() - t0);
        }
        if m.cycles() - t0 > 200_000 {
            return Err(SimError::Timeout { top: "copy_top".into(), cycles: 200_000 });
        }
    }
}

fn reset(m: &mut Model) {
    let r = m.port("ap_rst_n").unwrap();
    m.set_u64(r, 0);
    m.tick();
    m.set_u64(r, 1);
    m.tick();
}

#[test]
fn copies_are_exact_for_any_length_and_page_alignment() {
    for (bits, burst) in [(128usize, 64usize), (512, 16), (32, 256)] {
        let mut m = copy_model(bits, burst);
        reset(&mut m);
        let bytes = bits as u64 / 8;
        for (timing_name, timing) in [
            ("kv260", MemTiming::from_board(17.1, 250.0, 100.0)),
            (
                "scarce",
                MemTiming {
                    read_latency: 7,
                    write_latency: 3,
                    bytes_per_cycle: bytes as f64 / 3.0,
                    max_outstanding: 2,
                    // Tighter than the shared budget: the port's own limit binds.
                    port_bytes_per_cycle: bytes as f64 / 4.0,
                },
            ),
        ] {
            let mut mem = AxiMem::new(&m, &["m_axi_gmem_"], bits, timing).unwrap();
            for (i, &(src, dst, beats)) in [
                (0x1000_0000u64, 0x2000_0000u64, 1u64),
                (0x1000_0000 + 4096 - bytes, 0x2000_1000, 3), // starts one word before a page end
                (0x1000_2000 - 5 * bytes, 0x2000_3000 - bytes, 70),
                (0x1001_0000, 0x2001_0000, 300),
            ]
            .iter()
            .enumerate()
            {
                let data: Vec<u8> = (0..beats * bytes).map(|x| (x * 7 + i as u64 * 13 + 1) as u8).collect();
                mem.dram.write(src, &data);
                copy(&mut m, &mut mem, src, dst, beats)
                    .unwrap_or_else(|e| panic!("{bits}-bit {timing_name} case {i}: {e}"));
                let mut out = vec![0u8; data.len()];
                mem.dram.read(dst, &mut out);
                assert_eq!(out, data, "{bits}-bit {timing_name} case {i}");
                assert!(mem.idle(), "transactions left in flight");
            }
        }
    }
}

#[test]
fn long_copies_run_at_the_bandwidth_limit() {
    let mut m = copy_model(128, 64);
    reset(&mut m);
    let timing = MemTiming::from_board(17.1, 250.0, 100.0);
    let mut mem = AxiMem::new(&m, &["m_axi_gmem_"], 128, timing).unwrap();
    let beats = 4096;
    let cycles = copy(&mut m, &mut mem, 0x1000_0000, 0x3000_0000, beats).unwrap();
    let (r, w) = mem.traffic();
    assert_eq!((r, w), (beats * 16, beats * 16));
    // One port moves at most one read and one write beat per cycle: 32 of the 68.4 bytes.
    println!("copy of {beats} beats: {cycles} cycles, {:.1} bytes/cycle", (r + w) as f64 / cycles as f64);
    assert!(cycles < beats + 200, "the copy should stream a beat per cycle after the latency: {cycles}");
}

#[test]
fn a_port_limit_caps_one_port_below_the_shared_bandwidth() {
    // A 256-bit master behind a 128-bit port at 333 MHz, kernel at 250 MHz: 21.3 bytes per
    // cycle on the port, though the DRAM would give 68.4 and the master takes 32.
    let mut m = copy_model(256, 64);
    reset(&mut m);
    let port = 16.0 * 333.0 / 250.0;
    let timing = MemTiming::from_board(17.1, 250.0, 100.0).with_port_limit(port);
    let mut mem = AxiMem::new(&m, &["m_axi_gmem_"], 256, timing).unwrap();
    let beats = 2048;
    let cycles = copy(&mut m, &mut mem, 0x1000_0000, 0x3000_0000, beats).unwrap();
    let (r, w) = mem.traffic();
    assert_eq!((r, w), (beats * 32, beats * 32));
    let rate = (r + w) as f64 / cycles as f64;
    println!("copy of {beats} 32-byte beats behind a {port:.1}-byte port: {cycles} cycles, {rate:.1} bytes/cycle");
    // Reads and writes share the port's budget: no more than it, and near it once streaming.
    assert!(rate <= port + 1e-9, "{rate} bytes/cycle through a {port:.1}-byte port");
    assert!(rate > 0.9 * port, "the copy should stream at the port's limit: {rate}");
}

#[test]
fn the_monitor_catches_a_master_that_drops_valid() {
    // A master that raises ARVALID for one cycle and lets it fall without a handshake.
    let bad = r#"
`default_nettype none
module bad (
  input wire logic ap_clk, input wire logic ap_rst_n,
  output logic [63:0] m_axi_gmem_araddr, output logic [7:0] m_axi_gmem_arlen, output logic [2:0] m_axi_gmem_arsize,
  output logic [1:0] m_axi_gmem_arburst, output logic m_axi_gmem_arvalid, input wire logic m_axi_gmem_arready,
  input wire logic [127:0] m_axi_gmem_rdata, input wire logic [1:0] m_axi_gmem_rresp, input wire logic m_axi_gmem_rlast,
  input wire logic m_axi_gmem_rvalid, output logic m_axi_gmem_rready,
  output logic [63:0] m_axi_gmem_awaddr, output logic [7:0] m_axi_gmem_awlen, output logic [2:0] m_axi_gmem_awsize,
  output logic [1:0] m_axi_gmem_awburst, output logic m_axi_gmem_awvalid, input wire logic m_axi_gmem_awready,
  output logic [127:0] m_axi_gmem_wdata, output logic [15:0] m_axi_gmem_wstrb, output logic m_axi_gmem_wlast,
  output logic m_axi_gmem_wvalid, input wire logic m_axi_gmem_wready,
  input wire logic [1:0] m_axi_gmem_bresp, input wire logic m_axi_gmem_bvalid, output logic m_axi_gmem_bready
);
  logic [3:0] n_q;
  always_ff @(posedge ap_clk or negedge ap_rst_n) if (!ap_rst_n) n_q <= '0; else if (n_q != 4'hf) n_q <= n_q + 1;
  assign m_axi_gmem_arvalid = n_q == 4'd2;
  assign m_axi_gmem_araddr = 64'h1000; assign m_axi_gmem_arlen = 8'd0; assign m_axi_gmem_arsize = 3'd4;
  assign m_axi_gmem_arburst = 2'd1; assign m_axi_gmem_rready = 1'b1;
  assign m_axi_gmem_awaddr = '0; assign m_axi_gmem_awlen = '0; assign m_axi_gmem_awsize = 3'd4; assign m_axi_gmem_awburst = 2'd1;
  assign m_axi_gmem_awvalid = 1'b0; assign m_axi_gmem_wdata = '0; assign m_axi_gmem_wstrb = '0; assign m_axi_gmem_wlast = 1'b0;
  assign m_axi_gmem_wvalid = 1'b0; assign m_axi_gmem_bready = 1'b1;
  logic unused; assign unused = ^{m_axi_gmem_arready, m_axi_gmem_rdata, m_axi_gmem_rresp, m_axi_gmem_rlast, m_axi_gmem_rvalid,
    m_axi_gmem_awready, m_axi_gmem_wready, m_axi_gmem_bresp, m_axi_gmem_bvalid};
endmodule
`resetall
"#;
    let mut ports = vec![
        PortSpec { name: "ap_clk".into(), width: 1, input: true },
        PortSpec { name: "ap_rst_n".into(), width: 1, input: true },
    ];
    ports.extend(master_ports("m_axi_gmem_", 128, 64));
    let spec = BuildSpec {
        top: "bad".into(),
        sources: vec![("bad.sv".into(), bad.into())],
        ports,
        clock: "ap_clk".into(),
        trace: false,
        cache_dir: None,
    };
    let mut m = {
        let _g = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        Model::new(&spec).unwrap_or_else(|e| panic!("{e}"))
    };
    reset(&mut m);
    // No outstanding capacity: ARREADY stays low, so the master must hold ARVALID.
    let timing = MemTiming {
        read_latency: 1,
        write_latency: 1,
        bytes_per_cycle: 64.0,
        max_outstanding: 0,
        port_bytes_per_cycle: f64::INFINITY,
    };
    let mut mem = AxiMem::new(&m, &["m_axi_gmem_"], 128, timing).unwrap();
    let mut err = None;
    for _ in 0..10 {
        mem.drive(&mut m);
        m.eval();
        if let Err(e) = mem.observe(&m) {
            err = Some(e.to_string());
            break;
        }
        m.tick();
    }
    let e = err.expect("the monitor must flag the dropped ARVALID");
    assert!(e.contains("ARVALID dropped before ARREADY") && e.contains("m_axi_gmem"), "{e}");
}

/// Three copies, each on its own master (`m_axi_gmem0_` .. `m_axi_gmem2_`), started together.
fn three_copies_model() -> Model {
    let mut ports = vec![
        PortSpec { name: "ap_clk".into(), width: 1, input: true },
        PortSpec { name: "ap_rst_n".into(), width: 1, input: true },
        PortSpec { name: "start_i".into(), width: 1, input: true },
        PortSpec { name: "beats_i".into(), width: 32, input: true },
    ];
    let mut body = String::new();
    for k in 0..3 {
        for (n, w, input) in [("src", 64, true), ("dst", 64, true), ("done", 1, false)] {
            let dir = if input { "i" } else { "o" };
            ports.push(PortSpec { name: format!("{n}{k}_{dir}"), width: w, input });
        }
        let master = master_ports(&format!("m_axi_gmem{k}_"), 128, 64);
        let conns: Vec<String> =
            master.iter().map(|p| format!(".{} ({})", p.name.replace(&format!("gmem{k}_"), "gmem_"), p.name)).collect();
        body.push_str(&format!(
            "  logic busy{k}, err{k};\n  mem_copy #(.DATA_W(128), .MAX_BURST(16), .MAX_OUTSTANDING(4)) u{k} (\n    \
             .ap_clk, .ap_rst_n, .start_i, .src_i (src{k}_i), .dst_i (dst{k}_i), .beats_i, .busy_o (busy{k}),\n    \
             .done_o (done{k}_o), .err_o (err{k}),\n    {}\n  );\n",
            conns.join(", ")
        ));
        ports.extend(master);
    }
    body.push_str("  logic unused;\n  assign unused = ^{busy0, busy1, busy2, err0, err1, err2};\n");
    mem_copy_model("copy3_top", &body, ports)
}

#[test]
fn port_zero_is_served_first_and_the_other_ports_share_the_rest_in_turn() {
    // Three masters that could each move 32 bytes per cycle (a read and a write beat) against
    // a DRAM that gives 40: port 0 (the engines' own traffic, a higher QoS on the board) takes
    // what it can first, ports 1 and 2 (the weight ports) share the rest round-robin, so
    // neither starves behind the other (a fixed order finished port 1 long before port 2).
    let mut m = three_copies_model();
    reset(&mut m);
    let timing = MemTiming {
        read_latency: 20,
        write_latency: 5,
        bytes_per_cycle: 40.0,
        max_outstanding: 4,
        port_bytes_per_cycle: f64::INFINITY,
    };
    let mut mem = AxiMem::new(&m, &["m_axi_gmem0_", "m_axi_gmem1_", "m_axi_gmem2_"], 128, timing).unwrap();
    let beats = 1024u64;
    let (start, n) = (m.port("start_i").unwrap(), m.port("beats_i").unwrap());
    let mut done_ids = Vec::new();
    for k in 0..3u64 {
        let data: Vec<u8> = (0..beats * 16).map(|x| (x * 5 + k * 31 + 3) as u8).collect();
        mem.dram.write(0x1000_0000 * (k + 1), &data);
        let (s, d) = (m.port(&format!("src{k}_i")).unwrap(), m.port(&format!("dst{k}_i")).unwrap());
        m.set_u64(s, 0x1000_0000 * (k + 1));
        m.set_u64(d, 0x8000_0000 + 0x1000_0000 * k);
        done_ids.push(m.port(&format!("done{k}_o")).unwrap());
    }
    m.set_u64(n, beats);
    m.set_u64(start, 1);
    let t0 = m.cycles();
    let mut finished = [None::<u64>; 3];
    while finished.iter().any(|f| f.is_none()) {
        mem.drive(&mut m);
        m.eval();
        for (k, &id) in done_ids.iter().enumerate() {
            if m.get_u64(id) == 1 && finished[k].is_none() {
                finished[k] = Some(m.cycles() - t0);
            }
        }
        mem.observe(&m).unwrap_or_else(|e| panic!("{e}"));
        m.tick();
        m.set_u64(start, 0);
        assert!(m.cycles() - t0 < 100_000, "the copies did not finish: {finished:?}");
    }
    for k in 0..3u64 {
        let mut out = vec![0u8; (beats * 16) as usize];
        mem.dram.read(0x8000_0000 + 0x1000_0000 * k, &mut out);
        let data: Vec<u8> = (0..beats * 16).map(|x| (x * 5 + k * 31 + 3) as u8).collect();
        assert_eq!(out, data, "copy {k}");
    }
    let [c0, c1, c2] = finished.map(|f| f.unwrap() as f64);
    println!("three copies of {beats} beats sharing 40 bytes per cycle: {c0} / {c1} / {c2} cycles");
    // Port 0 streams at its own rate (a beat each way per cycle) as if alone.
    assert!(c0 < beats as f64 + 200.0, "port 0 should not wait for the others: {c0} cycles");
    // The others finish together: neither got ahead of the other by more than a few percent.
    assert!((c1 - c2).abs() < 0.05 * c1.max(c2), "ports 1 and 2 should share in turn: {c1} vs {c2}");
    assert!(c1 > c0 && c2 > c0);
}
