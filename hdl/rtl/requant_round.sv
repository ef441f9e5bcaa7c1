// SPDX-License-Identifier: Apache-2.0
//
// requant_round: the rounding half of requant (docs/numerics.md §0) for LANES products that
// share one scale: y[l] = sat(round_half_even(p[l] * 2^(e - 150 + FRAC))) saturated to OUT_W
// signed bits, where p[l] is an exact product with the scale's significand and e the scale's
// biased exponent. OUT_W = 32 is sat_i32 (linear layers, logits, attention's outputs); a
// quantizer takes OUT_W = 17 and clamps to its qmax (< 2^16) after, which equals clamping the
// unsaturated value. Combinational, except that with DECODE_REG the decoded shift is registered
// (the exponent changes once per vector there, and the decode is a path of its own) and with
// APPLY_REG each lane's window (the shift and the rounding's tests, then the increment and the
// saturation: both in one cycle after a product's sum were a longest path); callers register
// around it.
//
// The shift is decoded once (rq_decode: the shift amount, which bits of a product must copy its
// sign for the result to fit, which bits lie below the round bit) and each lane keeps only a
// window shifter, a masked overflow test and a masked sticky bit (rq_apply): no lane shifts a
// full-width value. model::numerics::requant + saturation is the definition; the test
// `proofs.rs` proves rq_apply(p, rq_decode(e)) equal to it for every p and e (not only products
// with a significand) at every width the engines use.

`default_nettype none

module requant_round #(
  parameter int LANES = 1,
  parameter int P_W   = 57,  // signed product bits
  parameter int FRAC  = 16,  // fraction bits of the result
  parameter int OUT_W = 32,  // signed result bits (saturating)
  parameter bit DECODE_REG = 0, // 1: the decoded shift is registered (y follows e a cycle late)
  parameter bit APPLY_REG  = 0  // 1: each lane's window registered (y follows p a cycle late)
) (
  input  wire logic                   clk_i,  // used only with DECODE_REG or APPLY_REG
  input  wire logic                   en_i,   // APPLY_REG: the window's register takes p_i's
  input  wire logic [LANES*P_W-1:0]   p_i,    // lane l at [l*P_W +: P_W], signed
  input  wire logic [7:0]             e_i,    // the scale's biased exponent (0: a zero scale)
  output      logic [OUT_W*LANES-1:0] y_o     // lane l at [OUT_W*l +: OUT_W], signed
);

  // [proof: rq_apply begin]
  // The decoded shift, {mode, a, hmask, lmask}. The result is p * 2^sh, sh = e - 150 + FRAC.
  // mode 0: every result 0 (a zero scale, or sh <= -P_W: |p| < 2^(P_W-1) is under half a step);
  // 1: shift; 3: sh > OUT_W - 1, every non-zero p saturates. For mode 1 the lane reads an
  // (OUT_W + 2)-bit window of {p, OUT_W'b0} >>> a with a = OUT_W - 1 - sh: the low bit is the
  // round bit, the OUT_W + 1 above it the result before rounding (for sh >= 0 the round bit is a
  // padding zero: a left shift is exact). hmask: the bits of p that must copy its sign for that
  // (OUT_W + 1)-bit result to hold it exactly; lmask: the bits of p below the round bit (the
  // sticky bit). (A packed vector, not a struct: yosys 0.23 does not assign a function's struct
  // members.)
  localparam int A_W = $clog2(P_W + OUT_W);
  localparam int DW  = 2 + A_W + 2 * P_W;
  localparam int VW  = OUT_W + 2;  // the window
  localparam logic signed [OUT_W-1:0] Y_MAX = {1'b0, {(OUT_W - 1){1'b1}}};
  localparam logic signed [OUT_W-1:0] Y_MIN = {1'b1, {(OUT_W - 1){1'b0}}};
  function automatic logic [DW-1:0] rq_decode(input logic [7:0] e);
    logic signed [10:0] sh;
    logic [1:0]         mode;
    logic [A_W-1:0]     a;
    logic [P_W-1:0]     hmask;
    logic [P_W-1:0]     lmask;
    sh    = 11'($signed({3'b0, e})) - 11'sd150 + 11'(FRAC);
    mode  = 2'd1;
    a     = A_W'(11'(OUT_W - 1) - sh);
    hmask = {P_W{1'b1}} << (11'(OUT_W) - sh);
    lmask = sh < 11'sd0 ? ~({P_W{1'b1}} << (11'sd0 - sh - 11'sd1)) : '0;
    if (e == 8'd0) mode = 2'd0;
    else if (sh > 11'(OUT_W - 1)) mode = 2'd3;
    else if (sh < 11'sd0 && 11'sd0 - sh >= 11'(P_W)) mode = 2'd0;
    rq_decode = {mode, a, hmask, lmask};
  endfunction
  // In two halves, for a register between them where a clock needs it (APPLY_REG): rq_window
  // (the window, the round-up bit, the sign and overflow tests) and rq_finish (the increment,
  // the saturation), as {mode, p == 0, neg, fits, up, the result before rounding}.
  localparam int FW = 2 + 4 + VW - 1;
  /* verilator lint_off UNUSEDSIGNAL */  // w: only the window above the shift is read
  function automatic logic [FW-1:0] rq_window(input logic signed [P_W-1:0] p, input logic [DW-1:0] d);
    logic [1:0]               mode;
    logic [A_W-1:0]           a;
    logic [P_W-1:0]           hmask;
    logic [P_W-1:0]           lmask;
    logic                     neg;
    logic                     fits;
    logic                     up;
    logic signed [P_W+OUT_W-1:0] w;  // {p, OUT_W'b0} >>> a
    logic signed [VW-1:0]     t;     // its low bits: the result before rounding, then the round bit
    {mode, a, hmask, lmask} = d;
    neg  = p[P_W-1];
    fits = ((p ^ {P_W{neg}}) & hmask) == '0;
    w    = $signed({p, OUT_W'(0)}) >>> a;
    t    = w[OUT_W+1:0];
    up   = t[0] && ((|(p & lmask)) || t[1]);
    rq_window = {mode, p == '0, neg, fits, up, t[VW-1:1]};
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */
  function automatic logic signed [OUT_W-1:0] rq_finish(input logic [FW-1:0] f);
    logic [1:0]               mode;
    logic                     zero;
    logic                     neg;
    logic                     fits;
    logic                     up;
    logic signed [VW-2:0]     q;     // the result before rounding
    logic signed [VW-1:0]     v;
    {mode, zero, neg, fits, up, q} = f;
    v    = VW'(q) + (up ? VW'(1) : VW'(0));
    if (mode == 2'd0 || zero) rq_finish = '0;
    else if (mode == 2'd3 || !fits) rq_finish = neg ? Y_MIN : Y_MAX;
    else if (v[OUT_W+1:OUT_W-1] != {3{v[OUT_W+1]}}) rq_finish = v[OUT_W+1] ? Y_MIN : Y_MAX;  // beyond OUT_W bits
    else rq_finish = OUT_W'(v);
  endfunction
  function automatic logic signed [OUT_W-1:0] rq_apply(input logic signed [P_W-1:0] p, input logic [DW-1:0] d);
    rq_apply = rq_finish(rq_window(p, d));
  endfunction
  // [proof: rq_apply end]

  logic [DW-1:0] decoded;
  if (DECODE_REG) begin : g_reg
    always_ff @(posedge clk_i) decoded <= rq_decode(e_i);
  end else begin : g_comb
    assign decoded = rq_decode(e_i);
  end
  for (genvar l = 0; l < LANES; l++) begin : g_lane
    if (APPLY_REG) begin : g_apply_reg
      logic [FW-1:0] win_q;
      always_ff @(posedge clk_i) if (en_i) win_q <= rq_window($signed(p_i[l*P_W +: P_W]), decoded);
      assign y_o[OUT_W*l +: OUT_W] = rq_finish(win_q);
    end else begin : g_apply
      assign y_o[OUT_W*l +: OUT_W] = rq_apply($signed(p_i[l*P_W +: P_W]), decoded);
    end
  end
  logic unused;
  assign unused = ^{clk_i, en_i};

endmodule

`resetall
