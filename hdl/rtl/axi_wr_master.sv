// SPDX-License-Identifier: Apache-2.0
//
// axi_wr_master: writes `beats` bus words (with byte strobes) starting at a bus-aligned
// address. Bursts as axi_rd_master (<= MAX_BURST beats, never across 4 KiB, up to
// MAX_OUTSTANDING in flight). Write data for a burst is sent only after its address, in order,
// with WLAST on each burst's last beat. Commands are posted: the next one is accepted as soon as
// every address of the current one has been issued, so a run of short writes (one KV head's codes,
// one scale) does not pay a response latency each. `done_o` pulses once every response of every
// accepted command has arrived (nothing is issuing or in flight), so a following read of the same
// memory sees the data.

`default_nettype none

module axi_wr_master #(
  parameter int DATA_W          = 128,  // AXI data width, bits (power of two, >= 32)
  parameter int ADDR_W          = 64,   // AXI address width, bits
  parameter int MAX_BURST       = 64,   // beats per burst, 1..256
  parameter int MAX_OUTSTANDING = 8,    // bursts in flight
  parameter int LEN_W           = 32    // bits of the beat count of one command
) (
  input  wire logic                clk_i,
  input  wire logic                rst_ni,
  // Command.
  input  wire logic                cmd_valid_i,
  output      logic                cmd_ready_o,
  input  wire logic [ADDR_W-1:0]   cmd_addr_i,   // multiple of DATA_W/8
  input  wire logic [LEN_W-1:0]    cmd_beats_i,  // >= 1
  // Data in, in address order.
  input  wire logic                data_valid_i,
  output      logic                data_ready_o,
  input  wire logic [DATA_W-1:0]   data_i,
  input  wire logic [DATA_W/8-1:0] strb_i,
  output      logic                done_o,       // pulse: all responses received
  output      logic                err_o,        // sticky: an error response
  // AXI4 write channels.
  output      logic [ADDR_W-1:0]   m_axi_awaddr,
  output      logic [7:0]          m_axi_awlen,
  output      logic [2:0]          m_axi_awsize,
  output      logic [1:0]          m_axi_awburst,
  output      logic                m_axi_awvalid,
  input  wire logic                m_axi_awready,
  output      logic [DATA_W-1:0]   m_axi_wdata,
  output      logic [DATA_W/8-1:0] m_axi_wstrb,
  output      logic                m_axi_wlast,
  output      logic                m_axi_wvalid,
  input  wire logic                m_axi_wready,
  input  wire logic [1:0]          m_axi_bresp,
  input  wire logic                m_axi_bvalid,
  output      logic                m_axi_bready
);

  localparam int BYTES = DATA_W / 8;
  localparam int OUT_W = $clog2(MAX_OUTSTANDING + 1);
  localparam int PAGE  = 4096 / BYTES;
  localparam int QW    = MAX_OUTSTANDING > 1 ? $clog2(MAX_OUTSTANDING) : 1;

  if (MAX_BURST < 1 || MAX_BURST > 256 || MAX_OUTSTANDING < 1 || DATA_W < 32 || (DATA_W & (DATA_W - 1)) != 0)
  begin : g_bad_params
`ifdef __ICARUS__
    axi_wr_master_bad_parameters u_fail ();
`else
    $error("axi_wr_master: DATA_W = %0d (power of two >= 32), MAX_BURST = %0d (1..256), MAX_OUTSTANDING = %0d (>= 1)",
           DATA_W, MAX_BURST, MAX_OUTSTANDING);
`endif
  end

  logic              busy_q;         // last cycle: a command issuing or a burst in flight
  logic [ADDR_W-1:0] addr_q;
  logic [LEN_W-1:0]  to_issue_q;     // beats without an address yet
  logic [OUT_W-1:0]  inflight_q;     // bursts addressed but not yet responded
  logic              aw_pending_q;
  logic [7:0]        awlen_q;

  // Lengths of addressed bursts whose data is not fully sent, in order.
  logic [7:0]        lenq_q [MAX_OUTSTANDING];
  logic [QW-1:0]     lenq_head_q, lenq_tail_q;
  logic [OUT_W-1:0]  lenq_cnt_q;
  logic [7:0]        wbeat_q;        // beats sent of the head burst

  wire logic [LEN_W-1:0] page_left = LEN_W'(PAGE) - LEN_W'((addr_q / ADDR_W'(BYTES)) % ADDR_W'(PAGE));
  logic [LEN_W-1:0] burst;
  always_comb begin
    burst = to_issue_q;
    if (burst > LEN_W'(MAX_BURST)) burst = LEN_W'(MAX_BURST);
    if (burst > page_left) burst = page_left;
  end

  wire logic aw_fire = m_axi_awvalid && m_axi_awready;
  wire logic w_fire  = m_axi_wvalid && m_axi_wready;
  wire logic b_fire  = m_axi_bvalid && m_axi_bready;
  wire logic w_head_last = w_fire && wbeat_q == lenq_q[lenq_head_q];

  wire logic issuing  = to_issue_q != '0 || aw_pending_q;
  wire logic busy     = issuing || inflight_q != '0;
  assign cmd_ready_o   = !issuing;
  wire logic cmd_fire = cmd_valid_i && cmd_ready_o;
  assign done_o        = busy_q && !busy;
  assign m_axi_awaddr  = addr_q;
  assign m_axi_awlen   = awlen_q;
  assign m_axi_awsize  = 3'($clog2(BYTES));
  assign m_axi_awburst = 2'b01;
  assign m_axi_awvalid = aw_pending_q;
  assign m_axi_wvalid  = lenq_cnt_q != '0 && data_valid_i;
  assign m_axi_wdata   = data_i;
  assign m_axi_wstrb   = strb_i;
  assign m_axi_wlast   = wbeat_q == lenq_q[lenq_head_q];
  assign data_ready_o  = lenq_cnt_q != '0 && m_axi_wready;
  assign m_axi_bready  = 1'b1;

  always_ff @(posedge clk_i) begin
    if (aw_fire) lenq_q[lenq_tail_q] <= awlen_q;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      busy_q       <= 1'b0;
      addr_q       <= '0;
      to_issue_q   <= '0;
      inflight_q   <= '0;
      aw_pending_q <= 1'b0;
      awlen_q      <= '0;
      lenq_head_q  <= '0;
      lenq_tail_q  <= '0;
      lenq_cnt_q   <= '0;
      wbeat_q      <= '0;
      err_o        <= 1'b0;
    end else begin
      busy_q <= busy;
      // Addresses: a new command only once the previous one's are all issued (cmd_ready_o), so
      // cmd_fire never meets aw_fire or an address being prepared.
      if (cmd_fire) begin
        addr_q     <= cmd_addr_i;
        to_issue_q <= cmd_beats_i;
      end else if (aw_fire) begin
        aw_pending_q <= 1'b0;
        addr_q       <= addr_q + (ADDR_W'(awlen_q) + ADDR_W'(1)) * ADDR_W'(BYTES);
        lenq_tail_q  <= lenq_tail_q == QW'(MAX_OUTSTANDING - 1) ? '0 : lenq_tail_q + 1;
      end else if (!aw_pending_q && to_issue_q != '0 && 32'(inflight_q) < MAX_OUTSTANDING) begin
        aw_pending_q <= 1'b1;
        awlen_q      <= 8'(burst - 1);
        to_issue_q   <= to_issue_q - burst;
      end
      // Data and responses flow across command boundaries.
      if (w_fire) begin
        if (w_head_last) begin
          wbeat_q     <= '0;
          lenq_head_q <= lenq_head_q == QW'(MAX_OUTSTANDING - 1) ? '0 : lenq_head_q + 1;
        end else begin
          wbeat_q <= wbeat_q + 1;
        end
      end
      if (b_fire && m_axi_bresp != 2'b00) err_o <= 1'b1;
      inflight_q <= inflight_q + OUT_W'(aw_fire) - OUT_W'(b_fire);
      lenq_cnt_q <= lenq_cnt_q + OUT_W'(aw_fire) - OUT_W'(w_head_last);
    end
  end

endmodule

`resetall
