// SPDX-License-Identifier: Apache-2.0
//
// trit_num: the element-wise operations of docs/numerics.md as pure functions, so every engine
// computes them with the same text as model::numerics: round-half-even shifts (rne_shift),
// requant (an integer times a binary32 scale, exact product, one rounding), int32 saturation,
// the binary32 multiply of per-key attention scales, the SiLU sigmoid division.
//
// Call them as trit_num::name(...): yosys 0.23 parses package-qualified calls but not
// `import trit_num::*`.

`default_nettype none

package trit_num;

  // Bytes from one row start to the next: every row of a 2-D buffer starts on a 64-byte
  // boundary (hdl::isa::ROW_ALIGN, docs/isa.md).
  function automatic logic [63:0] row_bytes(input logic [63:0] bytes);
    row_bytes = (bytes + 64'd63) & ~64'd63;
  endfunction

  // Bits of one KV head's codes or scales region (kv_layout): row_bytes(max_seq * head_dim) or
  // row_bytes(4 * max_seq) at the largest sizes an engine admits. For localparams: constant.
  function automatic int kv_stride_bits(input int max_seq, input int max_head_dim);
    kv_stride_bits = $clog2(max_seq * (max_head_dim > 4 ? max_head_dim : 4) + 64);
  endfunction

  // RNE(x / 2^s): model::numerics::rne_shift for a 96-bit signed x. The bits shifted out are
  // x mod 2^s (two's complement), so comparing that remainder with half a step needs only its
  // top bit (the round bit, the last bit out of x >>> (s-1)) and whether any bit below it is
  // set: one shifter and a mask, not a second shifter, a subtraction and two 96-bit compares
  // (yosys: ~40 % fewer LUTs, and shorter synthesis; proven equivalent with `sat -prove`).
  function automatic logic signed [95:0] rne_shift(input logic signed [95:0] x, input logic [7:0] s);
    logic signed [95:0] q;
    logic signed [95:0] t;
    logic               round_bit;
    logic               sticky;
    t = x >>> (s - 8'd1);
    q = t >>> 1;
    round_bit = t[0];
    sticky = |(x & ~({96{1'b1}} << (s - 8'd1)));
    if (s == 8'd0) rne_shift = x;
    else if (s >= 8'd96) rne_shift = '0;  // |x| < 2^95 <= 2^(s-1): below half a step, and -1/2 exactly ties to 0
    else rne_shift = (round_bit && (sticky || q[0])) ? q + 96'sd1 : q;
  endfunction

  // model::numerics::requant: RNE(x * s * 2^frac) for a non-negative normal (or zero) binary32
  // s. Exact wherever model::numerics is exact and the result has at most 94 bits; beyond that
  // (left shifts over 7, only for scales >= 2^(141-frac)) it saturates, which every caller
  // that narrows afterwards (sat32, code clamps) cannot tell apart.
  // Pipelined engines split it after the multiply: requant(x, s, frac) =
  // requant_shift(x * significand(s), s[30:23], frac).
  function automatic logic signed [95:0] requant(input logic signed [63:0] x, input logic [31:0] s,
                                                 input logic [7:0] frac);
    requant = requant_shift(96'(x) * 96'(significand(s)), s[30:23], frac);
  endfunction

  // The 24-bit significand of a non-negative binary32 (0 for zero and subnormals), as signed.
  /* verilator lint_off UNUSEDSIGNAL */  // the sign bit of s (scales are non-negative)
  function automatic logic signed [24:0] significand(input logic [31:0] s);
    significand = s[30:23] == 8'd0 ? 25'sd0 : $signed({2'b01, s[22:0]});
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  // requant's rounding: p (a product with a significand) times 2^(e - 150 + frac), round half to
  // even, saturating beyond 94 bits.
  function automatic logic signed [95:0] requant_shift(input logic signed [95:0] p, input logic [7:0] e,
                                                       input logic [7:0] frac);
    logic signed [10:0] sh;
    sh = 11'($signed({3'b0, e})) - 11'sd150 + 11'($signed({3'b0, frac}));
    if (p == '0) requant_shift = '0;
    else if (sh > 11'sd7) requant_shift = p < 0 ? {1'b1, 95'd0} + 96'sd1 : {1'b0, {95{1'b1}}};
    else if (sh >= 11'sd0) requant_shift = p <<< sh;
    else if (sh < -11'sd95) requant_shift = '0;
    else requant_shift = rne_shift(p, 8'(11'sd0 - sh));
  endfunction

  // model::numerics::sat_i32.
  function automatic logic signed [31:0] sat32(input logic signed [95:0] x);
    if (x > 96'sh7fff_ffff) sat32 = 32'sh7fff_ffff;
    else if (x < -96'sh8000_0000) sat32 = 32'sh8000_0000;
    else sat32 = 32'(x);
  endfunction

  // a * x and b * x (int8 each, products exact) from one 27x8 multiply, so a DSP48E2 makes two
  // products sharing an operand (Xilinx WP486): (a * 2^18 + b) * x = a*x * 2^18 + b*x, and
  // |b*x| <= 2^14 sits exactly in the low 18 bits as a signed field; taking it out leaves a*x.
  // Returns {a*x, b*x}, 16 bits each.
  /* verilator lint_off UNUSEDSIGNAL */  // p[16]: inside b*x's field, whose sign is p[17]
  function automatic logic [31:0] mul_s8_pair(input logic signed [7:0] a, input logic signed [7:0] b,
                                              input logic signed [7:0] x);
    logic signed [26:0] ab;
    logic signed [33:0] p;  // |p| <= (2^25 + 2^7) * 2^7
    logic [15:0]        hi;
    ab = 27'(a) * 27'sd262144 + 27'(b);
    p  = 34'(ab) * 34'(x);
    // b*x is p[17:0] as signed; a*x = (p - b*x) / 2^18, i.e. the bits above plus its sign bit.
    hi = p[33:18] + 16'(p[17]);
    mul_s8_pair = {hi, p[15:0]};
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */

  // model::numerics::fmul: binary32 multiply, round to nearest even, then a subnormal result
  // flushed to +0 (subnormal operands read as zero, as in fp32_scalar). In two halves, for a
  // register between them where a clock needs it: fp32_mul_front (the significands' product,
  // the exponent sum, the special operands' fixed results) and fp32_mul_back (normalize, round,
  // range). The attention engine and the LM head need one per key / row, too many for the
  // sequential fp32_scalar.
  localparam int FMUL_W = 1 + 32 + 1 + 11 + 48;  // fp32_mul_front's result: {fixed, its value, s, e, p}
  function automatic logic [FMUL_W-1:0] fp32_mul_front(input logic [31:0] a, input logic [31:0] b);
    logic        s;
    logic [7:0]  ea;
    logic [7:0]  eb;
    logic [47:0] p;
    logic signed [10:0] e;  // the exponent before normalization
    logic        fixed;     // a special operand decides the result
    logic [31:0] fv;
    s = a[31] ^ b[31];
    ea = a[30:23];
    eb = b[30:23];
    p = {1'b1, a[22:0]} * {1'b1, b[22:0]};
    e = 11'($signed({3'b0, ea})) + 11'($signed({3'b0, eb})) - 11'sd127;
    fixed = 1'b1;
    if ((ea == 8'hff && a[22:0] != '0) || (eb == 8'hff && b[22:0] != '0)) begin
      fv = 32'h7fc0_0000;                                   // NaN operand
    end else if (ea == 8'hff || eb == 8'hff) begin
      fv = (ea == 8'd0 || eb == 8'd0) ? 32'h7fc0_0000 : {s, 8'hff, 23'd0};  // inf * 0, inf
    end else if (ea == 8'd0 || eb == 8'd0) begin
      fv = {s, 31'd0};                                      // zero (or flushed) operand
    end else begin
      fixed = 1'b0;
      fv = '0;
    end
    fp32_mul_front = {fixed, fv, s, e, p};
  endfunction
  // fp32_mul_back in two parts, for a register between them where a clock needs it (the LM
  // head's): fp32_mul_norm (the product's top 24 bits, guard and sticky, the exponent they have)
  // and fp32_mul_round (round, range).
  localparam int FNORM_W = 1 + 32 + 1 + 11 + 24 + 2;  // {fixed, its value, s, e, m, g, st}
  function automatic logic [FNORM_W-1:0] fp32_mul_norm(input logic [FMUL_W-1:0] f);
    logic        fixed;
    logic [31:0] fv;
    logic        s;
    logic [47:0] p;
    logic [23:0] m;
    logic        g;
    logic        st;
    logic signed [10:0] e;   // exponent of the unrounded, normalized product
    {fixed, fv, s, e, p} = f;
    if (p[47]) begin
      m = p[47:24];
      g = p[23];
      st = p[22:0] != '0;
      e = e + 11'sd1;
    end else begin
      m = p[46:23];
      g = p[22];
      st = p[21:0] != '0;
    end
    fp32_mul_norm = {fixed, fv, s, e, m, g, st};
  endfunction
  function automatic logic [31:0] fp32_mul_round(input logic [FNORM_W-1:0] n);
    logic        fixed;
    logic [31:0] fv;
    logic        s;
    logic [23:0] m;
    logic [24:0] mr;
    logic        g;
    logic        st;
    logic signed [10:0] e;   // exponent of the unrounded, normalized product
    logic signed [10:0] er;  // after the rounding carry
    {fixed, fv, s, e, m, g, st} = n;
    mr = {1'b0, m} + 25'(g && (st || m[0]));
    er = e;
    if (mr[24]) begin
      mr = mr >> 1;
      er = e + 11'sd1;
    end
    if (fixed) begin
      fp32_mul_round = fv;
    end else if (er >= 11'sd255) begin
      fp32_mul_round = {s, 8'hff, 23'd0};                               // overflow
    end else if (er >= 11'sd1) begin
      fp32_mul_round = {s, er[7:0], mr[22:0]};
    end else begin
      // Below the normal range, decided from the unrounded value (M + r) * 2^(E - 150):
      // IEEE rounds it at subnormal precision, then the flush keeps only the smallest normal
      // (reached from E = 0 with M all ones) and the signed zero of a product <= 2^-150.
      if (e == 11'sd0 && m == 24'hff_ffff) fp32_mul_round = {s, 8'd1, 23'd0};
      else if (e < -11'sd23 || (e == -11'sd23 && m == 24'h80_0000 && !g && !st)) fp32_mul_round = {s, 31'd0};
      else fp32_mul_round = 32'd0;
    end
  endfunction
  function automatic logic [31:0] fp32_mul_back(input logic [FMUL_W-1:0] f);
    fp32_mul_back = fp32_mul_round(fp32_mul_norm(f));
  endfunction
  function automatic logic [31:0] fp32_mul(input logic [31:0] a, input logic [31:0] b);
    fp32_mul = fp32_mul_back(fp32_mul_front(a, b));
  endfunction

  // model::numerics::f32_from_int for an unsigned integer below 2^96: binary32, round half to
  // even (an integer is never subnormal). The engines convert in two or three cycles, lead_one
  // then a register then i2f_at (op_attention's finisher), or i2f_front, a register, i2f_back
  // (vec_quant's local steps); this composition is what the trit_num test checks against the
  // reference.
  function automatic logic [31:0] i2f(input logic [95:0] x);
    i2f = i2f_at(x, lead_one(x));
  endfunction

  // i2f in two halves, for a register between them: the position of x's leading one (0 for
  // x = 0)...
  // Two levels: the highest non-zero byte, and every byte's own leading one, chosen by it (a
  // priority chain over 96 bits was eleven LUT + MUXF levels deep).
  function automatic logic [7:0] lead_one(input logic [95:0] x);
    logic [3:0]  g;   // the highest non-zero byte
    logic [35:0] b;   // each byte's leading one, byte i at 3*i
    g = '0;
    b = '0;
    for (int i = 0; i < 12; i++) begin
      for (int k = 0; k < 8; k++) if (x[8*i + k]) b[3*i +: 3] = 3'(k);
      if (x[8*i +: 8] != '0) g = 4'(i);
    end
    lead_one = {1'b0, g, b[3*g +: 3]};
  endfunction

  // ... then the rounding, given e = lead_one(x) (0 for x = 0, which converts to +0). Round half
  // to even by the round bit (the last bit shifted out) and the sticky bit (any below it, by a
  // thermometer mask): no 96-bit remainder compares (they were the quantizers' longest path;
  // proven equal to the remainder-against-half rounding in host/tests/proofs.rs). In two parts
  // for a register between them (the shift and both bits, then the increment and the packing:
  // in one cycle they were the quantizers' longest path): i2f_front's result is
  // {x == 0, e, the 24-bit significand before rounding, round, sticky}.
  localparam int I2F_MID_W = 1 + 8 + 24 + 2;
  /* verilator lint_off UNUSEDSIGNAL */  // q: the significand's 24 bits are what is left
  function automatic logic [I2F_MID_W-1:0] i2f_front(input logic [95:0] x, input logic [7:0] e);
    logic [7:0]  sh;
    logic [95:0] q;
    logic        round;
    logic        sticky;
    q = '0;
    sh = '0;
    round = 1'b0;
    sticky = 1'b0;
    if (e <= 8'd23) begin
      q = x << (8'd23 - e);
    end else begin
      sh = e - 8'd23;
      q = x >> sh;
      round = x[7'(sh - 8'd1)];
      sticky = |(x & ~({96{1'b1}} << (sh - 8'd1)));
    end
    i2f_front = {x == '0, e, q[23:0], round, sticky};
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */
  function automatic logic [31:0] i2f_back(input logic [I2F_MID_W-1:0] m);
    logic [7:0]  e;
    logic [24:0] q;
    e = m[33:26];
    q = {1'b0, m[25:2]} + 25'(m[1] && (m[0] || m[2]));
    if (q[24]) begin
      q = q >> 1;
      e = e + 8'd1;
    end
    i2f_back = m[34] ? 32'd0 : {1'b0, e + 8'd127, q[22:0]};
  endfunction
  function automatic logic [31:0] i2f_at(input logic [95:0] x, input logic [7:0] e);
    i2f_at = i2f_back(i2f_front(x, e));
  endfunction

  // The SiLU sigmoid of model::numerics::silu_fx for a non-negative input: RNE(2^30 / (2^15 + e))
  // with e = 2^-|x|log2(e) in Q.15 (0..32768), i.e. sigma(|x|) in Q.15.
  function automatic logic [15:0] sigmoid_q15(input logic [15:0] e);
    logic [17:0] den;
    logic [30:0] q;
    logic [17:0] r;
    den = 18'd32768 + 18'(e);
    q = 31'(31'h4000_0000 / 31'(den));
    r = 18'(31'h4000_0000 % 31'(den));
    sigmoid_q15 = 16'(q + 31'((2 * 19'(r) > 19'(den)) || (2 * 19'(r) == 19'(den) && q[0])));
  endfunction

endpackage

`resetall
