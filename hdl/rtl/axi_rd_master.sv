// SPDX-License-Identifier: Apache-2.0
//
// axi_rd_master: reads `beats` bus words starting at a bus-aligned address and streams them
// out. The request is cut into INCR bursts of at most MAX_BURST beats that never cross a 4 KiB
// boundary (an AXI rule), with up to MAX_OUTSTANDING bursts in flight so DRAM latency is hidden.
// R data flows straight to the consumer (rready = consumer ready), so no data buffer is needed.
// A new command is accepted as soon as every burst of the previous one has been requested, so
// an engine that issues its next read early (the next key, the next row) finds it already in
// flight; data still comes back in command order.

`default_nettype none

module axi_rd_master #(
  parameter int DATA_W          = 128,  // AXI data width, bits (power of two, >= 32)
  parameter int ADDR_W          = 64,   // AXI address width, bits
  parameter int MAX_BURST       = 64,   // beats per burst, 1..256
  parameter int MAX_OUTSTANDING = 8,    // bursts in flight
  parameter int LEN_W           = 32    // bits of the beat count of one command
) (
  input  wire logic              clk_i,
  input  wire logic              rst_ni,
  // Command.
  input  wire logic              cmd_valid_i,
  output      logic              cmd_ready_o,
  input  wire logic [ADDR_W-1:0] cmd_addr_i,    // multiple of DATA_W/8
  input  wire logic [LEN_W-1:0]  cmd_beats_i,   // >= 1
  // Data out, in address order; last marks the command's final beat.
  output      logic              data_valid_o,
  input  wire logic              data_ready_i,
  output      logic [DATA_W-1:0] data_o,
  output      logic              data_last_o,    // last beat of every command accepted so far
  output      logic              err_o,          // sticky: a read returned an error response
  // AXI4 read channels.
  output      logic [ADDR_W-1:0] m_axi_araddr,
  output      logic [7:0]        m_axi_arlen,
  output      logic [2:0]        m_axi_arsize,
  output      logic [1:0]        m_axi_arburst,
  output      logic              m_axi_arvalid,
  input  wire logic              m_axi_arready,
  input  wire logic [DATA_W-1:0] m_axi_rdata,
  input  wire logic [1:0]        m_axi_rresp,
  input  wire logic              m_axi_rlast,
  input  wire logic              m_axi_rvalid,
  output      logic              m_axi_rready
);

  localparam int BYTES   = DATA_W / 8;
  localparam int OUT_W   = $clog2(MAX_OUTSTANDING + 1);
  localparam int PAGE    = 4096 / BYTES;  // beats per 4 KiB page

  if (MAX_BURST < 1 || MAX_BURST > 256 || MAX_OUTSTANDING < 1 || DATA_W < 32 || (DATA_W & (DATA_W - 1)) != 0)
  begin : g_bad_params
`ifdef __ICARUS__
    axi_rd_master_bad_parameters u_fail ();
`else
    $error("axi_rd_master: DATA_W = %0d (power of two >= 32), MAX_BURST = %0d (1..256), MAX_OUTSTANDING = %0d (>= 1)",
           DATA_W, MAX_BURST, MAX_OUTSTANDING);
`endif
  end

  logic [ADDR_W-1:0] addr_q;      // next burst address
  logic [LEN_W-1:0]  to_issue_q;  // beats not yet requested
  logic [LEN_W-1:0]  to_recv_q;   // beats not yet delivered
  logic [OUT_W-1:0]  outstanding_q;
  logic              ar_pending_q;
  logic [7:0]        arlen_q;

  // The longest burst from an address: to the end of its 4 KiB page, at most MAX_BURST beats.
  // Registered with addr_q as cap_q (worked out in front of the burst's length, the page's
  // subtraction and both compares were the master's longest path).
  function automatic logic [LEN_W-1:0] burst_cap(input logic [ADDR_W-1:0] addr);
    logic [LEN_W-1:0] page_left;
    page_left = LEN_W'(PAGE) - LEN_W'((addr / ADDR_W'(BYTES)) % ADDR_W'(PAGE));
    burst_cap = page_left > LEN_W'(MAX_BURST) ? LEN_W'(MAX_BURST) : page_left;
  endfunction
  logic [LEN_W-1:0] cap_q;
  wire logic [LEN_W-1:0] burst = to_issue_q > cap_q ? cap_q : to_issue_q;
  wire logic [ADDR_W-1:0] addr_next = addr_q + (ADDR_W'(arlen_q) + ADDR_W'(1)) * ADDR_W'(BYTES);

  wire logic ar_fire = m_axi_arvalid && m_axi_arready;
  wire logic r_fire  = m_axi_rvalid && m_axi_rready;
  wire logic r_end   = r_fire && m_axi_rlast;

  wire logic receiving = to_recv_q != '0;
  assign cmd_ready_o   = to_issue_q == '0 && !ar_pending_q;
  assign m_axi_araddr  = addr_q;
  assign m_axi_arlen   = arlen_q;
  assign m_axi_arsize  = 3'($clog2(BYTES));
  assign m_axi_arburst = 2'b01;  // INCR
  assign m_axi_arvalid = ar_pending_q;
  assign m_axi_rready  = receiving && data_ready_i;
  assign data_valid_o  = receiving && m_axi_rvalid;
  assign data_o        = m_axi_rdata;
  assign data_last_o   = to_recv_q == LEN_W'(1);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      addr_q        <= '0;
      cap_q         <= '0;
      to_issue_q    <= '0;
      to_recv_q     <= '0;
      outstanding_q <= '0;
      ar_pending_q  <= 1'b0;
      arlen_q       <= '0;
      err_o         <= 1'b0;
    end else begin
      if (cmd_valid_i && cmd_ready_o) begin
        addr_q     <= cmd_addr_i;
        cap_q      <= burst_cap(cmd_addr_i);
        to_issue_q <= cmd_beats_i;
      end else if (ar_fire) begin
        // Address channel: hold a request until accepted (AXI: valid must not drop).
        ar_pending_q <= 1'b0;
        addr_q       <= addr_next;
        cap_q        <= burst_cap(addr_next);
      end else if (!ar_pending_q && to_issue_q != '0 && 32'(outstanding_q) < MAX_OUTSTANDING) begin
        ar_pending_q <= 1'b1;
        arlen_q      <= 8'(burst - 1);
        to_issue_q   <= to_issue_q - burst;
      end
      to_recv_q <= to_recv_q + (cmd_valid_i && cmd_ready_o ? cmd_beats_i : '0) - LEN_W'(r_fire);
      if (r_fire && m_axi_rresp != 2'b00) err_o <= 1'b1;
      outstanding_q <= outstanding_q + OUT_W'(ar_fire) - OUT_W'(r_end);
    end
  end

endmodule

`resetall
