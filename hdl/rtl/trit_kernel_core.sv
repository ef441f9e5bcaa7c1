// SPDX-License-Identifier: Apache-2.0
//
// trit_kernel_core: the accelerator as a Vitis RTL kernel. The host writes a program of
// descriptors (docs/isa.md) into device memory, puts its address in PROGRAM and sets ap_start;
// the command processor here fetches each 64-byte descriptor over the AXI4 master, decodes it
// and runs the engine that implements it, until END. An opcode this build does not implement
// stops the program with an error word (ERROR register) instead of silently skipping it.
//
// Engines: op_embed (EMBED), op_linear (LINEAR, the TLMM unit), op_vector (NORM_QUANT, FFN_ACT),
// op_rope_kv (ROPE_KV), op_attention (ATTENTION), op_lm_head (LM_HEAD). They take turns on the
// two memory masters; the SETUP descriptor's fields (the model's sizes) feed all of them.

`default_nettype none

module trit_kernel_core #(
  parameter int          DATA_W       = 128,           // AXI4 master data width, bits
  parameter int          MAX_TOKENS   = 8,             // tokens per descriptor
  parameter int          G            = 3,             // TLMM: activations per group
  parameter int          TABLES       = 4,             // TLMM: tables per step
  parameter int          COLS         = 4,             // TLMM: rows per cycle
  parameter int          ENTRY_W      = 10,            // TLMM: table entry bits
  parameter int          ACC_W        = 24,            // TLMM: accumulator bits
  parameter int          MAX_BLOCKS   = 40,            // TLMM: largest n / COLS
  parameter int          MAX_STEPS    = 14,            // TLMM: largest steps of k
  parameter int          PIPE         = 1,             // TLMM: pipeline stages
  parameter int          WBUF_DEPTH   = 256,           // TLMM: weight buffer beats
  parameter int          VEC_DEPTH    = 256,           // longest vector row (hidden, ffn, heads x head_dim)
  parameter int          MAX_HIDDEN   = 256,           // longest hidden row (the LM head's input)
  parameter int          MAX_HEAD_DIM = 64,            // largest head dimension
  parameter int          MAX_HEADS    = 4,             // most query heads
  parameter int          MAX_SEQ      = 64,            // longest context
  parameter int          ACT_QMAX     = 127,           // int8 activation code range (model::ops::ACT_QMAX)
  parameter int          HEAD_QMAX    = 32767,         // LM-head activation code range
  parameter int          HEAD_BITS    = 8,             // LM-head weight code width (8 or 4)
  parameter int          LANES        = 16,            // int8 codes per cycle in attention
  parameter int          HEAD_LANES   = 16,            // bytes per port and cycle in the LM head (a bus word)
  parameter int          MEM_PORTS    = 1,             // AXI masters: gmem0 + (MEM_PORTS-1) weight ports
  parameter int          ATTN_QUERIES = 1,             // prefill attention: queries per pass over the keys
  parameter int          ATTN_PORTS   = 1,             // ... memory ports it streams over (gmem0 + ATTN_PORTS-1 weight ports)
  parameter int          CTRL_ADDR_W  = 8,             // AXI4-Lite address bits
  parameter int          N_COUNTERS   = 8,             // 64-bit performance counters
  parameter logic [31:0] OFF_CTRL     = 32'h00,        // register offsets (hdl::regmap)
  parameter logic [31:0] OFF_GIE      = 32'h04,
  parameter logic [31:0] OFF_IER      = 32'h08,
  parameter logic [31:0] OFF_ISR      = 32'h0c,
  parameter logic [31:0] OFF_PROGRAM  = 32'h10,
  parameter logic [31:0] OFF_ERROR    = 32'h18,
  parameter logic [31:0] OFF_COUNTERS = 32'h40,
  parameter logic [31:0] OFF_MAGIC    = 32'h80,
  parameter logic [31:0] MAGIC_VALUE  = 32'h7472_7401,
  parameter int          XP           = MEM_PORTS > 1 ? MEM_PORTS - 1 : 1  // derived: weight-port slots
) (
  input  wire logic                   ap_clk,
  input  wire logic                   ap_rst_n,
  // Vitis names the interrupt port `interrupt`, a C++ keyword-like word for Verilator.
  /* verilator lint_off SYMRSVDWORD */
  output      logic                   interrupt,
  /* verilator lint_on SYMRSVDWORD */
  // AXI4-Lite control.
  input  wire logic [CTRL_ADDR_W-1:0] s_axi_control_awaddr,
  input  wire logic                   s_axi_control_awvalid,
  output      logic                   s_axi_control_awready,
  input  wire logic [31:0]            s_axi_control_wdata,
  input  wire logic [3:0]             s_axi_control_wstrb,
  input  wire logic                   s_axi_control_wvalid,
  output      logic                   s_axi_control_wready,
  output      logic [1:0]             s_axi_control_bresp,
  output      logic                   s_axi_control_bvalid,
  input  wire logic                   s_axi_control_bready,
  input  wire logic [CTRL_ADDR_W-1:0] s_axi_control_araddr,
  input  wire logic                   s_axi_control_arvalid,
  output      logic                   s_axi_control_arready,
  output      logic [31:0]            s_axi_control_rdata,
  output      logic [1:0]             s_axi_control_rresp,
  output      logic                   s_axi_control_rvalid,
  input  wire logic                   s_axi_control_rready,
  // AXI4 master to device memory.
  output      logic [63:0]            m_axi_gmem0_araddr,
  output      logic [7:0]             m_axi_gmem0_arlen,
  output      logic [2:0]             m_axi_gmem0_arsize,
  output      logic [1:0]             m_axi_gmem0_arburst,
  output      logic                   m_axi_gmem0_arvalid,
  input  wire logic                   m_axi_gmem0_arready,
  input  wire logic [DATA_W-1:0]      m_axi_gmem0_rdata,
  input  wire logic [1:0]             m_axi_gmem0_rresp,
  input  wire logic                   m_axi_gmem0_rlast,
  input  wire logic                   m_axi_gmem0_rvalid,
  output      logic                   m_axi_gmem0_rready,
  output      logic [63:0]            m_axi_gmem0_awaddr,
  output      logic [7:0]             m_axi_gmem0_awlen,
  output      logic [2:0]             m_axi_gmem0_awsize,
  output      logic [1:0]             m_axi_gmem0_awburst,
  output      logic                   m_axi_gmem0_awvalid,
  input  wire logic                   m_axi_gmem0_awready,
  output      logic [DATA_W-1:0]      m_axi_gmem0_wdata,
  output      logic [DATA_W/8-1:0]    m_axi_gmem0_wstrb,
  output      logic                   m_axi_gmem0_wlast,
  output      logic                   m_axi_gmem0_wvalid,
  input  wire logic                   m_axi_gmem0_wready,
  input  wire logic [1:0]             m_axi_gmem0_bresp,
  input  wire logic                   m_axi_gmem0_bvalid,
  output      logic                   m_axi_gmem0_bready,
  // Weight-stream masters gmem1.. (read channels, flattened: port 1 in the low bits). With
  // MEM_PORTS = 1 there is one unused slot.
  output      logic [XP*64-1:0]       m_axi_wgt_araddr,
  output      logic [XP*8-1:0]        m_axi_wgt_arlen,
  output      logic [XP*3-1:0]        m_axi_wgt_arsize,
  output      logic [XP*2-1:0]        m_axi_wgt_arburst,
  output      logic [XP-1:0]          m_axi_wgt_arvalid,
  input  wire logic [XP-1:0]          m_axi_wgt_arready,
  input  wire logic [XP*DATA_W-1:0]   m_axi_wgt_rdata,
  input  wire logic [XP*2-1:0]        m_axi_wgt_rresp,
  input  wire logic [XP-1:0]          m_axi_wgt_rlast,
  input  wire logic [XP-1:0]          m_axi_wgt_rvalid,
  output      logic [XP-1:0]          m_axi_wgt_rready
);

  localparam int BYTES      = DATA_W / 8;
  localparam int DESC_BEATS = BYTES >= 64 ? 1 : 64 / BYTES;  // bus words per descriptor

  if (DATA_W < 128 || DATA_W > 512 || (DATA_W & (DATA_W - 1)) != 0) begin : g_bad_width
`ifdef __ICARUS__
    trit_kernel_core_DATA_W_must_be_128_256_or_512 u_fail ();
`else
    $error("trit_kernel_core: DATA_W = %0d, must be 128, 256 or 512", DATA_W);
`endif
  end

  // ---------------------------------------------------------------- control slave
  logic        start, done_q, busy_q;
  logic [63:0] program_addr;
  logic [31:0] error_q;
  logic [63:0] cycles_q, rd_bytes_q, wr_bytes_q, descriptors_q, vector_busy_q, tlmm_busy_q, attention_busy_q;
  logic [63:0] tlmm_stall_q;

  axil_ctrl #(
    .ADDR_W (CTRL_ADDR_W), .N_COUNTERS (N_COUNTERS), .OFF_CTRL (OFF_CTRL), .OFF_GIE (OFF_GIE), .OFF_IER (OFF_IER),
    .OFF_ISR (OFF_ISR), .OFF_PROGRAM (OFF_PROGRAM), .OFF_ERROR (OFF_ERROR), .OFF_COUNTERS (OFF_COUNTERS),
    .OFF_MAGIC (OFF_MAGIC), .MAGIC_VALUE (MAGIC_VALUE)
  ) u_ctrl (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .s_axi_awaddr (s_axi_control_awaddr), .s_axi_awvalid (s_axi_control_awvalid), .s_axi_awready (s_axi_control_awready),
    .s_axi_wdata (s_axi_control_wdata), .s_axi_wstrb (s_axi_control_wstrb), .s_axi_wvalid (s_axi_control_wvalid),
    .s_axi_wready (s_axi_control_wready), .s_axi_bresp (s_axi_control_bresp), .s_axi_bvalid (s_axi_control_bvalid),
    .s_axi_bready (s_axi_control_bready), .s_axi_araddr (s_axi_control_araddr), .s_axi_arvalid (s_axi_control_arvalid),
    .s_axi_arready (s_axi_control_arready), .s_axi_rdata (s_axi_control_rdata), .s_axi_rresp (s_axi_control_rresp),
    .s_axi_rvalid (s_axi_control_rvalid), .s_axi_rready (s_axi_control_rready),
    .start_o (start), .program_o (program_addr), .done_i (done_q), .busy_i (busy_q), .error_i (error_q),
    // Counter order is hdl::regmap::COUNTER_NAMES.
    .counters_i ({descriptors_q, wr_bytes_q, rd_bytes_q, attention_busy_q, vector_busy_q, tlmm_stall_q, tlmm_busy_q,
                  cycles_q}),
    /* verilator lint_off SYMRSVDWORD */
    .interrupt_o (interrupt)
    /* verilator lint_on SYMRSVDWORD */
  );

  // ---------------------------------------------------------------- memory masters
  logic              rd_cmd_valid, rd_cmd_ready, rd_valid, rd_ready, rd_last, rd_err;
  logic [63:0]       rd_cmd_addr;
  logic [31:0]       rd_cmd_beats;
  logic [DATA_W-1:0] rd_data;
  logic              wr_cmd_valid, wr_cmd_ready, wr_valid, wr_ready, wr_done, wr_err;
  logic [63:0]       wr_cmd_addr;
  logic [31:0]       wr_cmd_beats;
  logic [DATA_W-1:0] wr_data;
  logic [BYTES-1:0]  wr_strb;

  axi_rd_master #(.DATA_W(DATA_W)) u_rd (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .cmd_valid_i (rd_cmd_valid), .cmd_ready_o (rd_cmd_ready), .cmd_addr_i (rd_cmd_addr), .cmd_beats_i (rd_cmd_beats),
    .data_valid_o (rd_valid), .data_ready_i (rd_ready), .data_o (rd_data), .data_last_o (rd_last), .err_o (rd_err),
    .m_axi_araddr (m_axi_gmem0_araddr), .m_axi_arlen (m_axi_gmem0_arlen), .m_axi_arsize (m_axi_gmem0_arsize),
    .m_axi_arburst (m_axi_gmem0_arburst), .m_axi_arvalid (m_axi_gmem0_arvalid), .m_axi_arready (m_axi_gmem0_arready),
    .m_axi_rdata (m_axi_gmem0_rdata), .m_axi_rresp (m_axi_gmem0_rresp), .m_axi_rlast (m_axi_gmem0_rlast),
    .m_axi_rvalid (m_axi_gmem0_rvalid), .m_axi_rready (m_axi_gmem0_rready)
  );

  axi_wr_master #(.DATA_W(DATA_W)) u_wr (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .cmd_valid_i (wr_cmd_valid), .cmd_ready_o (wr_cmd_ready), .cmd_addr_i (wr_cmd_addr), .cmd_beats_i (wr_cmd_beats),
    .data_valid_i (wr_valid), .data_ready_o (wr_ready), .data_i (wr_data), .strb_i (wr_strb),
    .done_o (wr_done), .err_o (wr_err),
    .m_axi_awaddr (m_axi_gmem0_awaddr), .m_axi_awlen (m_axi_gmem0_awlen), .m_axi_awsize (m_axi_gmem0_awsize),
    .m_axi_awburst (m_axi_gmem0_awburst), .m_axi_awvalid (m_axi_gmem0_awvalid), .m_axi_awready (m_axi_gmem0_awready),
    .m_axi_wdata (m_axi_gmem0_wdata), .m_axi_wstrb (m_axi_gmem0_wstrb), .m_axi_wlast (m_axi_gmem0_wlast),
    .m_axi_wvalid (m_axi_gmem0_wvalid), .m_axi_wready (m_axi_gmem0_wready),
    .m_axi_bresp (m_axi_gmem0_bresp), .m_axi_bvalid (m_axi_gmem0_bvalid), .m_axi_bready (m_axi_gmem0_bready)
  );

  // Weight-stream masters: op_linear's weight chunks and op_lm_head's vocabulary rows.
  logic [XP-1:0]        w_cmd_valid, w_cmd_ready, w_valid, w_ready, w_last, w_err;
  logic [XP*64-1:0]     w_cmd_addr;
  logic [XP*32-1:0]     w_cmd_beats;
  logic [XP-1:0]        l_w_cmd_valid, l_w_ready, h_w_cmd_valid, h_w_ready, a_w_cmd_valid, a_w_ready;
  logic [XP-1:0]        v_w_cmd_valid, v_w_ready;
  logic [XP*64-1:0]     l_w_cmd_addr, h_w_cmd_addr, a_w_cmd_addr, v_w_cmd_addr;
  logic [XP*32-1:0]     l_w_cmd_beats, h_w_cmd_beats, a_w_cmd_beats, v_w_cmd_beats;
  logic [XP*DATA_W-1:0] w_data;
  for (genvar i = 0; i < XP; i++) begin : g_wport
    if (i < MEM_PORTS - 1) begin : g_on
      axi_rd_master #(.DATA_W(DATA_W)) u_rd (
        .clk_i (ap_clk), .rst_ni (ap_rst_n),
        .cmd_valid_i (w_cmd_valid[i]), .cmd_ready_o (w_cmd_ready[i]), .cmd_addr_i (w_cmd_addr[64*i +: 64]),
        .cmd_beats_i (w_cmd_beats[32*i +: 32]),
        .data_valid_o (w_valid[i]), .data_ready_i (w_ready[i]), .data_o (w_data[DATA_W*i +: DATA_W]),
        .data_last_o (w_last[i]), .err_o (w_err[i]),
        .m_axi_araddr (m_axi_wgt_araddr[64*i +: 64]), .m_axi_arlen (m_axi_wgt_arlen[8*i +: 8]),
        .m_axi_arsize (m_axi_wgt_arsize[3*i +: 3]), .m_axi_arburst (m_axi_wgt_arburst[2*i +: 2]),
        .m_axi_arvalid (m_axi_wgt_arvalid[i]), .m_axi_arready (m_axi_wgt_arready[i]),
        .m_axi_rdata (m_axi_wgt_rdata[DATA_W*i +: DATA_W]), .m_axi_rresp (m_axi_wgt_rresp[2*i +: 2]),
        .m_axi_rlast (m_axi_wgt_rlast[i]), .m_axi_rvalid (m_axi_wgt_rvalid[i]), .m_axi_rready (m_axi_wgt_rready[i])
      );
    end else begin : g_off
      assign w_cmd_ready[i] = 1'b0;
      assign w_valid[i]     = 1'b0;
      assign w_last[i]      = 1'b0;
      assign w_err[i]       = 1'b0;
      assign w_data[DATA_W*i +: DATA_W] = '0;
      assign m_axi_wgt_araddr[64*i +: 64] = '0;
      assign m_axi_wgt_arlen[8*i +: 8]    = '0;
      assign m_axi_wgt_arsize[3*i +: 3]   = '0;
      assign m_axi_wgt_arburst[2*i +: 2]  = '0;
      assign m_axi_wgt_arvalid[i]         = 1'b0;
      assign m_axi_wgt_rready[i]          = 1'b0;
    end
  end

  // Read beats this cycle over every port (the DRAM_READ_BYTES counter).
  logic [3:0] rd_beats;
  always_comb begin
    rd_beats = 4'(m_axi_gmem0_rvalid && m_axi_gmem0_rready);
    for (int i = 0; i < MEM_PORTS - 1; i++) rd_beats = rd_beats + 4'(m_axi_wgt_rvalid[i] && m_axi_wgt_rready[i]);
  end

  // ---------------------------------------------------------------- command processor
  typedef enum logic [2:0] {IDLE, FETCH_CMD, FETCH_DATA, DECODE, EXEC, FINISH} state_e;
  state_e state_q;
  logic [511:0] desc_q;
  logic [511:0] setup_q;  // the last SETUP descriptor: the model's sizes
  logic [63:0]  pc_q;
  logic [7:0]   beat_q;
  logic [15:0]  index_q;
  logic         have_setup_q;

  wire logic [7:0]  opcode = desc_q[7:0];
  wire logic [7:0]  flags  = desc_q[15:8];
  wire logic [15:0] tokens = desc_q[31:16];
  function automatic logic [63:0] addr_field(input logic [511:0] d, input int i);
    addr_field = d[128 + 64*i +: 64];
  endfunction
  // SETUP fields (docs/isa.md).
  wire logic [31:0] s_hidden   = setup_q[63:32];
  wire logic [31:0] s_ffn      = setup_q[95:64];
  wire logic [31:0] s_vocab    = setup_q[127:96];
  wire logic [31:0] s_max_seq  = setup_q[159:128];
  wire logic [7:0]  s_head_bits = setup_q[167:160];
  wire logic [15:0] s_heads    = setup_q[207:192];
  wire logic [15:0] s_kv_heads = setup_q[223:208];
  wire logic [15:0] s_head_dim = setup_q[239:224];
  wire logic [15:0] s_kv_qmax  = setup_q[255:240];
  wire logic [31:0] s_eps      = setup_q[287:256];
  wire logic [31:0] s_score    = setup_q[319:288];

  localparam logic [7:0] OP_END = 8'h00, OP_SETUP = 8'h01, OP_EMBED = 8'h10, OP_NORM_QUANT = 8'h11,
                         OP_LINEAR = 8'h12, OP_ROPE_KV = 8'h13, OP_ATTENTION = 8'h14, OP_FFN_ACT = 8'h15,
                         OP_LM_HEAD = 8'h16;

  // Engines, each with the same memory-master bundle; `sel` picks the one of the running op.
  localparam int N_ENG = 6;
  localparam int E_EMBED = 0, E_LINEAR = 1, E_VECTOR = 2, E_ROPE = 3, E_ATTN = 4, E_HEAD = 5;
  logic [2:0] sel;
  logic       implemented;
  always_comb begin
    sel = 3'(E_EMBED);
    implemented = 1'b1;
    unique case (opcode)
      OP_EMBED:                  sel = 3'(E_EMBED);
      OP_LINEAR:                 sel = 3'(E_LINEAR);
      OP_NORM_QUANT, OP_FFN_ACT: sel = 3'(E_VECTOR);
      OP_ROPE_KV:                sel = 3'(E_ROPE);
      OP_ATTENTION:              sel = 3'(E_ATTN);
      OP_LM_HEAD:                sel = 3'(E_HEAD);
      default:                   implemented = 1'b0;
    endcase
  end

  logic [N_ENG-1:0]  e_start, e_done, e_err, e_rd_cmd_valid, e_rd_ready, e_wr_cmd_valid, e_wr_valid;
  logic [63:0]       e_rd_cmd_addr  [N_ENG];
  logic [31:0]       e_rd_cmd_beats [N_ENG];
  logic [63:0]       e_wr_cmd_addr  [N_ENG];
  logic [31:0]       e_wr_cmd_beats [N_ENG];
  logic [DATA_W-1:0] e_wr_data      [N_ENG];
  logic [BYTES-1:0]  e_wr_strb      [N_ENG];

  // ATTENTION and LM_HEAD take the weight ports over from LINEAR's loader (which may be
  // prefetching the next matrix): they hold the loader off those ports and start once none of
  // its words is in flight there. END does the same, so no read is in flight once the program
  // is done. A prefill FFN_ACT (several tokens) borrows port 1 alone for its up rows: the loader
  // goes on over the other ports (its share on port 1 pauses; chunks that start meanwhile leave
  // port 1 out). In decode the one row is not worth a port of prefetch.
  logic [XP-1:0] lin_ports_busy;
  wire logic wide_ffn     = opcode == OP_FFN_ACT && tokens > 16'd1 && MEM_PORTS > 2;
  wire logic lin_hold_all = opcode == OP_LM_HEAD || opcode == OP_END;
  // ATTENTION takes the weight ports it streams over (ATTN_PORTS - 1 of them); the loader keeps
  // the others and may go on prefetching there.
  localparam logic [XP-1:0] ATTN_WPORTS = XP'((1 << (ATTN_PORTS - 1)) - 1);
  wire logic [XP-1:0] lin_hold = lin_hold_all ? '1 : opcode == OP_ATTENTION ? ATTN_WPORTS :
                                 wide_ffn ? XP'(1) : '0;
  wire logic wait_ports = |(lin_hold & lin_ports_busy);
  for (genvar i = 0; i < N_ENG; i++) begin : g_start
    assign e_start[i] = state_q == DECODE && !wait_ports && have_setup_q && implemented && 32'(sel) == i &&
                        opcode != OP_END && opcode != OP_SETUP;
  end

  op_embed #(.DATA_W(DATA_W), .MAX_TOKENS(MAX_TOKENS)) u_embed (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .start_i (e_start[E_EMBED]), .tokens_i (tokens), .hidden_i (s_hidden),
    .ids_i (addr_field(desc_q, 0)), .table_i (addr_field(desc_q, 1)), .dst_i (addr_field(desc_q, 2)),
    .done_o (e_done[E_EMBED]),
    .rd_cmd_valid_o (e_rd_cmd_valid[E_EMBED]), .rd_cmd_ready_i (rd_cmd_ready), .rd_cmd_addr_o (e_rd_cmd_addr[E_EMBED]),
    .rd_cmd_beats_o (e_rd_cmd_beats[E_EMBED]), .rd_valid_i (rd_valid), .rd_ready_o (e_rd_ready[E_EMBED]),
    .rd_data_i (rd_data),
    .wr_cmd_valid_o (e_wr_cmd_valid[E_EMBED]), .wr_cmd_ready_i (wr_cmd_ready), .wr_cmd_addr_o (e_wr_cmd_addr[E_EMBED]),
    .wr_cmd_beats_o (e_wr_cmd_beats[E_EMBED]), .wr_valid_o (e_wr_valid[E_EMBED]), .wr_ready_i (wr_ready),
    .wr_data_o (e_wr_data[E_EMBED]), .wr_done_i (wr_done)
  );
  assign e_err[E_EMBED]     = 1'b0;
  assign e_wr_strb[E_EMBED] = '1;

  logic lin_busy, lin_stall;
  // Who drives the weight masters (below): LINEAR's loader, or LM_HEAD / ATTENTION while they run.
  localparam logic [1:0] W_LIN = 2'd0, W_HEAD = 2'd1, W_ATTN = 2'd2, W_VEC = 2'd3;
  wire logic [1:0] w_owner = state_q != EXEC ? W_LIN : opcode == OP_LM_HEAD ? W_HEAD :
                             opcode == OP_ATTENTION ? W_ATTN : W_LIN;
  wire logic vec_owns1 = wide_ffn && state_q == EXEC;  // port 1 (slot 0) lent to op_vector
  logic [XP-1:0] lin_owns_w;
  op_linear #(
    .DATA_W (DATA_W), .G (G), .TABLES (TABLES), .COLS (COLS), .ENTRY_W (ENTRY_W), .ACC_W (ACC_W),
    .MAX_TOKENS (MAX_TOKENS), .MAX_BLOCKS (MAX_BLOCKS), .MAX_STEPS (MAX_STEPS), .PIPE (PIPE), .WBUF_DEPTH (WBUF_DEPTH),
    .PORTS (MEM_PORTS)
  ) u_linear (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .start_i (e_start[E_LINEAR]), .tokens_i (tokens), .k_i (desc_q[63:32]), .n_i (desc_q[95:64]),
    .w_scale_i (desc_q[127:96]),
    .codes_i (addr_field(desc_q, 0)), .scales_i (addr_field(desc_q, 1)), .weights_i (addr_field(desc_q, 2)),
    .dst_i (addr_field(desc_q, 3)), .accumulate_i (flags[0]),
    .pf_weights_i (addr_field(desc_q, 4)), .pf_k_i (desc_q[479:448]), .pf_n_i (desc_q[511:480]),
    .hold_i (lin_hold), .flush_i (state_q == IDLE && start), .ports_busy_o (lin_ports_busy),
    .inval_i (|(e_start & ~(N_ENG'(1) << E_LINEAR))),
    .pf_go_i (state_q == DECODE && !wait_ports && opcode == OP_SETUP),
    .done_o (e_done[E_LINEAR]), .err_o (e_err[E_LINEAR]), .busy_o (lin_busy), .stall_o (lin_stall),
    .rd_cmd_valid_o (e_rd_cmd_valid[E_LINEAR]), .rd_cmd_ready_i (rd_cmd_ready),
    .rd_cmd_addr_o (e_rd_cmd_addr[E_LINEAR]), .rd_cmd_beats_o (e_rd_cmd_beats[E_LINEAR]), .rd_valid_i (rd_valid),
    .rd_ready_o (e_rd_ready[E_LINEAR]), .rd_data_i (rd_data),
    .wr_cmd_valid_o (e_wr_cmd_valid[E_LINEAR]), .wr_cmd_ready_i (wr_cmd_ready),
    .wr_cmd_addr_o (e_wr_cmd_addr[E_LINEAR]), .wr_cmd_beats_o (e_wr_cmd_beats[E_LINEAR]),
    .wr_valid_o (e_wr_valid[E_LINEAR]), .wr_ready_i (wr_ready), .wr_data_o (e_wr_data[E_LINEAR]), .wr_done_i (wr_done),
    .wrd_cmd_valid_o (l_w_cmd_valid), .wrd_cmd_ready_i (w_cmd_ready & lin_owns_w),
    .wrd_cmd_addr_o (l_w_cmd_addr), .wrd_cmd_beats_o (l_w_cmd_beats), .wrd_valid_i (w_valid & lin_owns_w),
    .wrd_ready_o (l_w_ready), .wrd_data_i (w_data)
  );
  assign e_wr_strb[E_LINEAR] = '1;

  // NORM_QUANT: a n, addr src, norm, codes, scales. FFN_ACT: flags activation, addr gate, up,
  // norm, codes, scales; n is the model's ffn.
  wire logic is_ffn = opcode == OP_FFN_ACT;
  op_vector #(.DATA_W (DATA_W), .DEPTH (VEC_DEPTH), .ACT_QMAX (ACT_QMAX)) u_vector (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .start_i (e_start[E_VECTOR]), .ffn_i (is_ffn), .silu_i (flags[0]), .wide_i (wide_ffn), .tokens_i (tokens),
    .n_i (is_ffn ? s_ffn : desc_q[63:32]), .src_i (addr_field(desc_q, 0)),
    .up_i (addr_field(desc_q, 1)), .norm_i (addr_field(desc_q, is_ffn ? 2 : 1)),
    .codes_i (addr_field(desc_q, is_ffn ? 3 : 2)), .scales_i (addr_field(desc_q, is_ffn ? 4 : 3)), .eps_i (s_eps),
    .done_o (e_done[E_VECTOR]), .err_o (e_err[E_VECTOR]),
    .rd_cmd_valid_o (e_rd_cmd_valid[E_VECTOR]), .rd_cmd_ready_i (rd_cmd_ready),
    .rd_cmd_addr_o (e_rd_cmd_addr[E_VECTOR]), .rd_cmd_beats_o (e_rd_cmd_beats[E_VECTOR]), .rd_valid_i (rd_valid),
    .rd_ready_o (e_rd_ready[E_VECTOR]), .rd_data_i (rd_data),
    .wr_cmd_valid_o (e_wr_cmd_valid[E_VECTOR]), .wr_cmd_ready_i (wr_cmd_ready),
    .wr_cmd_addr_o (e_wr_cmd_addr[E_VECTOR]), .wr_cmd_beats_o (e_wr_cmd_beats[E_VECTOR]),
    .wr_valid_o (e_wr_valid[E_VECTOR]), .wr_ready_i (wr_ready), .wr_data_o (e_wr_data[E_VECTOR]),
    .wr_strb_o (e_wr_strb[E_VECTOR]), .wr_done_i (wr_done),
    .up_cmd_valid_o (v_w_cmd_valid[0]), .up_cmd_ready_i (w_cmd_ready[0] && vec_owns1),
    .up_cmd_addr_o (v_w_cmd_addr[63:0]), .up_cmd_beats_o (v_w_cmd_beats[31:0]),
    .up_valid_i (w_valid[0] && vec_owns1), .up_ready_o (v_w_ready[0]), .up_data_i (w_data[DATA_W-1:0])
  );
  // The vector engine uses the first weight port only.
  if (XP > 1) begin : g_vec_ports
    assign v_w_cmd_valid[XP-1:1]   = '0;
    assign v_w_ready[XP-1:1]       = '0;
    assign v_w_cmd_addr[XP*64-1:64] = '0;
    assign v_w_cmd_beats[XP*32-1:32] = '0;
  end

  // One quantizer for ROPE_KV's last KV-head slot and ATTENTION's first query: the two never run
  // at once, and a vec_quant is ~3.5 k LUTs (yosys). The one started last holds it; both leave it
  // idle when they finish (every scale taken).
  logic         sq_attn_q;  // ATTENTION holds the shared quantizer (else ROPE_KV)
  logic         r_sq_start, r_sq_in_valid, r_sq_code_ready, a_sq_start, a_sq_in_valid, a_sq_code_ready;
  logic [31:0]  r_sq_n, a_sq_n;
  logic [15:0]  r_sq_qmax, a_sq_qmax;
  logic [127:0] r_sq_in_data, a_sq_in_data;
  logic         sq_ready, sq_in_ready, sq_code_valid, sq_done;
  logic [63:0]  sq_code;
  logic [31:0]  sq_scale;
  always_ff @(posedge ap_clk or negedge ap_rst_n) begin
    if (!ap_rst_n) sq_attn_q <= 1'b0;
    else if (e_start[E_ATTN]) sq_attn_q <= 1'b1;
    else if (e_start[E_ROPE]) sq_attn_q <= 1'b0;
  end
  vec_quant #(.DEPTH (MAX_HEAD_DIM), .LANES (4), .NORM (1'b0)) u_shared_quant (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .g_we_i (1'b0), .g_addr_i ('0), .g_data_i ('0),
    .start_i (sq_attn_q ? a_sq_start : r_sq_start), .ready_o (sq_ready),
    .n_i (sq_attn_q ? a_sq_n : r_sq_n), .ex_i (-32'sd16), .shift_i ('0), .norm_i (1'b0),
    .qmax_i (sq_attn_q ? a_sq_qmax : r_sq_qmax), .eps_i ('0),
    .in_valid_i (sq_attn_q ? a_sq_in_valid : r_sq_in_valid), .in_ready_o (sq_in_ready),
    .in_data_i (sq_attn_q ? a_sq_in_data : r_sq_in_data),
    .code_valid_o (sq_code_valid), .code_ready_i (sq_attn_q ? a_sq_code_ready : r_sq_code_ready), .code_o (sq_code),
    .done_o (sq_done), .scale_o (sq_scale)
  );

  // ROPE_KV: a pos0, addr q, k, v, rope table, layer KV cache.
  op_rope_kv #(
    .DATA_W (DATA_W), .VEC_DEPTH (MAX_HEADS * MAX_HEAD_DIM), .MAX_HEAD_DIM (MAX_HEAD_DIM), .MAX_HEADS (MAX_HEADS),
    .MAX_SEQ (MAX_SEQ)
  ) u_rope (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .start_i (e_start[E_ROPE]), .tokens_i (tokens), .pos0_i (desc_q[63:32]),
    .q_i (addr_field(desc_q, 0)), .k_i (addr_field(desc_q, 1)), .v_i (addr_field(desc_q, 2)),
    .rope_i (addr_field(desc_q, 3)), .kv_i (addr_field(desc_q, 4)),
    .heads_i (s_heads), .kv_heads_i (s_kv_heads), .head_dim_i (s_head_dim), .kv_qmax_i (s_kv_qmax),
    .max_seq_i (s_max_seq),
    .done_o (e_done[E_ROPE]), .err_o (e_err[E_ROPE]),
    .rd_cmd_valid_o (e_rd_cmd_valid[E_ROPE]), .rd_cmd_ready_i (rd_cmd_ready),
    .rd_cmd_addr_o (e_rd_cmd_addr[E_ROPE]), .rd_cmd_beats_o (e_rd_cmd_beats[E_ROPE]), .rd_valid_i (rd_valid),
    .rd_ready_o (e_rd_ready[E_ROPE]), .rd_data_i (rd_data),
    .wr_cmd_valid_o (e_wr_cmd_valid[E_ROPE]), .wr_cmd_ready_i (wr_cmd_ready),
    .wr_cmd_addr_o (e_wr_cmd_addr[E_ROPE]), .wr_cmd_beats_o (e_wr_cmd_beats[E_ROPE]),
    .wr_valid_o (e_wr_valid[E_ROPE]), .wr_ready_i (wr_ready), .wr_data_o (e_wr_data[E_ROPE]),
    .wr_strb_o (e_wr_strb[E_ROPE]), .wr_done_i (wr_done),
    .sq_start_o (r_sq_start), .sq_ready_i (sq_ready && !sq_attn_q), .sq_n_o (r_sq_n), .sq_qmax_o (r_sq_qmax),
    .sq_in_valid_o (r_sq_in_valid), .sq_in_ready_i (sq_in_ready && !sq_attn_q), .sq_in_data_o (r_sq_in_data),
    .sq_code_valid_i (sq_code_valid && !sq_attn_q), .sq_code_ready_o (r_sq_code_ready), .sq_code_i (sq_code),
    .sq_done_i (sq_done && !sq_attn_q), .sq_scale_i (sq_scale)
  );

  // ATTENTION: a pos0, addr q, layer KV cache, dst.
  logic attn_busy;
  localparam int AXP = ATTN_PORTS > 1 ? ATTN_PORTS - 1 : 1;  // its weight-port slots
  logic [XP-1:0] attn_owns_w;  // weight port slot i streams for ATTENTION now
  op_attention #(
    .DATA_W (DATA_W), .MAX_HEAD_DIM (MAX_HEAD_DIM), .MAX_HEADS (MAX_HEADS), .MAX_SEQ (MAX_SEQ),
    .ACT_QMAX (ACT_QMAX), .LANES (LANES), .PORTS (ATTN_PORTS), .QUERIES (ATTN_QUERIES)
  ) u_attention (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .start_i (e_start[E_ATTN]), .tokens_i (tokens), .pos0_i (desc_q[63:32]),
    .q_i (addr_field(desc_q, 0)), .kv_i (addr_field(desc_q, 1)), .dst_i (addr_field(desc_q, 2)),
    .heads_i (s_heads), .kv_heads_i (s_kv_heads), .head_dim_i (s_head_dim), .max_seq_i (s_max_seq),
    .score_scale_i (s_score),
    .done_o (e_done[E_ATTN]), .err_o (e_err[E_ATTN]), .busy_o (attn_busy),
    .rd_cmd_valid_o (e_rd_cmd_valid[E_ATTN]), .rd_cmd_ready_i (rd_cmd_ready),
    .rd_cmd_addr_o (e_rd_cmd_addr[E_ATTN]), .rd_cmd_beats_o (e_rd_cmd_beats[E_ATTN]), .rd_valid_i (rd_valid),
    .rd_ready_o (e_rd_ready[E_ATTN]), .rd_data_i (rd_data),
    .wr_cmd_valid_o (e_wr_cmd_valid[E_ATTN]), .wr_cmd_ready_i (wr_cmd_ready),
    .wr_cmd_addr_o (e_wr_cmd_addr[E_ATTN]), .wr_cmd_beats_o (e_wr_cmd_beats[E_ATTN]),
    .wr_valid_o (e_wr_valid[E_ATTN]), .wr_ready_i (wr_ready), .wr_data_o (e_wr_data[E_ATTN]),
    .wr_strb_o (e_wr_strb[E_ATTN]), .wr_done_i (wr_done),
    .wrd_cmd_valid_o (a_w_cmd_valid[AXP-1:0]), .wrd_cmd_ready_i (w_cmd_ready[AXP-1:0] & attn_owns_w[AXP-1:0]),
    .wrd_cmd_addr_o (a_w_cmd_addr[AXP*64-1:0]), .wrd_cmd_beats_o (a_w_cmd_beats[AXP*32-1:0]),
    .wrd_valid_i (w_valid[AXP-1:0] & attn_owns_w[AXP-1:0]), .wrd_ready_o (a_w_ready[AXP-1:0]),
    .wrd_data_i (w_data[AXP*DATA_W-1:0]),
    .sq_start_o (a_sq_start), .sq_ready_i (sq_ready && sq_attn_q), .sq_n_o (a_sq_n), .sq_qmax_o (a_sq_qmax),
    .sq_in_valid_o (a_sq_in_valid), .sq_in_ready_i (sq_in_ready && sq_attn_q), .sq_in_data_o (a_sq_in_data),
    .sq_code_valid_i (sq_code_valid && sq_attn_q), .sq_code_ready_o (a_sq_code_ready), .sq_code_i (sq_code),
    .sq_done_i (sq_done && sq_attn_q), .sq_scale_i (sq_scale)
  );
  if (XP > AXP) begin : g_attn_ports
    assign a_w_cmd_valid[XP-1:AXP]       = '0;
    assign a_w_ready[XP-1:AXP]           = '0;
    assign a_w_cmd_addr[XP*64-1:AXP*64]  = '0;
    assign a_w_cmd_beats[XP*32-1:AXP*32] = '0;
    logic unused_attn_owns;  // the slots ATTENTION does not use are never its
    assign unused_attn_owns = ^attn_owns_w[XP-1:AXP];
  end

  // LM_HEAD: addr src, final norm, head codes, head scales, logits.
  op_lm_head #(
    .DATA_W (DATA_W), .VEC_DEPTH (MAX_HIDDEN), .HEAD_QMAX (HEAD_QMAX), .HEAD_BITS (HEAD_BITS), .LANES (HEAD_LANES),
    .PORTS (MEM_PORTS)
  ) u_lm_head (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .start_i (e_start[E_HEAD]), .tokens_i (tokens),
    .src_i (addr_field(desc_q, 0)), .norm_i (addr_field(desc_q, 1)), .head_i (addr_field(desc_q, 2)),
    .head_scales_i (addr_field(desc_q, 3)), .dst_i (addr_field(desc_q, 4)),
    .hidden_i (s_hidden), .vocab_i (s_vocab), .eps_i (s_eps), .head_bits_i (s_head_bits),
    .done_o (e_done[E_HEAD]), .err_o (e_err[E_HEAD]),
    .rd_cmd_valid_o (e_rd_cmd_valid[E_HEAD]), .rd_cmd_ready_i (rd_cmd_ready),
    .rd_cmd_addr_o (e_rd_cmd_addr[E_HEAD]), .rd_cmd_beats_o (e_rd_cmd_beats[E_HEAD]), .rd_valid_i (rd_valid),
    .rd_ready_o (e_rd_ready[E_HEAD]), .rd_data_i (rd_data),
    .wr_cmd_valid_o (e_wr_cmd_valid[E_HEAD]), .wr_cmd_ready_i (wr_cmd_ready),
    .wr_cmd_addr_o (e_wr_cmd_addr[E_HEAD]), .wr_cmd_beats_o (e_wr_cmd_beats[E_HEAD]),
    .wr_valid_o (e_wr_valid[E_HEAD]), .wr_ready_i (wr_ready), .wr_data_o (e_wr_data[E_HEAD]),
    .wr_strb_o (e_wr_strb[E_HEAD]), .wr_done_i (wr_done),
    .wrd_cmd_valid_o (h_w_cmd_valid), .wrd_cmd_ready_i (w_cmd_ready & {XP{w_owner == W_HEAD}}),
    .wrd_cmd_addr_o (h_w_cmd_addr), .wrd_cmd_beats_o (h_w_cmd_beats), .wrd_valid_i (w_valid & {XP{w_owner == W_HEAD}}),
    .wrd_ready_o (h_w_ready), .wrd_data_i (w_data)
  );

  // The weight masters belong to LINEAR, or to LM_HEAD / ATTENTION / a wide FFN_ACT while they run.
  for (genvar i = 0; i < XP; i++) begin : g_wmux
    wire logic [1:0] own = i == 0 && vec_owns1 ? W_VEC : w_owner == W_ATTN && !ATTN_WPORTS[i] ? W_LIN : w_owner;
    assign lin_owns_w[i]  = own == W_LIN;
    assign attn_owns_w[i] = own == W_ATTN;
    assign w_cmd_valid[i] = own == W_HEAD ? h_w_cmd_valid[i] : own == W_ATTN ? a_w_cmd_valid[i] :
                            own == W_VEC ? v_w_cmd_valid[i] : l_w_cmd_valid[i];
    assign w_cmd_addr[64*i +: 64] = own == W_HEAD ? h_w_cmd_addr[64*i +: 64] : own == W_ATTN ? a_w_cmd_addr[64*i +: 64] :
                                    own == W_VEC ? v_w_cmd_addr[64*i +: 64] : l_w_cmd_addr[64*i +: 64];
    assign w_cmd_beats[32*i +: 32] = own == W_HEAD ? h_w_cmd_beats[32*i +: 32] :
                                     own == W_ATTN ? a_w_cmd_beats[32*i +: 32] :
                                     own == W_VEC ? v_w_cmd_beats[32*i +: 32] : l_w_cmd_beats[32*i +: 32];
    assign w_ready[i] = own == W_HEAD ? h_w_ready[i] : own == W_ATTN ? a_w_ready[i] :
                        own == W_VEC ? v_w_ready[i] : l_w_ready[i];
  end

  // The memory masters serve the descriptor fetch or the engine of the running op.
  wire logic fetching = state_q == FETCH_CMD || state_q == FETCH_DATA;
  assign rd_cmd_valid = fetching ? state_q == FETCH_CMD : e_rd_cmd_valid[sel];
  assign rd_cmd_addr  = fetching ? pc_q : e_rd_cmd_addr[sel];
  assign rd_cmd_beats = fetching ? 32'(DESC_BEATS) : e_rd_cmd_beats[sel];
  assign rd_ready     = fetching ? state_q == FETCH_DATA : e_rd_ready[sel];
  assign wr_cmd_valid = !fetching && e_wr_cmd_valid[sel];
  assign wr_cmd_addr  = e_wr_cmd_addr[sel];
  assign wr_cmd_beats = e_wr_cmd_beats[sel];
  assign wr_valid     = !fetching && e_wr_valid[sel];
  assign wr_data      = e_wr_data[sel];
  assign wr_strb      = e_wr_strb[sel];
  wire logic op_done = e_done[sel];

  always_ff @(posedge ap_clk or negedge ap_rst_n) begin
    if (!ap_rst_n) begin
      state_q       <= IDLE;
      desc_q        <= '0;
      pc_q          <= '0;
      beat_q        <= '0;
      index_q       <= '0;
      have_setup_q  <= 1'b0;
      setup_q       <= '0;
      busy_q        <= 1'b0;
      done_q        <= 1'b0;
      error_q       <= '0;
      cycles_q      <= '0;
      rd_bytes_q    <= '0;
      wr_bytes_q    <= '0;
      descriptors_q <= '0;
      vector_busy_q <= '0;
      tlmm_busy_q   <= '0;
      tlmm_stall_q  <= '0;
      attention_busy_q <= '0;
    end else begin
      done_q <= 1'b0;
      if (busy_q) cycles_q <= cycles_q + 1;
      rd_bytes_q <= rd_bytes_q + 64'(BYTES) * 64'(rd_beats);
      if (m_axi_gmem0_wvalid && m_axi_gmem0_wready) wr_bytes_q <= wr_bytes_q + 64'(BYTES);
      if (state_q == EXEC && (32'(sel) == E_VECTOR || 32'(sel) == E_ROPE || 32'(sel) == E_HEAD)) begin
        vector_busy_q <= vector_busy_q + 1;
      end
      if (lin_busy) tlmm_busy_q <= tlmm_busy_q + 1;
      if (lin_stall) tlmm_stall_q <= tlmm_stall_q + 1;
      if (attn_busy) attention_busy_q <= attention_busy_q + 1;
      unique case (state_q)
        IDLE: if (start) begin
          busy_q        <= 1'b1;
          pc_q          <= program_addr;
          index_q       <= '0;
          have_setup_q  <= 1'b0;
          error_q       <= '0;
          cycles_q      <= '0;
          rd_bytes_q    <= '0;
          wr_bytes_q    <= '0;
          descriptors_q <= '0;
          vector_busy_q <= '0;
          tlmm_busy_q   <= '0;
          tlmm_stall_q  <= '0;
          attention_busy_q <= '0;
          state_q       <= FETCH_CMD;
        end
        FETCH_CMD: if (rd_cmd_ready) begin
          beat_q  <= '0;
          state_q <= FETCH_DATA;
        end
        FETCH_DATA: if (rd_valid) begin
          // By constant word position (a computed part-select is a 512-bit shifter).
          for (int w = 0; w < DESC_BEATS; w++) begin
            if (32'(beat_q) == w) desc_q[w*DATA_W % 512 +: DATA_W] <= rd_data;
          end
          beat_q <= beat_q + 1;
          if (32'(beat_q) + 1 == DESC_BEATS) state_q <= DECODE;
        end
        DECODE: if (!wait_ports) begin
          descriptors_q <= descriptors_q + 1;
          if (opcode == OP_END) begin
            state_q <= FINISH;
          end else if (opcode == OP_SETUP) begin
            have_setup_q <= 1'b1;
            setup_q      <= desc_q;
            state_q      <= FETCH_CMD;
            pc_q         <= pc_q + 64;
            index_q      <= index_q + 1;
          end else if (!have_setup_q) begin
            error_q <= {index_q, opcode, 8'd2};
            state_q <= FINISH;
          end else if (implemented) begin
            state_q <= EXEC;
          end else begin
            error_q <= {index_q, opcode, 8'd1};
            state_q <= FINISH;
          end
        end
        EXEC: if (op_done) begin
          if (rd_err || wr_err || |w_err) begin
            error_q <= {index_q, opcode, 8'd3};
            state_q <= FINISH;
          end else if (e_err[sel]) begin
            error_q <= {index_q, opcode, 8'd4};
            state_q <= FINISH;
          end else begin
            state_q <= FETCH_CMD;
            pc_q    <= pc_q + 64;
            index_q <= index_q + 1;
          end
        end
        FINISH: begin
          busy_q  <= 1'b0;
          done_q  <= 1'b1;
          state_q <= IDLE;
        end
        default: state_q <= IDLE;
      endcase
    end
  end

  logic unused;
  assign unused = ^{rd_last, w_last, s_vocab, s_max_seq, s_heads, s_kv_heads, s_head_dim, s_kv_qmax, s_score, setup_q[191:168],
                   setup_q[511:320], flags[7:1], setup_q[31:0]};

endmodule

`resetall
