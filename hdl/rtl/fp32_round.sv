// SPDX-License-Identifier: Apache-2.0
//
// fp32_round: the last step shared by every operation of fp32_scalar: round an exact-enough
// intermediate to binary32, nearest-even, then flush a subnormal result to +0 (the `ftz` of
// model::numerics, applied *after* rounding).
//
// Input: a significand `sig_i` normalized so that sig_i[26] is the leading one (or all zero for
// an exact zero), the biased exponent `exp_i` of that bit (signed, any value: overflow and
// underflow are decided here), and `sticky_i` = OR of every bit below sig_i[0]. Bits 26..3 are
// the 24-bit significand, bit 2 the round bit, bits 1..0 and sticky_i only matter as "non-zero".
//
// Why no denormalizing shifter: IEEE rounds a value below 2^-126 at the fixed quantum 2^-149,
// and every non-zero subnormal it produces is then flushed to +0. So only three outcomes exist
// below the normal range, each decided by the exponent and a few bits:
//   exp_i == 0 (value in [2^-127, 2^-126)): rounds up to 2^-126 (normal, sign kept) exactly when
//     value >= 2^-126 - 2^-150, i.e. all 24 significand bits are ones; otherwise a subnormal -> +0;
//   exp_i == -23 (value in [2^-150, 2^-149)): exactly 2^-150 is a tie between 0 and 2^-149 and
//     goes to even: a signed zero; anything larger rounds to 2^-149 -> +0;
//   exp_i < -23: rounds to a signed zero (IEEE keeps the sign of an underflow to zero; ftz does
//     not touch zeros), all exponents in between: a subnormal -> +0.
// Overflow rounds to infinity (RNE). NaN and infinity are forced by the caller's flags.

`default_nettype none

module fp32_round #(
  parameter int EXP_W = 12  // bits of the signed biased exponent input (>= 10)
) (
  input  wire logic             sign_i,    // sign of a non-zero result (and of infinity)
  input  wire logic             zsign_i,   // sign of an exact zero result
  input  wire logic [EXP_W-1:0] exp_i,     // biased exponent of sig_i[26], two's complement
  input  wire logic [26:0]      sig_i,     // normalized significand + 3 extra bits, or zero
  input  wire logic             sticky_i,  // OR of the bits below sig_i[0]
  input  wire logic             inf_i,     // result is infinity (sign_i)
  input  wire logic             nan_i,     // result is NaN
  output      logic [31:0]      res_o
);

  if (EXP_W < 10 || EXP_W > 32) begin : g_bad_exp_w
`ifdef __ICARUS__
    fp32_round_parameter_EXP_W_must_be_10_to_32 u_fail ();
`else
    $error("fp32_round: EXP_W = %0d, must be 10..32", EXP_W);
`endif
  end

  localparam logic [31:0] QNAN = 32'h7fc0_0000;  // canonical quiet NaN

  wire logic signed [31:0] e = 32'($signed(exp_i));

  // Round to nearest, ties to even, at bit 3.
  wire logic lsb      = sig_i[3];
  wire logic rnd      = sig_i[2];
  wire logic stk      = sig_i[1] | sig_i[0] | sticky_i;
  wire logic round_up = rnd & (stk | lsb);
  logic        carry;
  /* verilator lint_off UNUSEDSIGNAL */
  logic        hidden;  // the leading one (or 0 after a carry): implied by the exponent
  /* verilator lint_on UNUSEDSIGNAL */
  logic [22:0] frac;
  assign {carry, hidden, frac} = {1'b0, sig_i[26:3]} + 25'(round_up);
  // A carry out leaves 2^24: fraction 0 at the next exponent.
  wire logic signed [31:0] e_r = e + 32'(carry);
  wire logic [7:0] e_field = e_r[7:0];
  wire logic all_ones = &sig_i[26:3];
  wire logic is_zero  = sig_i == '0;

  // Below the normal range: which sign does the (flushed) zero carry?
  wire logic exact_half_ulp = e == -23 && sig_i[25:0] == '0 && !sticky_i;
  wire logic signed_zero    = e < -23 || exact_half_ulp;

  always_comb begin
    if (nan_i) begin
      res_o = QNAN;
    end else if (inf_i) begin
      res_o = {sign_i, 8'hff, 23'd0};
    end else if (is_zero) begin
      res_o = {zsign_i, 31'd0};
    end else if (e_r >= 255) begin
      res_o = {sign_i, 8'hff, 23'd0};            // overflow: RNE gives infinity
    end else if (e >= 1) begin
      res_o = {sign_i, e_field, frac};     // normal
    end else if (e == 0 && all_ones) begin
      res_o = {sign_i, 8'h01, 23'd0};            // rounds up to the smallest normal
    end else if (signed_zero) begin
      res_o = {sign_i, 31'd0};                   // IEEE underflow to zero keeps the sign
    end else begin
      res_o = 32'd0;                             // a subnormal, flushed to +0
    end
  end

endmodule

`resetall
