// SPDX-License-Identifier: Apache-2.0
//
// fp32_scalar: the per-token scalar float unit. binary32 multiply, divide, add, subtract, square
// root, unsigned integer -> binary32 and ldexp, each rounded to nearest-even exactly as IEEE 754
// defines it, then a subnormal result flushed to +0 -- bit for bit the `fmul`, `fdiv`, `fadd`,
// `fsqrt`, `f32_from_int` and `ldexp` of model::numerics (docs/numerics.md section 0).
//
// Why sequential: the accelerator needs only a handful of scalar operations per token and layer
// (scales, 1/rms, 1/sum), so latency does not matter and area does. One request at a time; every
// operation produces one bit per cycle in three small registers (X, W, N) and ends in the shared
// normalize/round step (fp32_round). No DSP, no barrel shifter:
//   MUL   shift-and-add, 27 steps: N <- (N + (W[0] ? X : 0)) >> 1, W >>= 1; the bits leaving N
//         are ORed into the sticky bit.
//   DIV   restoring division, 27 quotient bits into N; remainder in W, divisor in X.
//   SQRT  restoring digit-by-digit square root, 26 root bits into N; remainder in W, radicand X.
//   ADD   operands ordered by magnitude (|X| >= |W|), W shifted right one bit per cycle with a
//         sticky LSB (guard, round and sticky bits kept), then one add or subtract into N.
//   I2F   the integer read one bit per cycle, MSB first, into N until its leading one reaches
//         the top of N, then into the sticky bit.
//   LDEXP the significand of a goes to N unchanged, k is added to the exponent.
// Then N is normalized one bit per cycle (right after a carry, left after a cancellation) and
// rounded. A result below the normal range is decided from its exponent and a few bits, so the
// rounding needs no denormalizing shift either (see fp32_round).
//
// Latency, cycles from the accepting edge to rsp_valid_o: MUL 31 (32 for a product of
// significands >= 2); DIV 31 (32 for a quotient of significands < 1); SQRT 31 (30 for zero);
// ADD/SUB 4 + min(exponent difference, 31) + normalization shifts, at most 35; I2F INT_W + 3,
// plus up to 26 for integers below 2^26; LDEXP 4; every special case 3. The first cycle only
// registers the request and compares the magnitudes (S_LOAD decodes the rest from the
// registers): the operand decoding -- a 31-bit magnitude compare, the swap, the exponent adder,
// the alignment count -- in one cycle, behind the requester's own operand multiplexers, was the
// deepest path of every engine with a quantizer (5.04-5.46 ns, sessions 18-19).
//
// Operations (op_i): 0 MUL a*b, 1 DIV a/b, 2 ADD a+b, 3 SUB a-b, 4 SQRT sqrt(a),
// 5 I2F int_i (unsigned) -> binary32, 6 LDEXP a * 2^k with k = b_i as a signed 32-bit integer,
// 7 reserved (returns NaN). Operands that an operation does not use are ignored.
//
// Outside valid operation (documented, not part of the bit-exact contract):
// - Subnormal operands are read as zero of the same sign (they never occur: every result is
//   flushed). Rust would use their value.
// - Infinity follows IEEE: overflow, x/0 and infinite operands give +-inf, x/inf a signed zero,
//   sqrt(+inf) = +inf. Every NaN result is the canonical quiet NaN 0x7fc00000 (invalid
//   operations: 0*inf, inf-inf, 0/0, inf/inf, sqrt of a negative non-zero, NaN operands, op 7);
//   IEEE leaves NaN sign and payload open, so this differs from x86's 0xffc00000 only in bits
//   the standard does not fix.
// - LDEXP of zero is a signed zero and of infinity an infinity for every k; Rust's ldexp, which
//   multiplies by exp2(k) in f64, gives NaN for 0 with k >= 1024 and for inf with k <= -1075.
//
// Interface: valid/ready request (op_i, a_i, b_i, int_i sampled on acceptance), valid/ready
// response (res_o stable while rsp_valid_o is high). One operation in flight; req_ready_o is high
// exactly when idle.

`default_nettype none

module fp32_scalar #(
  parameter int INT_W = 96  // bits of the unsigned integer input of I2F (32..256)
) (
  input  wire logic             clk_i,
  input  wire logic             rst_ni,
  // Request: accepted when req_valid_i && req_ready_o.
  input  wire logic             req_valid_i,
  output      logic             req_ready_o,
  input  wire logic [2:0]       op_i,
  input  wire logic [31:0]      a_i,
  input  wire logic [31:0]      b_i,
  input  wire logic [INT_W-1:0] int_i,
  // Response: one per request, accepted when rsp_valid_o && rsp_ready_i.
  output      logic             rsp_valid_o,
  input  wire logic             rsp_ready_i,
  output      logic [31:0]      res_o
);

  // ---------------------------------------------------------------- parameter checks
  // Elaboration-time: a bad parameter stops Verilator and yosys with the message. Icarus has no
  // elaboration-time $error, so there the check instantiates a module named after the rule.
  if (INT_W < 32 || INT_W > 256) begin : g_bad_int_w
`ifdef __ICARUS__
    fp32_scalar_parameter_INT_W_must_be_32_to_256 u_fail ();
`else
    $error("fp32_scalar: INT_W = %0d, must be 32..256", INT_W);
`endif
  end

  localparam int EXP_W = 12;              // signed biased exponent: -512..767 occur
  localparam int CNT_W = $clog2(INT_W);   // step counter: I2F counts the integer's bits

  localparam logic [2:0] OP_MUL   = 3'd0;
  localparam logic [2:0] OP_DIV   = 3'd1;
  localparam logic [2:0] OP_ADD   = 3'd2;
  localparam logic [2:0] OP_SUB   = 3'd3;
  localparam logic [2:0] OP_SQRT  = 3'd4;
  localparam logic [2:0] OP_I2F   = 3'd5;
  localparam logic [2:0] OP_LDEXP = 3'd6;

  typedef enum logic [3:0] {
    S_IDLE,   // waiting for a request
    S_LOAD,   // decode the registered request
    S_ALIGN,  // ADD/SUB: shift the smaller operand right, then add (LDEXP: W = 0, no shift)
    S_MUL,    // MUL: shift-and-add steps
    S_DIV,    // DIV: restoring division steps
    S_SQRT,   // SQRT: restoring square-root steps
    S_I2F,    // I2F: read the integer into N and the sticky bit
    S_NORM,   // normalize N one bit per cycle, then round
    S_DONE    // result valid
  } state_e;

  // ---------------------------------------------------------------- registers
  state_e             state_q, state_d;
  logic [CNT_W-1:0]   cnt_q, cnt_d;       // remaining steps (I2F: index of the next bit)
  logic [23:0]        x_q, x_d;           // multiplicand / divisor / radicand / larger addend
  logic [27:0]        w_q, w_d;           // multiplier / remainder / smaller addend
  logic [27:0]        n_q, n_d;           // result significand: N[26] = leading one, N[27] carry
  logic               sticky_q, sticky_d; // OR of result bits below N[0]
  logic [EXP_W-1:0]   exp_q, exp_d;       // biased exponent of N[26], two's complement
  logic               sign_q, sign_d;     // sign of a non-zero result
  logic               zsign_q, zsign_d;   // sign of an exact-zero result
  logic               sub_q, sub_d;       // ADD/SUB: magnitudes are subtracted
  logic               odd_q, odd_d;       // SQRT: unbiased exponent is odd (biased is even)
  logic               inf_q, inf_d;       // special result: infinity
  logic               nan_q, nan_d;       // special result: NaN
  logic [INT_W-1:0]   int_q, int_d;       // I2F: the integer (read one bit at a time)
  logic [31:0]        res_q, res_d;       // the rounded result
  logic [2:0]         op_r;               // the accepted request (I2F's integer goes to int_q)
  logic [31:0]        a_r, b_r;
  logic               b_larger_r;         // |b| > |a|, compared as the request is taken
  always_ff @(posedge clk_i) begin
    if (req_valid_i && req_ready_o) begin
      op_r       <= op_i;
      a_r        <= a_i;
      b_r        <= b_i;
      b_larger_r <= b_i[30:0] > a_i[30:0];
    end
  end

  // ---------------------------------------------------------------- operand decoding
  wire logic       sa     = a_r[31];
  wire logic       sb     = b_r[31] ^ (op_r == OP_SUB);  // SUB is ADD of -b
  wire logic [7:0] ea     = a_r[30:23];
  wire logic [7:0] eb     = b_r[30:23];
  wire logic       a_zero = ea == 8'd0;                  // zero, or subnormal read as zero
  wire logic       b_zero = eb == 8'd0;
  wire logic       a_inf  = ea == 8'hff && a_r[22:0] == '0;
  wire logic       b_inf  = eb == 8'hff && b_r[22:0] == '0;
  wire logic       a_nan  = ea == 8'hff && a_r[22:0] != '0;
  wire logic       b_nan  = eb == 8'hff && b_r[22:0] != '0;
  wire logic [23:0] ma    = a_zero ? 24'd0 : {1'b1, a_r[22:0]};
  wire logic [23:0] mb    = b_zero ? 24'd0 : {1'b1, b_r[22:0]};

  // X takes b and W takes a for MUL and DIV; ADD/SUB put the larger magnitude in X.
  wire logic        is_add   = op_r == OP_ADD || op_r == OP_SUB;
  wire logic        b_larger = b_larger_r;
  wire logic        swap     = op_r == OP_MUL || op_r == OP_DIV || (is_add && b_larger);
  wire logic [7:0]  e_big    = swap ? eb : ea;
  wire logic [7:0]  e_small  = swap ? ea : eb;
  wire logic [23:0] w_mant   = swap ? ma : is_add ? mb : 24'd0;  // SQRT, I2F, LDEXP: W = 0

  // LDEXP: k = b_r. Outside -512..511 the result is infinity or a signed zero for every finite
  // non-zero a, handled as a special case.
  wire logic       k_neg  = b_r[31];
  wire logic       k_fits = b_r[31:9] == {23{k_neg}};
  wire logic [9:0] k      = b_r[9:0];

  // The exponent needs one adder at acceptance, s1 = e_big +- operand:
  //   MUL ea + eb; DIV eb - ea (biased and negated in the first step, see exp_upd);
  //   ADD/SUB e_big - e_small, the alignment distance; SQRT ea + 129; LDEXP ea + k.
  logic [EXP_W-1:0] s1_opnd;
  always_comb begin
    case (op_r)
      OP_SQRT:  s1_opnd = EXP_W'(129);
      OP_LDEXP: s1_opnd = EXP_W'($signed(k));
      default:  s1_opnd = EXP_W'(e_small);
    endcase
  end
  wire logic             s1_sub = op_r == OP_DIV || is_add;
  wire logic [EXP_W-1:0] s1     = s1_sub ? EXP_W'(e_big) - s1_opnd : EXP_W'(e_big) + s1_opnd;
  // ADD alignment shifts; 27 or more move all of W into its sticky bit.
  wire logic [4:0]       align_cnt = s1[7:5] != '0 ? 5'd31 : s1[4:0];

  // Per operation: the biased exponent of N[26] at the start, the signs of a non-zero and of an
  // exact-zero result (IEEE: x - x = +0 but -0 + -0 = -0), and the special results.
  // (Combinational blocks that feed other logic assign each output once per path: Icarus 11
  // can loop forever on the intermediate values of a default-then-override assignment.)
  logic [EXP_W-1:0] exp_init;
  logic             res_sign, zero_sign;
  logic             spec_nan, spec_inf, spec_zero;
  always_comb begin
    case (op_r)
      OP_MUL: begin
        exp_init  = s1;
        res_sign  = sa ^ sb;
        zero_sign = sa ^ sb;
        spec_nan  = a_nan || b_nan || (a_inf && b_zero) || (a_zero && b_inf);
        spec_inf  = a_inf || b_inf;
        spec_zero = 1'b0;
      end
      OP_DIV: begin
        exp_init  = s1;
        res_sign  = sa ^ sb;
        zero_sign = sa ^ sb;
        spec_nan  = a_nan || b_nan || (a_inf && b_inf) || (a_zero && b_zero);
        spec_inf  = a_inf || b_zero;
        spec_zero = b_inf;
      end
      OP_ADD, OP_SUB: begin
        exp_init  = EXP_W'(e_big);
        res_sign  = swap ? sb : sa;
        zero_sign = sa && sb;
        spec_nan  = a_nan || b_nan || (a_inf && b_inf && sa != sb);
        spec_inf  = a_inf || b_inf;
        spec_zero = 1'b0;
      end
      OP_SQRT: begin
        // floor(e / 2) + 1 with e = ea - 127, biased (+127): (ea + 129) / 2. The +1 is undone
        // by the normalization: the root's leading bit arrives in N[25].
        exp_init  = s1 >> 1;
        res_sign  = sa;
        zero_sign = sa;
        spec_nan  = a_nan || (sa && !a_zero);
        spec_inf  = a_inf;
        spec_zero = 1'b0;
      end
      OP_I2F: begin
        // The integer enters N from the right, MSB first: after all INT_W bits its bit 0 is
        // N[0] and N[26] has weight 2^26 (biased 153); each shift fewer is one octave more.
        exp_init  = EXP_W'(INT_W + 153);
        res_sign  = 1'b0;
        zero_sign = 1'b0;
        spec_nan  = 1'b0;
        spec_inf  = 1'b0;
        spec_zero = 1'b0;
      end
      OP_LDEXP: begin
        exp_init  = s1;
        res_sign  = sa;
        zero_sign = sa;
        spec_nan  = a_nan;
        spec_inf  = a_inf || (!k_fits && !k_neg && !a_zero);
        spec_zero = !k_fits && k_neg;
      end
      default: begin  // reserved
        exp_init  = s1;
        res_sign  = sa;
        zero_sign = sa;
        spec_nan  = 1'b1;
        spec_inf  = 1'b0;
        spec_zero = 1'b0;
      end
    endcase
  end
  wire logic special = spec_nan || spec_inf || spec_zero;

  // ---------------------------------------------------------------- datapath
  // MUL step, and the right shift of the normalization (addend zero): N <- (N + addend) >> 1.
  wire logic [23:0] mul_addend = (state_q == S_MUL && w_q[0]) ? x_q : 24'd0;
  wire logic [24:0] mul_sum    = {1'b0, n_q[27:4]} + {1'b0, mul_addend};
  wire logic [27:0] n_shr      = {mul_sum, n_q[3:1]};

  // W right shift: MUL consumes W[0]; ALIGN keeps the OR of the bits shifted out in W[0].
  wire logic [27:0] w_shr = {1'b0, w_q[27:2], w_q[1] | (state_q == S_ALIGN && w_q[0])};

  // ADD/SUB: |X| >= |W|, so the difference is never negative.
  wire logic [27:0] big      = {1'b0, x_q, 3'b000};
  wire logic [27:0] add_res  = sub_q ? big - w_q : big + w_q;

  // DIV and SQRT share one trial subtraction, remainder in W, one result bit per step:
  //   DIV:  2 * W against the divisor {X, 0000} (W starts as {0, a, 000}: the first bit is
  //         a >= b, weight 2^0);
  //   SQRT: 4 * W + the next radicand pair against {root N, 01}.
  // The bit is 1 when the trial does not borrow; then W takes the difference, else it keeps
  // the shifted remainder.
  wire logic        is_sqrt = state_q == S_SQRT;
  // Radicand: {X, 00} for an odd exponent (significand doubled), {0, X, 0} for an even one;
  // 13 bit pairs, the top pair first (cnt 26), then zeros (cnt 13..1). Reading {0, X, 00} one
  // bit higher for an even exponent selects both from the same bits.
  wire logic [26:0] rad     = {1'b0, x_q, 2'b00};
  wire logic [3:0]  pair_k  = 4'(cnt_q - CNT_W'(14));  // pair index 12..0 while cnt is 26..14
  wire logic [4:0]  pair_i  = {pair_k, !odd_q};
  wire logic [1:0]  pair    = cnt_q > CNT_W'(13) ? rad[pair_i +: 2] : 2'b00;
  wire logic [28:0] rem_in  = is_sqrt ? {1'b0, w_q[25:0], pair} : {w_q, 1'b0};
  wire logic [28:0] trial   = is_sqrt ? {1'b0, n_q[25:0], 2'b01} : {1'b0, x_q, 4'b0000};
  logic             borrow;
  /* verilator lint_off UNUSEDSIGNAL */
  logic [28:0]      diff;     // diff[28] is 0 whenever diff is used: it is below the trial
  /* verilator lint_on UNUSEDSIGNAL */
  assign {borrow, diff} = {1'b0, rem_in} - {1'b0, trial};
  wire logic        q_bit   = !borrow;
  wire logic [27:0] w_step  = q_bit ? diff[27:0] : rem_in[27:0];

  // N left shift: a quotient/root bit, the next integer bit, or 0 when normalizing.
  wire logic        int_bit = int_q[cnt_q];
  wire logic [27:0] n_shl   = {n_q[26:0], (state_q == S_DIV || is_sqrt) ? q_bit : state_q == S_I2F && int_bit};

  wire logic             n_carry    = n_q[27];
  wire logic             n_lead     = n_q[26];
  wire logic             n_lsb      = n_q[0];
  wire logic             normalized = !n_carry && (n_lead || n_q == '0);
  wire logic             first_step = cnt_q == CNT_W'(27);  // MUL, DIV
  wire logic             a_exp_even = !ea[0];

  // Exponent updates, one adder: -1 or +1 (normalization, I2F), -127 (MUL's first step: the
  // bias counted twice), 127 - exp (DIV's first step: eb - ea becomes ea - eb + 127).
  logic             exp_inv;
  logic [EXP_W-1:0] exp_delta;
  always_comb begin
    case (state_q)
      S_MUL: begin
        exp_inv   = 1'b0;
        exp_delta = -EXP_W'(127);
      end
      S_DIV: begin
        exp_inv   = 1'b1;
        exp_delta = EXP_W'(128);  // ~e + 128 = 127 - e
      end
      S_NORM: begin
        exp_inv   = 1'b0;
        exp_delta = n_carry ? EXP_W'(1) : '1;
      end
      default: begin  // I2F
        exp_inv   = 1'b0;
        exp_delta = '1;
      end
    endcase
  end
  wire logic [EXP_W-1:0] exp_upd = (exp_q ^ {EXP_W{exp_inv}}) + exp_delta;

  logic [31:0] rounded;
  fp32_round #(.EXP_W(EXP_W)) u_round (
    .sign_i   (sign_q),
    .zsign_i  (zsign_q),
    .exp_i    (exp_q),
    .sig_i    (n_q[26:0]),
    .sticky_i (sticky_q),
    .inf_i    (inf_q),
    .nan_i    (nan_q),
    .res_o    (rounded)
  );

  // ---------------------------------------------------------------- control
  always_comb begin
    state_d  = state_q;
    cnt_d    = cnt_q;
    x_d      = x_q;
    w_d      = w_q;
    n_d      = n_q;
    sticky_d = sticky_q;
    exp_d    = exp_q;
    sign_d   = sign_q;
    zsign_d  = zsign_q;
    sub_d    = sub_q;
    odd_d    = odd_q;
    inf_d    = inf_q;
    nan_d    = nan_q;
    int_d    = int_q;
    res_d    = res_q;
    case (state_q)
      S_IDLE: begin
        int_d = int_i;  // I2F's integer, read from int_q from S_LOAD on
        if (req_valid_i) state_d = S_LOAD;
      end
      S_LOAD: begin
        x_d      = swap ? mb : ma;
        w_d      = {1'b0, w_mant, 3'b000};
        n_d      = '0;
        sticky_d = 1'b0;
        exp_d    = exp_init;
        sign_d   = res_sign;
        zsign_d  = zero_sign;
        sub_d    = is_add && sa != sb;
        odd_d    = a_exp_even;
        inf_d    = spec_inf && !spec_nan;
        nan_d    = spec_nan;
        case (op_r)
          OP_MUL, OP_DIV: cnt_d = CNT_W'(27);
          OP_SQRT:        cnt_d = CNT_W'(26);
          OP_ADD, OP_SUB: cnt_d = CNT_W'(align_cnt);
          OP_I2F:         cnt_d = CNT_W'(INT_W - 1);
          default:        cnt_d = '0;  // LDEXP: N <- X + 0 at once
        endcase
        if (special) begin
          state_d = S_NORM;  // N is zero: straight to rounding
        end else begin
          case (op_r)
            OP_MUL:         state_d = S_MUL;
            OP_DIV:         state_d = S_DIV;
            OP_SQRT:        state_d = S_SQRT;
            OP_I2F:         state_d = S_I2F;
            default:        state_d = S_ALIGN;  // ADD, SUB, LDEXP (W = 0)
          endcase
        end
      end
      S_ALIGN: begin
        if (cnt_q != '0) begin
          w_d   = w_shr;
          cnt_d = cnt_q - CNT_W'(1);
        end else begin
          n_d     = add_res;
          state_d = S_NORM;
        end
      end
      S_MUL: begin
        if (cnt_q != '0) begin
          if (first_step) exp_d = exp_upd;
          n_d      = n_shr;
          sticky_d = sticky_q | n_lsb;
          w_d      = w_shr;
          cnt_d    = cnt_q - CNT_W'(1);
        end else begin
          state_d = S_NORM;
        end
      end
      S_DIV, S_SQRT: begin
        if (cnt_q != '0) begin
          if (first_step && !is_sqrt) exp_d = exp_upd;
          n_d   = n_shl;
          w_d   = w_step;
          cnt_d = cnt_q - CNT_W'(1);
        end else begin
          sticky_d = w_q != '0;  // non-zero remainder: the exact result has more bits
          state_d  = S_NORM;
        end
      end
      S_I2F: begin
        // One bit per cycle, MSB first: into N until the leading one reaches N[26], then into
        // the sticky bit.
        if (n_lead) begin
          sticky_d = sticky_q | int_bit;
        end else begin
          n_d   = n_shl;
          exp_d = exp_upd;
        end
        if (cnt_q == '0) state_d = S_NORM;
        else cnt_d = cnt_q - CNT_W'(1);
      end
      S_NORM: begin
        if (n_carry) begin
          n_d      = n_shr;
          sticky_d = sticky_q | n_lsb;
          exp_d    = exp_upd;
        end else if (!normalized) begin
          n_d   = n_shl;
          exp_d = exp_upd;
        end else begin
          res_d   = rounded;
          state_d = S_DONE;
        end
      end
      S_DONE: begin
        if (rsp_ready_i) state_d = S_IDLE;
      end
      default: state_d = S_IDLE;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q <= S_IDLE;
    end else begin
      state_q <= state_d;
    end
  end

  // Datapath registers need no reset: each is written before it is read.
  always_ff @(posedge clk_i) begin
    cnt_q    <= cnt_d;
    x_q      <= x_d;
    w_q      <= w_d;
    n_q      <= n_d;
    sticky_q <= sticky_d;
    exp_q    <= exp_d;
    sign_q   <= sign_d;
    zsign_q  <= zsign_d;
    sub_q    <= sub_d;
    odd_q    <= odd_d;
    inf_q    <= inf_d;
    nan_q    <= nan_d;
    int_q    <= int_d;
    res_q    <= res_d;
  end

  assign req_ready_o = state_q == S_IDLE;
  assign rsp_valid_o = state_q == S_DONE;
  assign res_o       = res_q;

endmodule

`resetall
