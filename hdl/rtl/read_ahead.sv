// SPDX-License-Identifier: Apache-2.0
//
// read_ahead: turns a memory with a one-cycle registered read into a valid/ready stream at full
// rate. The owner issues a read whenever room_o says it fits (the two-entry FIFO plus the read
// in flight, counting a word leaving this cycle) and hands the data over the cycle after;
// clear_i drops what is held and the read in flight (a new job).

`default_nettype none

module read_ahead #(
  parameter int W = 8  // word bits
) (
  input  wire logic         clk_i,
  input  wire logic         rst_ni,
  input  wire logic         clear_i,
  input  wire logic         issue_i,   // a read is issued this cycle (only while room_o)
  input  wire logic [W-1:0] rdata_i,   // the data of the read issued the cycle before
  output      logic         room_o,
  output      logic         valid_o,
  input  wire logic         ready_i,
  output      logic [W-1:0] data_o
);

  logic         inflight_q;
  logic [1:0]   cnt_q;
  logic [W-1:0] fifo_q [2];
  wire logic pop = cnt_q != 2'd0 && ready_i;

  assign room_o  = 32'(cnt_q) + 32'(inflight_q) - 32'(pop) < 2;
  assign valid_o = cnt_q != 2'd0;
  assign data_o  = fifo_q[0];

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      inflight_q <= 1'b0;
      cnt_q      <= '0;
    end else begin
      inflight_q <= issue_i && !clear_i;
      cnt_q      <= clear_i ? 2'd0 : cnt_q + 2'(inflight_q) - 2'(pop);
    end
  end

  always_ff @(posedge clk_i) begin
    // Entry 0 is the head. A pop shifts entry 1 down; a returning read fills the first free slot.
    if (pop) fifo_q[0] <= fifo_q[1];
    if (inflight_q) begin
      if (32'(cnt_q) - 32'(pop) == 0) fifo_q[0] <= rdata_i;
      else fifo_q[1] <= rdata_i;
    end
  end

endmodule

`resetall
