// SPDX-License-Identifier: Apache-2.0
//
// requant: the one place a per-token binary32 scale meets an integer vector lane
// (docs/numerics.md §0): out = sat_i32(round_half_even(x * s * 2^FRAC)), computed exactly —
// the product with the scale's 24-bit significand is exact and a single shift rounds. Used to
// dequantize linear-layer accumulators (FRAC = 16) and wherever a scale is applied to a vector.
// Two pipeline stages (multiply, then shift/round/saturate); `valid` travels alongside.

`default_nettype none

module requant #(
  parameter int IN_W = 32,  // signed input bits
  parameter int FRAC = 16   // fraction bits of the result
) (
  input  wire logic                   clk_i,
  input  wire logic                   rst_ni,
  input  wire logic                   valid_i,
  input  wire logic signed [IN_W-1:0] x_i,
  input  wire logic [31:0]            scale_i,   // binary32, non-negative, normal or zero
  output      logic                   valid_o,
  output      logic signed [31:0]     y_o
);

  localparam int P_W = IN_W + 25;  // product bits (signed x times 24-bit unsigned significand)

  // Stage 1: exact product and the shift it needs: result = prod * 2^(exp - 150 + FRAC).
  logic                  v1_q;
  logic signed [P_W-1:0] prod_q;
  logic signed [10:0]    shl_q;  // left shift when >= 0, right shift when < 0

  // Scales are non-negative by construction (docs/numerics.md): the sign bit is not used.
  logic unused_sign;
  assign unused_sign = scale_i[31];
  wire logic [7:0]  e = scale_i[30:23];
  wire logic [23:0] m = e == 8'd0 ? 24'd0 : {1'b1, scale_i[22:0]};  // zero (or flushed) scale

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      v1_q   <= 1'b0;
      prod_q <= '0;
      shl_q  <= '0;
    end else begin
      v1_q   <= valid_i;
      prod_q <= P_W'(x_i) * $signed({1'b0, m});
      shl_q  <= 11'($signed({3'b0, e})) - 11'sd150 + 11'(FRAC);
    end
  end

  // Stage 2: round half to even on right shifts (as trit_num::rne_shift: the round bit and
  // whether any bit below it is set), saturate to int32. A left shift of up to 31 is exact in
  // R_W bits; anything larger saturates every non-zero product.
  localparam int R_W = P_W + 32;
  localparam logic signed [R_W-1:0] MAX = R_W'(32'sh7fff_ffff);
  localparam logic signed [R_W-1:0] MIN = ~MAX;  // -2^31

  logic signed [R_W-1:0] r;
  logic signed [P_W-1:0] t;  // prod >>> (sh - 1): the quotient and the round bit
  logic signed [P_W-1:0] q;
  logic                  round_bit;
  logic                  sticky;
  int                    sh;
  always_comb begin
    r = '0;
    t = '0;
    q = '0;
    round_bit = 1'b0;
    sticky = 1'b0;
    sh = 0 - 32'(shl_q);
    if (prod_q == '0) begin
      r = '0;
    end else if (shl_q > 11'sd31) begin
      r = prod_q < 0 ? MIN : MAX;
    end else if (shl_q >= 0) begin
      r = R_W'(prod_q) <<< shl_q;
    end else if (sh > P_W) begin
      r = '0;  // |prod| < 2^(P_W-1) < half an output step: rounds to 0
    end else begin
      t = prod_q >>> (sh - 1);
      q = t >>> 1;
      round_bit = t[0];
      sticky = |(prod_q & ~({P_W{1'b1}} << (sh - 1)));
      r = R_W'(q) + R_W'(round_bit && (sticky || q[0]));
    end
    if (r > MAX) r = MAX;
    if (r < MIN) r = MIN;
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      valid_o <= 1'b0;
      y_o     <= '0;
    end else begin
      valid_o <= v1_q;
      y_o     <= 32'(r);
    end
  end

endmodule

`resetall
