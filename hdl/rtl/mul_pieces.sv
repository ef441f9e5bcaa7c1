// SPDX-License-Identifier: Apache-2.0
//
// mul_pieces: a signed A_W x B_W-bit product in two registered stages -- a's 17-bit pieces each
// times b (one DSP48E2's 18 x 27-bit product per piece, B_W <= 27), then their sum -- so no
// cycle holds a multiply and the adders that join a wide one's DSP tiles (those were the
// longest paths of the quantizers and the LM head). Stage 1 takes a_i and b_i when en1_i, stage
// 2 sums stage 1 when en2_i: a free-running pipeline ties both to one enable, an elastic one
// gives each stage its own.

`default_nettype none

module mul_pieces #(
  parameter int A_W = 48,
  parameter int B_W = 25
) (
  input  wire logic                    clk_i,
  input  wire logic                    en1_i,
  input  wire logic                    en2_i,
  input  wire logic signed [A_W-1:0]   a_i,
  input  wire logic signed [B_W-1:0]   b_i,
  output      logic signed [A_W+B_W-1:0] p_o
);

  localparam int PIECE = 17;                        // a's bits per piece below the top one
  localparam int NPC   = (A_W + PIECE - 1) / PIECE; // pieces
  localparam int TOP_W = A_W - PIECE * (NPC - 1);   // the top piece's bits (signed)
  localparam int PP_W  = PIECE + 1 + B_W;           // a piece's product
  localparam int P_W   = A_W + B_W;

  if (B_W > 27 || A_W < 2) begin : g_bad_params
`ifdef __ICARUS__
    mul_pieces_bad_parameters u_fail ();
`else
    $error("mul_pieces: A_W = %0d (>= 2), B_W = %0d (<= 27: one DSP per piece)", A_W, B_W);
`endif
  end

  logic signed [PP_W-1:0] pp_q [NPC];
  always_ff @(posedge clk_i) begin
    if (en1_i) begin
      for (int i = 0; i < NPC - 1; i++) pp_q[i] <= PP_W'($signed({1'b0, a_i[PIECE*i +: PIECE]})) * PP_W'(b_i);
      pp_q[NPC-1] <= PP_W'($signed(a_i[PIECE*(NPC-1) +: TOP_W])) * PP_W'(b_i);
    end
    if (en2_i) begin
      logic signed [P_W-1:0] sum;
      sum = '0;
      for (int i = 0; i < NPC; i++) sum = sum + (P_W'(pp_q[i]) <<< (PIECE * i));
      p_o <= sum;
    end
  end

endmodule

`resetall
