// SPDX-License-Identifier: Apache-2.0
//
// row_addr: the address of a (token, head) in a q-layout row -- base + tok * row + head * hd * 4
// (attention's q vectors and outputs) -- in two registered stages: the two products, then their
// sum. Both multiply-adds in one cycle, in front of a command, were op_attention's longest
// path. Free-running: addr_o is the inputs' address two cycles later (base_i one cycle later:
// it is an op's argument, held while the op runs).

`default_nettype none

module row_addr #(
  parameter int TOK_W = 16,  // token index bits
  parameter int ROW_W = 32   // a row's bytes, bits
) (
  input  wire logic             clk_i,
  input  wire logic [63:0]      base_i,
  input  wire logic [TOK_W-1:0] tok_i,
  input  wire logic [15:0]      head_i,
  input  wire logic [ROW_W-1:0] row_i,  // bytes per token
  input  wire logic [15:0]      hd_i,   // head_dim (int32 elements)
  output      logic [63:0]      addr_o
);

  logic [TOK_W+ROW_W-1:0] row_off_q;
  logic [33:0]            head_off_q;
  always_ff @(posedge clk_i) begin
    row_off_q  <= (TOK_W + ROW_W)'(tok_i) * (TOK_W + ROW_W)'(row_i);
    head_off_q <= 34'(head_i) * 34'(hd_i) * 34'd4;
    addr_o     <= base_i + 64'(row_off_q) + 64'(head_off_q);
  end

endmodule

`resetall
