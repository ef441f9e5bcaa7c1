// SPDX-License-Identifier: Apache-2.0
//
// axil_ctrl: the kernel's AXI4-Lite control slave in the Vitis `ap_ctrl_hs` convention: start,
// done (clear on read), idle, ready, interrupt enables and status, the program-address argument,
// an error word, read-only counters and an identification word. Register offsets are parameters
// set by the generated top level from hdl::regmap, so the map is defined once (in Rust).

`default_nettype none

module axil_ctrl #(
  parameter int          ADDR_W      = 8,             // AXI4-Lite address bits
  parameter int          N_COUNTERS  = 8,             // 64-bit counters
  parameter logic [31:0] OFF_CTRL    = 32'h00,        // register offsets (from hdl::regmap)
  parameter logic [31:0] OFF_GIE     = 32'h04,
  parameter logic [31:0] OFF_IER     = 32'h08,
  parameter logic [31:0] OFF_ISR     = 32'h0c,
  parameter logic [31:0] OFF_PROGRAM = 32'h10,
  parameter logic [31:0] OFF_ERROR   = 32'h18,
  parameter logic [31:0] OFF_COUNTERS = 32'h40,
  parameter logic [31:0] OFF_MAGIC   = 32'h80,
  parameter logic [31:0] MAGIC_VALUE = 32'h7472_7401
) (
  input  wire logic                     clk_i,
  input  wire logic                     rst_ni,
  // AXI4-Lite slave.
  input  wire logic [ADDR_W-1:0]        s_axi_awaddr,
  input  wire logic                     s_axi_awvalid,
  output      logic                     s_axi_awready,
  input  wire logic [31:0]              s_axi_wdata,
  input  wire logic [3:0]               s_axi_wstrb,
  input  wire logic                     s_axi_wvalid,
  output      logic                     s_axi_wready,
  output      logic [1:0]               s_axi_bresp,
  output      logic                     s_axi_bvalid,
  input  wire logic                     s_axi_bready,
  input  wire logic [ADDR_W-1:0]        s_axi_araddr,
  input  wire logic                     s_axi_arvalid,
  output      logic                     s_axi_arready,
  output      logic [31:0]              s_axi_rdata,
  output      logic [1:0]               s_axi_rresp,
  output      logic                     s_axi_rvalid,
  input  wire logic                     s_axi_rready,
  // To and from the kernel.
  output      logic                     start_o,      // one-cycle pulse
  output      logic [63:0]              program_o,
  input  wire logic                     done_i,       // one-cycle pulse
  input  wire logic                     busy_i,
  input  wire logic [31:0]              error_i,
  input  wire logic [64*N_COUNTERS-1:0] counters_i,
  output      logic                     interrupt_o
);

  logic        start_q, done_q, auto_restart_q, gie_q;
  logic [1:0]  ier_q, isr_q;
  logic [63:0] program_q;

  // ---------------------------------------------------------------- writes
  // Address and data are taken together (the host driver always sends both).
  logic bvalid_q;
  wire logic w_fire = s_axi_awvalid && s_axi_wvalid && !bvalid_q;
  assign s_axi_awready = w_fire;
  assign s_axi_wready  = w_fire;
  assign s_axi_bvalid  = bvalid_q;
  assign s_axi_bresp   = 2'b00;
  wire logic [31:0] waddr = 32'(s_axi_awaddr);

  function automatic logic [31:0] merge(input logic [31:0] old, input logic [31:0] data, input logic [3:0] strb);
    logic [31:0] r;
    for (int b = 0; b < 4; b++) r[8*b +: 8] = strb[b] ? data[8*b +: 8] : old[8*b +: 8];
    merge = r;
  endfunction

  // ---------------------------------------------------------------- reads
  logic        rvalid_q;
  logic [31:0] rdata_q;
  wire logic   r_fire = s_axi_arvalid && !rvalid_q;
  assign s_axi_arready = r_fire;
  assign s_axi_rvalid  = rvalid_q;
  assign s_axi_rdata   = rdata_q;
  assign s_axi_rresp   = 2'b00;
  wire logic [31:0] raddr = 32'(s_axi_araddr);

  logic [31:0] rvalue;
  always_comb begin
    rvalue = '0;
    if (raddr == OFF_CTRL) rvalue = {24'(0), auto_restart_q, 3'(0), !busy_i, !busy_i && !start_q, done_q, start_q};
    else if (raddr == OFF_GIE) rvalue = 32'(gie_q);
    else if (raddr == OFF_IER) rvalue = 32'(ier_q);
    else if (raddr == OFF_ISR) rvalue = 32'(isr_q);
    else if (raddr == OFF_PROGRAM) rvalue = program_q[31:0];
    else if (raddr == OFF_PROGRAM + 4) rvalue = program_q[63:32];
    else if (raddr == OFF_ERROR) rvalue = error_i;
    else if (raddr == OFF_MAGIC) rvalue = MAGIC_VALUE;
    else begin
      for (int i = 0; i < N_COUNTERS; i++) begin
        if (raddr == OFF_COUNTERS + 32'(8 * i)) rvalue = counters_i[64*i +: 32];
        if (raddr == OFF_COUNTERS + 32'(8 * i + 4)) rvalue = counters_i[64*i+32 +: 32];
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      start_q        <= 1'b0;
      done_q         <= 1'b0;
      auto_restart_q <= 1'b0;
      gie_q          <= 1'b0;
      ier_q          <= '0;
      isr_q          <= '0;
      program_q      <= '0;
      bvalid_q       <= 1'b0;
      rvalid_q       <= 1'b0;
      rdata_q        <= '0;
      start_o        <= 1'b0;
    end else begin
      start_o <= 1'b0;
      // ap_start stays set until the kernel takes it (it is idle), then reads as 0.
      if (start_q && !busy_i) begin
        start_o <= 1'b1;
        start_q <= auto_restart_q;
      end
      if (done_i) begin
        done_q <= 1'b1;
        if (ier_q[0]) isr_q[0] <= 1'b1;
      end
      if (w_fire) begin
        bvalid_q <= 1'b1;
        if (waddr == OFF_CTRL) begin
          if (s_axi_wstrb[0] && s_axi_wdata[0]) start_q <= 1'b1;
          if (s_axi_wstrb[0]) auto_restart_q <= s_axi_wdata[7];
        end else if (waddr == OFF_GIE) begin
          gie_q <= merge(32'(gie_q), s_axi_wdata, s_axi_wstrb) != 0;
        end else if (waddr == OFF_IER) begin
          ier_q <= s_axi_wstrb[0] ? s_axi_wdata[1:0] : ier_q;
        end else if (waddr == OFF_ISR) begin
          if (s_axi_wstrb[0]) isr_q <= isr_q ^ s_axi_wdata[1:0];  // toggle on write
        end else if (waddr == OFF_PROGRAM) begin
          program_q[31:0] <= merge(program_q[31:0], s_axi_wdata, s_axi_wstrb);
        end else if (waddr == OFF_PROGRAM + 4) begin
          program_q[63:32] <= merge(program_q[63:32], s_axi_wdata, s_axi_wstrb);
        end
      end else if (bvalid_q && s_axi_bready) begin
        bvalid_q <= 1'b0;
      end
      if (r_fire) begin
        rvalid_q <= 1'b1;
        rdata_q  <= rvalue;
        if (raddr == OFF_CTRL && !done_i) done_q <= 1'b0;  // ap_done clears on read
      end else if (rvalid_q && s_axi_rready) begin
        rvalid_q <= 1'b0;
      end
    end
  end

  assign program_o   = program_q;
  assign interrupt_o = gie_q && (isr_q != 2'b00);

endmodule

`resetall
