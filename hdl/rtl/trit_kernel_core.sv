// SPDX-License-Identifier: Apache-2.0
//
// trit_kernel_core: the accelerator as a Vitis RTL kernel. The host writes a program of
// descriptors (docs/isa.md) into device memory, puts its address in PROGRAM and sets ap_start;
// the command processor here fetches each 64-byte descriptor over the AXI4 master, decodes it
// and runs the engine that implements it, until END. An opcode this build does not implement
// stops the program with an error word (ERROR register) instead of silently skipping it.
//
// Engines so far: EMBED and LINEAR (the TLMM unit). The others (NORM_QUANT, ROPE_KV, ATTENTION,
// FFN_ACT, LM_HEAD) plug into the same dispatch as they are built (issue 5).

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
  parameter logic [31:0] MAGIC_VALUE  = 32'h7472_7401
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
  output      logic                   m_axi_gmem0_bready
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
  logic [63:0] cycles_q, rd_bytes_q, wr_bytes_q, descriptors_q, vector_busy_q, tlmm_busy_q;

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
    .counters_i ({descriptors_q, wr_bytes_q, rd_bytes_q, 64'd0, vector_busy_q, 64'd0, tlmm_busy_q, cycles_q}),
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
    .data_valid_i (wr_valid), .data_ready_o (wr_ready), .data_i (wr_data), .strb_i ({BYTES{1'b1}}),
    .done_o (wr_done), .err_o (wr_err),
    .m_axi_awaddr (m_axi_gmem0_awaddr), .m_axi_awlen (m_axi_gmem0_awlen), .m_axi_awsize (m_axi_gmem0_awsize),
    .m_axi_awburst (m_axi_gmem0_awburst), .m_axi_awvalid (m_axi_gmem0_awvalid), .m_axi_awready (m_axi_gmem0_awready),
    .m_axi_wdata (m_axi_gmem0_wdata), .m_axi_wstrb (m_axi_gmem0_wstrb), .m_axi_wlast (m_axi_gmem0_wlast),
    .m_axi_wvalid (m_axi_gmem0_wvalid), .m_axi_wready (m_axi_gmem0_wready),
    .m_axi_bresp (m_axi_gmem0_bresp), .m_axi_bvalid (m_axi_gmem0_bvalid), .m_axi_bready (m_axi_gmem0_bready)
  );

  // ---------------------------------------------------------------- command processor
  typedef enum logic [2:0] {IDLE, FETCH_CMD, FETCH_DATA, DECODE, EXEC, FINISH} state_e;
  state_e state_q;
  logic [511:0] desc_q;
  logic [63:0]  pc_q;
  logic [7:0]   beat_q;
  logic [15:0]  index_q;
  logic         have_setup_q;
  logic [31:0]  hidden_q;

  wire logic [7:0]  opcode = desc_q[7:0];
  wire logic [15:0] tokens = desc_q[31:16];
  function automatic logic [63:0] addr_field(input logic [511:0] d, input int i);
    addr_field = d[128 + 64*i +: 64];
  endfunction

  localparam logic [7:0] OP_END = 8'h00, OP_SETUP = 8'h01, OP_EMBED = 8'h10, OP_LINEAR = 8'h12;

  // Engines.
  logic [DATA_W-1:0] l_wr_data, e_wr_data;
  logic embed_start, embed_done;
  logic e_rd_cmd_valid, e_rd_ready, e_wr_cmd_valid, e_wr_valid;
  logic [63:0] e_rd_cmd_addr, e_wr_cmd_addr;
  logic [31:0] e_rd_cmd_beats, e_wr_cmd_beats;

  op_embed #(.DATA_W(DATA_W), .MAX_TOKENS(MAX_TOKENS)) u_embed (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .start_i (embed_start), .tokens_i (tokens), .hidden_i (hidden_q),
    .ids_i (addr_field(desc_q, 0)), .table_i (addr_field(desc_q, 1)), .dst_i (addr_field(desc_q, 2)),
    .done_o (embed_done),
    .rd_cmd_valid_o (e_rd_cmd_valid), .rd_cmd_ready_i (rd_cmd_ready), .rd_cmd_addr_o (e_rd_cmd_addr),
    .rd_cmd_beats_o (e_rd_cmd_beats), .rd_valid_i (rd_valid), .rd_ready_o (e_rd_ready), .rd_data_i (rd_data),
    .wr_cmd_valid_o (e_wr_cmd_valid), .wr_cmd_ready_i (wr_cmd_ready), .wr_cmd_addr_o (e_wr_cmd_addr),
    .wr_cmd_beats_o (e_wr_cmd_beats), .wr_valid_o (e_wr_valid), .wr_ready_i (wr_ready), .wr_data_o (e_wr_data),
    .wr_done_i (wr_done)
  );

  logic lin_start, lin_done, lin_err, lin_busy;
  logic l_rd_cmd_valid, l_rd_ready, l_wr_cmd_valid, l_wr_valid;
  logic [63:0] l_rd_cmd_addr, l_wr_cmd_addr;
  logic [31:0] l_rd_cmd_beats, l_wr_cmd_beats;

  op_linear #(
    .DATA_W (DATA_W), .G (G), .TABLES (TABLES), .COLS (COLS), .ENTRY_W (ENTRY_W), .ACC_W (ACC_W),
    .MAX_TOKENS (MAX_TOKENS), .MAX_BLOCKS (MAX_BLOCKS), .MAX_STEPS (MAX_STEPS), .PIPE (PIPE), .WBUF_DEPTH (WBUF_DEPTH)
  ) u_linear (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .start_i (lin_start), .tokens_i (tokens), .k_i (desc_q[63:32]), .n_i (desc_q[95:64]), .w_scale_i (desc_q[127:96]),
    .codes_i (addr_field(desc_q, 0)), .scales_i (addr_field(desc_q, 1)), .weights_i (addr_field(desc_q, 2)),
    .dst_i (addr_field(desc_q, 3)), .accumulate_i (desc_q[8]),
    .done_o (lin_done), .err_o (lin_err), .busy_o (lin_busy),
    .rd_cmd_valid_o (l_rd_cmd_valid), .rd_cmd_ready_i (rd_cmd_ready), .rd_cmd_addr_o (l_rd_cmd_addr),
    .rd_cmd_beats_o (l_rd_cmd_beats), .rd_valid_i (rd_valid), .rd_ready_o (l_rd_ready), .rd_data_i (rd_data),
    .wr_cmd_valid_o (l_wr_cmd_valid), .wr_cmd_ready_i (wr_cmd_ready), .wr_cmd_addr_o (l_wr_cmd_addr),
    .wr_cmd_beats_o (l_wr_cmd_beats), .wr_valid_o (l_wr_valid), .wr_ready_i (wr_ready), .wr_data_o (l_wr_data),
    .wr_done_i (wr_done)
  );

  // The memory masters serve the descriptor fetch or the engine of the running op.
  wire logic fetching = state_q == FETCH_CMD || state_q == FETCH_DATA;
  wire logic lin_sel  = opcode == OP_LINEAR;
  assign rd_cmd_valid = fetching ? state_q == FETCH_CMD : (lin_sel ? l_rd_cmd_valid : e_rd_cmd_valid);
  assign rd_cmd_addr  = fetching ? pc_q : (lin_sel ? l_rd_cmd_addr : e_rd_cmd_addr);
  assign rd_cmd_beats = fetching ? 32'(DESC_BEATS) : (lin_sel ? l_rd_cmd_beats : e_rd_cmd_beats);
  assign rd_ready     = fetching ? state_q == FETCH_DATA : (lin_sel ? l_rd_ready : e_rd_ready);
  assign wr_cmd_valid = !fetching && (lin_sel ? l_wr_cmd_valid : e_wr_cmd_valid);
  assign wr_cmd_addr  = lin_sel ? l_wr_cmd_addr : e_wr_cmd_addr;
  assign wr_cmd_beats = lin_sel ? l_wr_cmd_beats : e_wr_cmd_beats;
  assign wr_valid     = !fetching && (lin_sel ? l_wr_valid : e_wr_valid);
  assign wr_data      = lin_sel ? l_wr_data : e_wr_data;

  assign embed_start = state_q == DECODE && opcode == OP_EMBED && have_setup_q;
  assign lin_start   = state_q == DECODE && opcode == OP_LINEAR && have_setup_q;
  wire logic op_done = embed_done || lin_done;

  always_ff @(posedge ap_clk or negedge ap_rst_n) begin
    if (!ap_rst_n) begin
      state_q       <= IDLE;
      desc_q        <= '0;
      pc_q          <= '0;
      beat_q        <= '0;
      index_q       <= '0;
      have_setup_q  <= 1'b0;
      hidden_q      <= '0;
      busy_q        <= 1'b0;
      done_q        <= 1'b0;
      error_q       <= '0;
      cycles_q      <= '0;
      rd_bytes_q    <= '0;
      wr_bytes_q    <= '0;
      descriptors_q <= '0;
      vector_busy_q <= '0;
      tlmm_busy_q   <= '0;
    end else begin
      done_q <= 1'b0;
      if (busy_q) cycles_q <= cycles_q + 1;
      if (m_axi_gmem0_rvalid && m_axi_gmem0_rready) rd_bytes_q <= rd_bytes_q + 64'(BYTES);
      if (m_axi_gmem0_wvalid && m_axi_gmem0_wready) wr_bytes_q <= wr_bytes_q + 64'(BYTES);
      if (state_q == EXEC && !lin_sel) vector_busy_q <= vector_busy_q + 1;
      if (lin_busy) tlmm_busy_q <= tlmm_busy_q + 1;
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
          state_q       <= FETCH_CMD;
        end
        FETCH_CMD: if (rd_cmd_ready) begin
          beat_q  <= '0;
          state_q <= FETCH_DATA;
        end
        FETCH_DATA: if (rd_valid) begin
          desc_q[32'(beat_q) * DATA_W % 512 +: DATA_W] <= rd_data;
          beat_q <= beat_q + 1;
          if (32'(beat_q) + 1 == DESC_BEATS) state_q <= DECODE;
        end
        DECODE: begin
          descriptors_q <= descriptors_q + 1;
          if (opcode == OP_END) begin
            state_q <= FINISH;
          end else if (opcode == OP_SETUP) begin
            have_setup_q <= 1'b1;
            hidden_q     <= desc_q[63:32];
            state_q      <= FETCH_CMD;
            pc_q         <= pc_q + 64;
            index_q      <= index_q + 1;
          end else if (!have_setup_q) begin
            error_q <= {index_q, opcode, 8'd2};
            state_q <= FINISH;
          end else if (opcode == OP_EMBED || opcode == OP_LINEAR) begin
            state_q <= EXEC;
          end else begin
            error_q <= {index_q, opcode, 8'd1};
            state_q <= FINISH;
          end
        end
        EXEC: if (op_done) begin
          if (rd_err || wr_err) begin
            error_q <= {index_q, opcode, 8'd3};
            state_q <= FINISH;
          end else if (lin_sel && lin_err) begin
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
  assign unused = ^{rd_last, tokens};

endmodule

`resetall
