// SPDX-License-Identifier: Apache-2.0
//
// fp32_scalar: the per-token scalar float unit. binary32 multiply, divide, add, subtract, square
// root, unsigned integer -> binary32 and ldexp, each rounded to nearest-even exactly as IEEE 754
// defines it, then a subnormal result flushed to +0 -- bit for bit the `fmul`, `fdiv`, `fadd`,
// `fsqrt`, `f32_from_int` and `ldexp` of model::numerics (docs/numerics.md section 0).
//
// Why sequential: the accelerator needs only a handful of scalar operations per token and layer
// (scales, 1/rms, 1/sum), so latency does not matter and area does. One request at a time; every
// operation iterates one bit per cycle on three small registers and ends in the shared
// normalize/round step (fp32_round). No DSP, no barrel shifter:
//   MUL   shift-and-add, 27 steps: N <- (N + (W[0] ? X : 0)) >> 1, W >>= 1; bits leaving N are
//         ORed into the sticky bit.
//   DIV   restoring division, 27 quotient bits into N; remainder in W, divisor in X.
//   SQRT  restoring digit-by-digit square root, 26 root bits into N; remainder in W, radicand X.
//   ADD   operands ordered by magnitude (|X| >= |W|), W shifted right one bit per cycle with a
//         sticky LSB (guard, round and sticky bits kept), then one add or subtract into N.
//   I2F   the integer shifted left until its top bit is set; its top 27 bits go to N, the OR of
//         the rest is the sticky bit.
//   LDEXP the significand of a goes to N unchanged, the exponent gets k added.
// Then N is normalized one bit per cycle (right after a carry, left after a cancellation) and
// rounded. Latency in cycles from acceptance to rsp_valid_o (fixed per operation except where
// noted): MUL 31-32, DIV 30-31, SQRT 30, ADD/SUB 4-35, I2F 4 + leading zeros of int_i (up to
// INT_W + 3), LDEXP 3, and 3 for every special case (NaN/infinity operands, division by zero,
// x / inf).
//
// Operations (op_i): 0 MUL a*b, 1 DIV a/b, 2 ADD a+b, 3 SUB a-b, 4 SQRT sqrt(a),
// 5 I2F int_i (unsigned) -> binary32, 6 LDEXP a * 2^k with k = b_i as a signed 32-bit integer,
// 7 reserved (returns NaN).
//
// Outside valid operation (documented, not part of the bit-exact contract):
// - Subnormal operands are read as zero of the same sign (they never occur: every result is
//   flushed). Rust would use their value.
// - Infinity follows IEEE: overflow, x/0 and inf operands give +-inf, x/inf gives a signed zero,
//   sqrt(+inf) = +inf. Every NaN result is the canonical quiet NaN 0x7fc00000 (invalid
//   operations: 0*inf, inf-inf, 0/0, inf/inf, sqrt of a negative non-zero, NaN operands, op 7);
//   IEEE leaves NaN sign and payload open, so this differs from x86's 0xffc00000 only in bits
//   the standard does not fix.
// - LDEXP saturates k to -512..511 (same results for every finite non-zero a); Rust's ldexp
//   gives NaN for a zero a with k >= 1024 (0 * inf), this unit gives the signed zero.
//
// Interface: valid/ready request (op_i, a_i, b_i, int_i sampled on acceptance), valid/ready
// response (res_o stable while rsp_valid_o is high). One operation in flight.

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

  localparam int EXP_W = 12;  // signed biased exponent: MUL/DIV/LDEXP/I2F need -512..767

  localparam logic [2:0] OP_MUL   = 3'd0;
  localparam logic [2:0] OP_DIV   = 3'd1;
  localparam logic [2:0] OP_ADD   = 3'd2;
  localparam logic [2:0] OP_SUB   = 3'd3;
  localparam logic [2:0] OP_SQRT  = 3'd4;
  localparam logic [2:0] OP_I2F   = 3'd5;
  localparam logic [2:0] OP_LDEXP = 3'd6;

  typedef enum logic [2:0] {
    S_IDLE,   // waiting for a request
    S_ALIGN,  // ADD/SUB: shift the smaller operand right, then add
    S_MUL,    // MUL: shift-and-add steps
    S_DIV,    // DIV: restoring division steps
    S_SQRT,   // SQRT: restoring square-root steps
    S_I2F,    // I2F: shift the integer left to its leading one
    S_NORM,   // normalize N one bit per cycle, then round
    S_DONE    // result valid
  } state_e;

  // ---------------------------------------------------------------- registers
  state_e             state_q, state_d;
  logic [4:0]         cnt_q, cnt_d;       // remaining steps of the current iteration
  logic [23:0]        x_q, x_d;           // multiplicand / divisor / radicand / larger addend
  logic [27:0]        w_q, w_d;           // multiplier / remainder / smaller addend
  logic [27:0]        n_q, n_d;           // result significand: N[26] = leading one, N[27] carry
  logic               sticky_q, sticky_d; // OR of result bits below N[0]
  logic [EXP_W-1:0]   exp_q, exp_d;       // biased exponent of N[26], two's complement
  logic               sign_q, sign_d;     // sign of a non-zero result
  logic               zsign_q, zsign_d;   // sign of an exact-zero result
  logic               sub_q, sub_d;       // ADD/SUB: magnitudes are subtracted
  logic               odd_q, odd_d;       // SQRT: unbiased exponent is odd
  logic               inf_q, inf_d;       // special result: infinity
  logic               nan_q, nan_d;       // special result: NaN
  logic [INT_W-1:0]   int_q, int_d;       // I2F: the integer
  logic [31:0]        res_q, res_d;       // the rounded result

  // ---------------------------------------------------------------- operand decoding
  wire logic       sa     = a_i[31];
  wire logic       sb     = b_i[31] ^ (op_i == OP_SUB);  // SUB is ADD of -b
  wire logic [7:0] ea     = a_i[30:23];
  wire logic [7:0] eb     = b_i[30:23];
  wire logic       a_zero = ea == 8'd0;                  // zero, or subnormal read as zero
  wire logic       b_zero = eb == 8'd0;
  wire logic       a_inf  = ea == 8'hff && a_i[22:0] == '0;
  wire logic       b_inf  = eb == 8'hff && b_i[22:0] == '0;
  wire logic       a_nan  = ea == 8'hff && a_i[22:0] != '0;
  wire logic       b_nan  = eb == 8'hff && b_i[22:0] != '0;
  wire logic [23:0] ma    = a_zero ? 24'd0 : {1'b1, a_i[22:0]};
  wire logic [23:0] mb    = b_zero ? 24'd0 : {1'b1, b_i[22:0]};

  // X takes b and W takes a for MUL and DIV; ADD/SUB put the larger magnitude in X.
  wire logic       b_larger = b_i[30:0] > a_i[30:0];
  wire logic       is_add   = op_i == OP_ADD || op_i == OP_SUB;
  wire logic       swap     = op_i == OP_MUL || op_i == OP_DIV || (is_add && b_larger);
  wire logic [7:0] e_big    = swap ? eb : ea;
  wire logic [7:0] e_diff   = e_big - (swap ? ea : eb);  // ADD: >= 0 because |X| >= |W|
  // ADD alignment shifts; 27 or more move all of W into its sticky bit.
  wire logic [4:0] align_cnt = e_diff > 8'd31 ? 5'd31 : e_diff[4:0];

  // LDEXP: k = b_i, saturated to -512..511 (enough to overflow or underflow any exponent).
  wire logic       k_fits = b_i[31:9] == {23{b_i[31]}};
  wire logic [9:0] k_sat  = k_fits ? b_i[9:0] : {b_i[31], {9{!b_i[31]}}};

  wire logic [EXP_W-1:0] ea_x = EXP_W'(ea);
  wire logic [EXP_W-1:0] eb_x = EXP_W'(eb);

  // Exponent of N[26] at the start (biased), and special results, per operation.
  logic [EXP_W-1:0] exp_init;
  logic             spec_nan, spec_inf, spec_zero;
  always_comb begin
    exp_init  = ea_x;
    spec_nan  = a_nan || b_nan;
    spec_inf  = 1'b0;
    spec_zero = 1'b0;
    case (op_i)
      OP_MUL: begin
        exp_init = ea_x + eb_x - EXP_W'(127);
        spec_nan = a_nan || b_nan || (a_inf && b_zero) || (a_zero && b_inf);
        spec_inf = a_inf || b_inf;
      end
      OP_DIV: begin
        exp_init  = ea_x - eb_x + EXP_W'(127);
        spec_nan  = a_nan || b_nan || (a_inf && b_inf) || (a_zero && b_zero);
        spec_inf  = a_inf || b_zero;
        spec_zero = b_inf;
      end
      OP_ADD, OP_SUB: begin
        exp_init = EXP_W'(e_big);
        spec_nan = a_nan || b_nan || (a_inf && b_inf && sa != sb);
        spec_inf = a_inf || b_inf;
      end
      OP_SQRT: begin
        // floor(e / 2) + 1 with e = ea - 127, biased (+127): (ea + 129) / 2. The +1 is undone
        // by the normalization: the root's leading bit arrives in N[25].
        exp_init = (ea_x + EXP_W'(129)) >> 1;
        spec_nan = a_nan || (sa && !a_zero);
        spec_inf = a_inf;
      end
      OP_I2F: begin
        exp_init = EXP_W'(INT_W + 126);  // the integer's MSB, biased
        spec_nan = 1'b0;
      end
      OP_LDEXP: begin
        exp_init = ea_x + EXP_W'($signed(k_sat));
        spec_nan = a_nan;
        spec_inf = a_inf;
      end
      default: spec_nan = 1'b1;
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

  // DIV and SQRT share one trial subtraction.
  //   DIV:  remainder W against the divisor {X, 000}; W <- 2 * (restored remainder).
  //   SQRT: (remainder W, next radicand pair) against (root N, 01); W <- restored remainder.
  wire logic        is_sqrt = state_q == S_SQRT;
  wire logic [25:0] rad     = odd_q ? {x_q, 2'b00} : {1'b0, x_q, 1'b0};  // radicand * 2^-26
  logic [1:0] pair;  // radicand bits for this step: pair 12 (top) first, zeros after pair 0
  always_comb begin
    pair = 2'b00;
    for (int i = 0; i < 13; i++) begin
      if (cnt_q == 5'(i + 14)) pair = rad[2*i +: 2];
    end
  end
  wire logic [27:0] rem_in  = is_sqrt ? {w_q[25:0], pair} : w_q;
  wire logic [27:0] trial   = is_sqrt ? {n_q[25:0], 2'b01} : big;
  wire logic [28:0] diff    = {1'b0, rem_in} - {1'b0, trial};
  wire logic        q_bit   = !diff[28];
  wire logic [27:0] rem_new = q_bit ? diff[27:0] : rem_in;
  wire logic [27:0] w_step  = is_sqrt ? rem_new : {rem_new[26:0], 1'b0};

  // N left shift: a quotient/root bit, or 0 when normalizing.
  wire logic [27:0] n_shl = {n_q[26:0], (state_q == S_DIV || is_sqrt) && q_bit};

  wire logic normalized = !n_q[27] && (n_q[26] || n_q == '0);
  // I2F: stop at the leading one, or after INT_W-1 shifts (the integer is 0).
  wire logic             i2f_stop   = int_q[INT_W-1] || exp_q == EXP_W'(127);
  wire logic [27:0]      i2f_n      = {1'b0, int_q[INT_W-1 -: 27]};
  wire logic             i2f_sticky = int_q[INT_W-28:0] != '0;
  wire logic [INT_W-1:0] int_shl    = {int_q[INT_W-2:0], 1'b0};
  wire logic             n_carry    = n_q[27];
  wire logic             n_lsb      = n_q[0];
  wire logic             a_exp_even = !ea[0];

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
        if (req_valid_i) begin
          x_d      = swap ? mb : ma;
          w_d      = {1'b0, swap ? ma : mb, 3'b000};
          n_d      = op_i == OP_LDEXP ? {1'b0, ma, 3'b000} : 28'd0;
          sticky_d = 1'b0;
          exp_d    = exp_init;
          sign_d   = is_add ? (swap ? sb : sa) : (op_i == OP_SQRT || op_i == OP_LDEXP) ? sa : sa ^ sb;
          zsign_d  = is_add ? sa && sb : (op_i == OP_SQRT || op_i == OP_LDEXP) ? sa : sa ^ sb;
          if (op_i == OP_I2F) begin
            sign_d  = 1'b0;
            zsign_d = 1'b0;
          end
          sub_d    = sa ^ sb;
          odd_d    = a_exp_even;
          inf_d    = spec_inf && !spec_nan;
          nan_d    = spec_nan;
          int_d    = int_i;
          case (op_i)
            OP_MUL, OP_DIV: cnt_d = 5'd27;
            OP_SQRT:        cnt_d = 5'd26;
            default:        cnt_d = align_cnt;
          endcase
          if (special) begin
            state_d = S_NORM;  // N is zero (or LDEXP's operand): straight to rounding
          end else begin
            case (op_i)
              OP_MUL:         state_d = S_MUL;
              OP_DIV:         state_d = S_DIV;
              OP_ADD, OP_SUB: state_d = S_ALIGN;
              OP_SQRT:        state_d = S_SQRT;
              OP_I2F:         state_d = S_I2F;
              default:        state_d = S_NORM;  // LDEXP
            endcase
          end
        end
      end
      S_ALIGN: begin
        if (cnt_q != '0) begin
          w_d   = w_shr;
          cnt_d = cnt_q - 5'd1;
        end else begin
          n_d     = add_res;
          state_d = S_NORM;
        end
      end
      S_MUL: begin
        if (cnt_q != '0) begin
          n_d      = n_shr;
          sticky_d = sticky_q | n_lsb;
          w_d      = w_shr;
          cnt_d    = cnt_q - 5'd1;
        end else begin
          state_d = S_NORM;
        end
      end
      S_DIV, S_SQRT: begin
        if (cnt_q != '0) begin
          n_d   = n_shl;
          w_d   = w_step;
          cnt_d = cnt_q - 5'd1;
        end else begin
          sticky_d = w_q != '0;  // non-zero remainder: the exact result has more bits
          state_d  = S_NORM;
        end
      end
      S_I2F: begin
        if (i2f_stop) begin
          n_d      = i2f_n;
          sticky_d = i2f_sticky;
          state_d  = S_NORM;
        end else begin
          int_d = int_shl;
          exp_d = exp_q - EXP_W'(1);
        end
      end
      S_NORM: begin
        if (n_carry) begin
          n_d      = n_shr;
          sticky_d = sticky_q | n_lsb;
          exp_d    = exp_q + EXP_W'(1);
        end else if (!normalized) begin
          n_d   = n_shl;
          exp_d = exp_q - EXP_W'(1);
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
