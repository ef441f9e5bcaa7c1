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

  // The exponent's range, from its bits: e = exp_i is negative, in 0..255, or in -256..-1.
  wire logic       neg     = exp_i[EXP_W-1];
  wire logic       hi_zero = exp_i[EXP_W-2:8] == '0;
  wire logic       hi_ones = exp_i[EXP_W-2:8] == '1;
  wire logic [7:0] e8      = exp_i[7:0];
  wire logic       e_zero  = !neg && hi_zero && e8 == 8'd0;         // e == 0
  wire logic       e_huge  = !neg && (!hi_zero || e8 == 8'hff);     // e >= 255
  wire logic       e_m23   = neg && hi_ones && e8 == 8'(-23);       // e == -23
  wire logic       e_lt23  = neg && (!hi_ones || e8 < 8'(-23));     // e < -23

  wire logic is_zero  = sig_i == '0;
  wire logic all_ones = &sig_i[26:3];
  // Round to nearest, ties to even, at bit 3 (for e == 0 the increment is only used when it
  // carries all ones up to 2^-126).
  wire logic round_up = e_zero || (sig_i[2] && (sig_i[3] || sig_i[1] || sig_i[0] || sticky_i));
  // {exponent field, fraction} + 1 ulp: a carry out of the fraction lands in the exponent field,
  // which is exactly the renormalization; from e = 254 it gives 255 with fraction 0, i.e. the
  // infinity that RNE overflow requires.
  wire logic [30:0] mag = {e8, sig_i[25:3]} + 31'(round_up);

  wire logic keep        = !neg && (!e_zero || all_ones);  // normal, or rounded up to 2^-126
  // Below the normal range: the zero keeps the sign only when IEEE rounds to zero itself.
  wire logic signed_zero = e_lt23 || (e_m23 && sig_i[25:0] == '0 && !sticky_i);

  always_comb begin
    if (nan_i) begin
      res_o = QNAN;
    end else if (inf_i || (e_huge && !is_zero)) begin
      res_o = {sign_i, 8'hff, 23'd0};       // overflow before rounding
    end else if (is_zero) begin
      res_o = {zsign_i, 31'd0};
    end else if (keep) begin
      res_o = {sign_i, mag};                // normal, or rounded up to the smallest normal
    end else begin
      res_o = {sign_i && signed_zero, 31'd0};  // underflow to zero, or a subnormal flushed to +0
    end
  end

endmodule

`resetall
