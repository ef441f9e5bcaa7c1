// SPDX-License-Identifier: Apache-2.0
//
// requant: where a per-token binary32 scale meets integer vector lanes (docs/numerics.md §0):
// out[l] = sat_i32(round_half_even(x[l] * s * 2^FRAC)), computed exactly — the product with the
// scale's 24-bit significand is exact and a single shift rounds (requant_round, which decodes
// the shared shift once for all lanes). Used to dequantize linear-layer accumulators
// (FRAC = 16): LANES output columns share one scale.
//
// Two pipeline stages (multiply, then shift/round/saturate); `valid` travels alongside. The
// scale's shift is decoded in the first, beside the multiply (requant_round's DECODE_REG):
// decoding it in front of the rounding was op_linear's longest path.

`default_nettype none

module requant #(
  parameter int LANES = 1,
  parameter int IN_W  = 32,  // signed input bits
  parameter int FRAC  = 16   // fraction bits of the result
) (
  input  wire logic                  clk_i,
  input  wire logic                  rst_ni,
  input  wire logic                  valid_i,
  input  wire logic [LANES*IN_W-1:0] x_i,      // lane l at [l*IN_W +: IN_W], signed
  input  wire logic [31:0]           scale_i,  // binary32, non-negative, normal or zero
  output      logic                  valid_o,
  output      logic [32*LANES-1:0]   y_o       // lane l at [32*l +: 32], signed
);

  localparam int P_W = IN_W + 25;  // product bits (signed x times 24-bit unsigned significand)

  // Stage 1: exact products (and, in requant_round, the scale's decoded shift).
  logic                   v1_q;
  logic [LANES*P_W-1:0]   prod_q;

  // Scales are non-negative by construction (docs/numerics.md): the sign bit is not used.
  logic unused_sign;
  assign unused_sign = scale_i[31];
  wire logic signed [24:0] m = trit_num::significand(scale_i);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) v1_q <= 1'b0;
    else v1_q <= valid_i;
  end
  always_ff @(posedge clk_i) begin
    for (int l = 0; l < LANES; l++) prod_q[l*P_W +: P_W] <= P_W'($signed(x_i[l*IN_W +: IN_W])) * P_W'(m);
  end

  // Stage 2: shift, round half to even, saturate.
  logic [32*LANES-1:0] y;
  requant_round #(.LANES(LANES), .P_W(P_W), .FRAC(FRAC), .DECODE_REG(1'b1)) u_round (
    .clk_i, .p_i (prod_q), .e_i (scale_i[30:23]), .y_o (y)
  );
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) valid_o <= 1'b0;
    else valid_o <= v1_q;
  end
  always_ff @(posedge clk_i) y_o <= y;

endmodule

`resetall
