// SPDX-License-Identifier: Apache-2.0
//
// requant: where a per-token binary32 scale meets integer vector lanes (docs/numerics.md §0):
// out[l] = sat_i32(round_half_even(x[l] * s * 2^FRAC)), computed exactly — the product with the
// scale's 24-bit significand is exact and a single shift rounds (requant_round, which decodes
// the shared shift once for all lanes). Used to dequantize linear-layer accumulators
// (FRAC = 16): LANES output columns share one scale.
//
// Four pipeline stages (each lane's product in mul_pieces' two -- the DSPs' pieces, then their
// sum --, then the shift and the rounding's tests, then the rounding and saturation); `valid`
// travels alongside. The scale's shift is decoded in the second, beside the pieces' sum
// (requant_round's DECODE_REG): decoding it in front of the rounding was op_linear's longest
// path, then the scale's select in front of a combinational multiply and the adder joining its
// DSP tiles, then the shift, rounding and saturation in one stage (requant_round's APPLY_REG).

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

  // Stages 1-2: exact products (mul_pieces); the scale's exponent follows stage 1 so that
  // requant_round decodes it beside stage 2.
  logic                   v1_q, v2_q, v3_q;
  logic [LANES*P_W-1:0]   prod;
  logic [7:0]             e1_q;

  // Scales are non-negative by construction (docs/numerics.md): the sign bit is not used.
  logic unused_sign;
  assign unused_sign = scale_i[31];
  wire logic signed [24:0] m = trit_num::significand(scale_i);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q    <= 1'b0;
      v2_q    <= 1'b0;
      v3_q    <= 1'b0;
      valid_o <= 1'b0;
    end else begin
      v1_q    <= valid_i;
      v2_q    <= v1_q;
      v3_q    <= v2_q;
      valid_o <= v3_q;
    end
  end
  always_ff @(posedge clk_i) e1_q <= scale_i[30:23];
  for (genvar l = 0; l < LANES; l++) begin : g_lane
    wire logic signed [IN_W-1:0] x = x_i[l*IN_W +: IN_W];
    mul_pieces #(.A_W (IN_W), .B_W (25)) u_mul (
      .clk_i, .en1_i (1'b1), .en2_i (1'b1), .a_i (x), .b_i (m), .p_o (prod[l*P_W +: P_W])
    );
  end

  // Stages 3 and 4: shift, round half to even, saturate.
  logic [32*LANES-1:0] y;
  requant_round #(.LANES(LANES), .P_W(P_W), .FRAC(FRAC), .DECODE_REG(1'b1), .APPLY_REG(1'b1)) u_round (
    .clk_i, .en_i (1'b1), .p_i (prod), .e_i (e1_q), .y_o (y)
  );
  always_ff @(posedge clk_i) y_o <= y;

endmodule

`resetall
