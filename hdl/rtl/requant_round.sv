// SPDX-License-Identifier: Apache-2.0
//
// requant_round: the rounding half of requant (docs/numerics.md §0) for LANES products that
// share one scale: y[l] = sat_i32(round_half_even(p[l] * 2^(e - 150 + FRAC))), where p[l] is an
// exact product with the scale's significand and e the scale's biased exponent. Combinational;
// callers register around it.
//
// The shift is decoded once (rq_decode: the shift amount, which bits of a product must copy its
// sign for the result to fit, which bits lie below the round bit) and each lane keeps only a
// window shifter, a masked overflow test and a masked sticky bit (rq_apply): no lane shifts a
// full-width value. model::numerics::requant + sat_i32 is the definition; the test `proofs.rs`
// proves rq_apply(p, rq_decode(e)) equal to it for every p and e (not only products with a
// significand).

`default_nettype none

module requant_round #(
  parameter int LANES = 1,
  parameter int P_W   = 57,  // signed product bits
  parameter int FRAC  = 16   // fraction bits of the result
) (
  input  wire logic [LANES*P_W-1:0] p_i,  // lane l at [l*P_W +: P_W], signed
  input  wire logic [7:0]           e_i,  // the scale's biased exponent (0: a zero scale)
  output      logic [32*LANES-1:0]  y_o   // lane l at [32*l +: 32], signed
);

  // [proof: rq_apply begin]
  // The decoded shift, {mode, a, hmask, lmask}. The result is p * 2^sh, sh = e - 150 + FRAC.
  // mode 0: every result 0 (a zero scale, or sh <= -P_W: |p| < 2^(P_W-1) is under half a step);
  // 1: shift; 3: sh > 31, every non-zero p saturates. For mode 1 the lane reads a 34-bit window
  // of {p, 32'b0} >>> a with a = 31 - sh: the low bit is the round bit, the 33 above it the
  // result before rounding (for sh >= 0 the round bit is a padding zero: a left shift is exact).
  // hmask: the bits of p that must copy its sign for that 33-bit result to hold it exactly;
  // lmask: the bits of p below the round bit (the sticky bit). (A packed vector, not a struct:
  // yosys 0.23 does not assign a function's struct members.)
  localparam int A_W = $clog2(P_W + 32);
  localparam int DW  = 2 + A_W + 2 * P_W;
  function automatic logic [DW-1:0] rq_decode(input logic [7:0] e);
    logic signed [10:0] sh;
    logic [1:0]         mode;
    logic [A_W-1:0]     a;
    logic [P_W-1:0]     hmask;
    logic [P_W-1:0]     lmask;
    sh    = 11'($signed({3'b0, e})) - 11'sd150 + 11'(FRAC);
    mode  = 2'd1;
    a     = A_W'(11'sd31 - sh);
    hmask = {P_W{1'b1}} << (11'sd32 - sh);
    lmask = sh < 11'sd0 ? ~({P_W{1'b1}} << (11'sd0 - sh - 11'sd1)) : '0;
    if (e == 8'd0) mode = 2'd0;
    else if (sh > 11'sd31) mode = 2'd3;
    else if (sh < 11'sd0 && 11'sd0 - sh >= 11'(P_W)) mode = 2'd0;
    rq_decode = {mode, a, hmask, lmask};
  endfunction
  /* verilator lint_off UNUSEDSIGNAL */  // w: only the 34-bit window above the shift is read
  function automatic logic signed [31:0] rq_apply(input logic signed [P_W-1:0] p, input logic [DW-1:0] d);
    logic [1:0]         mode;
    logic [A_W-1:0]     a;
    logic [P_W-1:0]     hmask;
    logic [P_W-1:0]     lmask;
    logic               neg;
    logic               fits;
    logic signed [P_W+31:0] w;  // {p, 32'b0} >>> a
    logic signed [33:0]     t;  // its low bits: the result before rounding, then the round bit
    logic signed [33:0] v;
    {mode, a, hmask, lmask} = d;
    neg  = p[P_W-1];
    fits = ((p ^ {P_W{neg}}) & hmask) == '0;
    w    = $signed({p, 32'b0}) >>> a;
    t    = w[33:0];
    v    = (t >>> 1) + ((t[0] && ((|(p & lmask)) || t[1])) ? 34'sd1 : 34'sd0);
    if (mode == 2'd0 || p == '0) rq_apply = '0;
    else if (mode == 2'd3 || !fits) rq_apply = neg ? 32'sh8000_0000 : 32'sh7fff_ffff;
    else if (v[33:31] != {3{v[33]}}) rq_apply = v[33] ? 32'sh8000_0000 : 32'sh7fff_ffff;  // beyond int32
    else rq_apply = 32'(v);
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */
  // [proof: rq_apply end]

  wire logic [DW-1:0] decoded = rq_decode(e_i);
  for (genvar l = 0; l < LANES; l++) begin : g_lane
    assign y_o[32*l +: 32] = rq_apply($signed(p_i[l*P_W +: P_W]), decoded);
  end

endmodule

`resetall
