// SPDX-License-Identifier: Apache-2.0
//
// mem_copy: copies `beats` bus words from `src` to `dst` through axi_rd_master and
// axi_wr_master on one AXI4 master port. The smallest complete user of the memory masters: it
// exercises bursts, 4 KiB splitting, outstanding transactions and back-pressure in both
// directions, and is how the simulator's DRAM model and protocol monitor are tested.

`default_nettype none

module mem_copy #(
  parameter int DATA_W          = 128,  // AXI data width, bits
  parameter int ADDR_W          = 64,   // AXI address width, bits
  parameter int MAX_BURST       = 64,   // beats per burst
  parameter int MAX_OUTSTANDING = 8     // bursts in flight per direction
) (
  input  wire logic                ap_clk,
  input  wire logic                ap_rst_n,
  input  wire logic                start_i,
  input  wire logic [ADDR_W-1:0]   src_i,
  input  wire logic [ADDR_W-1:0]   dst_i,
  input  wire logic [31:0]         beats_i,
  output      logic                busy_o,
  output      logic                done_o,
  output      logic                err_o,
  output      logic [ADDR_W-1:0]   m_axi_gmem_araddr,
  output      logic [7:0]          m_axi_gmem_arlen,
  output      logic [2:0]          m_axi_gmem_arsize,
  output      logic [1:0]          m_axi_gmem_arburst,
  output      logic                m_axi_gmem_arvalid,
  input  wire logic                m_axi_gmem_arready,
  input  wire logic [DATA_W-1:0]   m_axi_gmem_rdata,
  input  wire logic [1:0]          m_axi_gmem_rresp,
  input  wire logic                m_axi_gmem_rlast,
  input  wire logic                m_axi_gmem_rvalid,
  output      logic                m_axi_gmem_rready,
  output      logic [ADDR_W-1:0]   m_axi_gmem_awaddr,
  output      logic [7:0]          m_axi_gmem_awlen,
  output      logic [2:0]          m_axi_gmem_awsize,
  output      logic [1:0]          m_axi_gmem_awburst,
  output      logic                m_axi_gmem_awvalid,
  input  wire logic                m_axi_gmem_awready,
  output      logic [DATA_W-1:0]   m_axi_gmem_wdata,
  output      logic [DATA_W/8-1:0] m_axi_gmem_wstrb,
  output      logic                m_axi_gmem_wlast,
  output      logic                m_axi_gmem_wvalid,
  input  wire logic                m_axi_gmem_wready,
  input  wire logic [1:0]          m_axi_gmem_bresp,
  input  wire logic                m_axi_gmem_bvalid,
  output      logic                m_axi_gmem_bready
);

  logic rd_ready, wr_ready, rd_valid, rd_last, wr_data_ready, wr_done, rd_err, wr_err;
  logic [DATA_W-1:0] rd_data;
  logic busy_q;
  wire logic start = start_i && !busy_q;

  axi_rd_master #(.DATA_W(DATA_W), .ADDR_W(ADDR_W), .MAX_BURST(MAX_BURST), .MAX_OUTSTANDING(MAX_OUTSTANDING)) u_rd (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .cmd_valid_i (start), .cmd_ready_o (rd_ready), .cmd_addr_i (src_i), .cmd_beats_i (beats_i),
    .data_valid_o (rd_valid), .data_ready_i (wr_data_ready), .data_o (rd_data), .data_last_o (rd_last),
    .err_o (rd_err),
    .m_axi_araddr (m_axi_gmem_araddr), .m_axi_arlen (m_axi_gmem_arlen), .m_axi_arsize (m_axi_gmem_arsize),
    .m_axi_arburst (m_axi_gmem_arburst), .m_axi_arvalid (m_axi_gmem_arvalid), .m_axi_arready (m_axi_gmem_arready),
    .m_axi_rdata (m_axi_gmem_rdata), .m_axi_rresp (m_axi_gmem_rresp), .m_axi_rlast (m_axi_gmem_rlast),
    .m_axi_rvalid (m_axi_gmem_rvalid), .m_axi_rready (m_axi_gmem_rready)
  );

  axi_wr_master #(.DATA_W(DATA_W), .ADDR_W(ADDR_W), .MAX_BURST(MAX_BURST), .MAX_OUTSTANDING(MAX_OUTSTANDING)) u_wr (
    .clk_i (ap_clk), .rst_ni (ap_rst_n),
    .cmd_valid_i (start), .cmd_ready_o (wr_ready), .cmd_addr_i (dst_i), .cmd_beats_i (beats_i),
    .data_valid_i (rd_valid), .data_ready_o (wr_data_ready), .data_i (rd_data), .strb_i ({(DATA_W/8){1'b1}}),
    .done_o (wr_done), .err_o (wr_err),
    .m_axi_awaddr (m_axi_gmem_awaddr), .m_axi_awlen (m_axi_gmem_awlen), .m_axi_awsize (m_axi_gmem_awsize),
    .m_axi_awburst (m_axi_gmem_awburst), .m_axi_awvalid (m_axi_gmem_awvalid), .m_axi_awready (m_axi_gmem_awready),
    .m_axi_wdata (m_axi_gmem_wdata), .m_axi_wstrb (m_axi_gmem_wstrb), .m_axi_wlast (m_axi_gmem_wlast),
    .m_axi_wvalid (m_axi_gmem_wvalid), .m_axi_wready (m_axi_gmem_wready),
    .m_axi_bresp (m_axi_gmem_bresp), .m_axi_bvalid (m_axi_gmem_bvalid), .m_axi_bready (m_axi_gmem_bready)
  );

  always_ff @(posedge ap_clk or negedge ap_rst_n) begin
    if (!ap_rst_n) busy_q <= 1'b0;
    else if (start) busy_q <= beats_i != '0;
    else if (wr_done) busy_q <= 1'b0;
  end

  assign busy_o = busy_q;
  assign done_o = wr_done;
  assign err_o  = rd_err || wr_err;

  // The copy only starts when both masters are idle (they always are when busy_q is low).
  logic unused;
  assign unused = ^{rd_ready, wr_ready, rd_last};

endmodule

`resetall
