// SPDX-License-Identifier: Apache-2.0
//
// vec_quant: per-token absmax quantization, optionally fused with RMSNorm -- exactly
// model::numerics::quantize_wide (docs/numerics.md §3). Every engine that turns a vector into
// codes uses this one: NORM_QUANT and FFN_ACT (int8 for the next linear layer), ROPE_KV (the KV
// cache, qmax 127 or 7), ATTENTION (the query), LM_HEAD (int16, qmax 32767).
//
//   load   x_i streams in: p_i = x_i * gain_i (or x_i) kept on chip, max |p_i| and sum x_i^2
//          accumulated exactly (three stages per group);
//   inv    inv = qmax / f32(max) on the sequential fp32_scalar unit (integer conversions in two
//          cycles: trit_num::lead_one, a register, trit_num::i2f_at);
//   codes  code_i = clamp(requant(p_i, inv, 0), -qmax, qmax) streams out while the rest of the
//          token's binary32 steps (the scale, with 1/rms only in the scale) run on the scalar
//          unit; then `done_o` with the scale.
// Pipelined over tokens: the next vector may be started as soon as `ready_o` is high and loads
// while this one's codes stream out, writing each slot of the buffer only after the codes have
// read it (the load never overtakes the codes). `scale_o` holds the scale of the vector whose
// `done_o` pulsed last, until the next `done_o`.
// Gains are written through the g_* port before `start_i`, eight per write (one 16-byte read
// element); they stay for every token. LANES values go in and LANES codes come out per cycle
// (lane l of group j is element j * LANES + l; lanes past n are ignored on input and give code
// 0 on output).

`default_nettype none

module vec_quant #(
  parameter int DEPTH = 64,  // longest vector
  parameter int LANES = 1,   // elements per cycle (1, 2, 4 or 8)
  parameter bit NORM  = 1    // 0: no RMSNorm (norm_i ignored): no gains, products or squares
) (
  input  wire logic              clk_i,
  input  wire logic              rst_ni,
  input  wire logic              g_we_i,
  input  wire logic [31:0]       g_addr_i,  // gains 8*addr .. 8*addr+7
  input  wire logic [127:0]      g_data_i,  // eight int16 gains, the first in the low bits
  input  wire logic              start_i,   // taken only while ready_o
  output      logic              ready_o,   // a new vector may start
  input  wire logic [31:0]       n_i,       // 1..DEPTH
  input  wire logic signed [31:0] ex_i,     // value of x_i is x_i * 2^ex
  input  wire logic signed [31:0] shift_i,  // norm gains are gain_i * 2^-shift
  input  wire logic              norm_i,
  input  wire logic [15:0]       qmax_i,
  input  wire logic [31:0]       eps_i,     // binary32
  input  wire logic              in_valid_i,
  output      logic              in_ready_o,
  input  wire logic [32*LANES-1:0] in_data_i,  // LANES signed 32-bit values
  output      logic              code_valid_o,
  input  wire logic              code_ready_i,
  output      logic [16*LANES-1:0] code_o,   // LANES signed 16-bit codes
  output      logic              done_o,    // pulse after the last code
  output      logic [31:0]       scale_o    // binary32, valid from done_o until the next start
);

  localparam logic [2:0] DIV = 3'd1, ADD = 3'd2, SQRT = 3'd4, I2F = 3'd5, LDEXP = 3'd6;

  localparam int GW = (DEPTH + 7) / 8;  // gain words
  localparam int GAW = GW > 1 ? $clog2(GW) : 1;
  logic [127:0]       gain [GW];
  // The products in rows of one group (LANES lanes), written and read a group at a time so the
  // buffer is one memory (one write and one read port: LUT-RAM), not DEPTH registers with a
  // DEPTH-way multiplexer per lane.
  localparam int PG = (DEPTH + LANES - 1) / LANES;  // groups
  localparam int PAW = PG > 1 ? $clog2(PG) : 1;
  // p_i = x_i * gain_i needs 48 bits; without a norm p_i = x_i, 32 bits (and the code's requant
  // a narrower multiplier).
  localparam int PW = NORM ? 48 : 32;
  logic [PW*LANES-1:0] pbuf [PG];
  always_ff @(posedge clk_i) if (g_we_i) gain[GAW'(g_addr_i)] <= g_data_i;

  // Front: loads a vector. Back: its inverse, codes and scale. The front hands a loaded vector
  // to the back as soon as the back is free.
  typedef enum logic [1:0] {F_IDLE, F_LOAD, F_HAND} front_e;
  typedef enum logic [1:0] {B_IDLE, B_INV, B_CODES} back_e;
  front_e f_state_q;
  back_e  b_state_q;
  // A vector's parameters and load results: the front fills one, hands it to the back.
  typedef struct packed {
    logic [31:0]        n;
    logic signed [31:0] ex, shift;
    logic               norm;
    logic [15:0]        qmax;
    logic [31:0]        eps;
    logic [47:0]        mx;   // max |p_i|
    logic [79:0]        ss;   // sum x_i^2
  } vec_t;
  vec_t               f_q;      // front: the vector being loaded
  vec_t               b_q;      // back: the vector whose codes are produced
  // Group counts and indices at the widths n <= DEPTH admits, the counts registered with n (at
  // 32 bits, their sums and compares in front of in_ready_o were op_rope_kv's longest path).
  localparam int GCW = $clog2(PG + 1);
  logic [GCW-1:0]     f_idx_q;     // group (LANES elements) being loaded
  logic [GCW-1:0]     idx_q;       // group whose codes go out
  logic [GCW-1:0]     f_groups_q;  // the front's vector's groups
  logic [GCW-1:0]     groups_q;    // the back's
  logic [3:0]         step_q;
  logic               steps_done_q;  // every scalar step of the back's vector done
  logic               req_sent_q;
  // Scalar registers: f32(max), f32(qmax), inv, the scale's numerator, f32(n), a temporary, the
  // scale.
  logic [31:0]        r_mx_q, r_q_q, r_inv_q, r_top_q, r_n_q, r_t_q, r_scale_q;

  // ---------------------------------------------------------------- load
  assign ready_o = f_state_q == F_IDLE;
  // The codes read group idx_q of the buffer; the load may write group f_idx_q only once that
  // has been read (or while no codes are pending).
  wire logic codes_pending = b_state_q != B_IDLE && !(b_state_q == B_CODES && idx_q >= groups_q);
  assign in_ready_o = f_state_q == F_LOAD && f_idx_q < f_groups_q &&
                      (!codes_pending || (b_state_q == B_CODES && f_idx_q < idx_q));
  wire logic in_fire = in_valid_i && in_ready_o;
  // A group taken goes through five registered stages (the producer's logic ends at the first;
  // a product, its magnitude, a four-way maximum and the running maximum in one cycle were the
  // quantizers' longest path, then the gain word's read and select in front of the product,
  // then the product's and the square's DSP tiles and the adders joining them in one cycle):
  //   l  the values (0 past n) and their gain word;
  //   s  per lane the value and its gain (1 without a norm);
  //   m  per lane the DSP pieces of the product with its gain and of the square;
  //   n  per lane the product, its magnitude and the square;
  //   g  the group's max |p| and sum of squares, its products written to the buffer;
  // then the vector's running max and sum take the group's.
  logic                l_v_q, s_v_q, m_v_q, n_v_q, g_v_q;                  // the stage holds a group
  logic                l_last_q, s_last_q, m_last_q, n_last_q, g_last_q;  // ... the vector's last
  logic [31:0]         l_idx_q;   // ... which
  logic [PAW-1:0]      s_idx_q, m_idx_q, n_idx_q;
  logic [32*LANES-1:0] l_x_q;     // l: the group's values
  always_ff @(posedge clk_i) begin
    l_last_q <= 32'(f_idx_q) + 1 == 32'(f_groups_q);
    l_idx_q  <= 32'(f_idx_q);
    for (int l = 0; l < LANES; l++) begin
      l_x_q[32*l +: 32] <= f_idx_q * 32'(LANES) + 32'(l) < f_q.n ? in_data_i[32*l +: 32] : 32'd0;
    end
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      l_v_q <= 1'b0;
      s_v_q <= 1'b0;
      m_v_q <= 1'b0;
      n_v_q <= 1'b0;
      g_v_q <= 1'b0;
    end else begin
      l_v_q <= in_fire;
      s_v_q <= l_v_q;
      m_v_q <= s_v_q;
      n_v_q <= m_v_q;
      g_v_q <= n_v_q;
    end
  end
  // A group's gains share one 8-gain word (LANES divides 8).
  // (read with the input register: block RAM, not LUT-RAM and a multiplexer)
  logic [127:0] gain_row;
  always_ff @(posedge clk_i) gain_row <= gain[GAW'((f_idx_q * 32'(LANES)) >> 3)];
  // The pieces split a value at bit 17: x = xh 2^17 + xl, xl unsigned, so every piece product
  // is one DSP48E2 multiply (at most 18 x 18 bits): p = x g = (xh g) 2^17 + xl g and
  // x^2 = xh^2 2^34 + 2 (xh xl) 2^17 + xl^2.
  logic signed [31:0]  s_x_q  [LANES];  // s: the values
  logic signed [15:0]  s_g_q  [LANES];  // ... their gains
  logic signed [32:0]  m_pl_q [LANES];  // m: xl g
  logic signed [30:0]  m_ph_q [LANES];  // ... xh g
  logic [33:0]         m_ll_q [LANES];  // ... xl^2
  logic signed [32:0]  m_hl_q [LANES];  // ... xh xl
  logic [29:0]         m_hh_q [LANES];  // ... xh^2
  logic [31:0]         m_x_q  [LANES];  // ... x (without a norm, the product)
  logic signed [47:0]  n_p_q  [LANES];  // n: the products
  logic [47:0]         n_mag_q [LANES]; // ... their magnitudes
  logic [63:0]         n_sq_q [LANES];  // ... the squares (with a norm)
  always_ff @(posedge clk_i) begin
    s_last_q <= l_last_q;
    s_idx_q  <= PAW'(l_idx_q);
    m_last_q <= s_last_q;
    m_idx_q  <= s_idx_q;
    n_last_q <= m_last_q;
    n_idx_q  <= m_idx_q;
    for (int l = 0; l < LANES; l++) begin
      logic [2:0] e;  // the element's gain within the 8-gain word
      logic signed [17:0] xl;
      logic signed [14:0] xh;
      logic signed [47:0] p;
      e = 3'(l_idx_q * 32'(LANES) + 32'(l));
      s_x_q[l]  <= $signed(l_x_q[32*l +: 32]);
      s_g_q[l]  <= NORM && f_q.norm ? $signed(gain_row[16 * e +: 16]) : 16'sd1;
      xl = $signed({1'b0, s_x_q[l][16:0]});
      xh = s_x_q[l][31:17];
      m_pl_q[l] <= NORM ? 33'(xl) * 33'(s_g_q[l]) : '0;
      m_ph_q[l] <= NORM ? 31'(xh) * 31'(s_g_q[l]) : '0;
      m_ll_q[l] <= NORM ? 34'(34'(xl) * 34'(xl)) : '0;
      m_hl_q[l] <= NORM ? 33'(xh) * 33'(xl) : '0;
      m_hh_q[l] <= NORM ? 30'(30'(xh) * 30'(xh)) : '0;
      m_x_q[l]  <= s_x_q[l];
      p = NORM ? (48'(m_ph_q[l]) <<< 17) + 48'(m_pl_q[l]) : 48'($signed(m_x_q[l]));
      n_p_q[l]   <= p;
      n_mag_q[l] <= p < 0 ? 48'(0 - p) : 48'(p);
      n_sq_q[l]  <= NORM ? (64'(m_hh_q[l]) << 34) + 64'(64'(m_hl_q[l]) <<< 18) + 64'(m_ll_q[l]) : 64'd0;
    end
  end
  logic [PW*LANES-1:0] p_row;  // the group's products, lane l at PW*l
  logic [47:0]         g_max;  // max |p| over the group's lanes
  logic [79:0]         g_ss;   // sum of x^2 over the group's lanes
  logic [47:0]         g_max_q;
  logic [79:0]         g_ss_q;
  // The max as a tree (mt[i] = max(mt[2i], mt[2i+1]) over the lanes' magnitudes at
  // mt[LANES + l]; a chain of LANES compares was the longest path of the engines that quantize).
  logic [47:0] mt [1:2*LANES-1];
  always_comb begin
    g_ss = '0;
    for (int l = 0; l < LANES; l++) begin
      p_row[PW*l +: PW] = PW'(n_p_q[l]);
      mt[LANES+l] = n_mag_q[l];
      g_ss = g_ss + 80'(n_sq_q[l]);
    end
    for (int i = LANES - 1; i >= 1; i--) mt[i] = mt[2*i] > mt[2*i+1] ? mt[2*i] : mt[2*i+1];
    g_max = mt[1];
  end
  always_ff @(posedge clk_i) begin
    g_last_q <= n_last_q;
    g_max_q  <= g_max;
    g_ss_q   <= g_ss;
    if (n_v_q) pbuf[n_idx_q] <= p_row;
  end

  // ---------------------------------------------------------------- scalar steps
  // step: 0 mx = f32(max)   1 q = f32(qmax)   2 inv = q / mx          (before the codes)
  //       3 top = ldexp(mx, ex - shift)                               (while the codes stream)
  // with a norm: 4 t = f32(ss)  5 t = ldexp(t, 2 ex)  6 n = f32(n)  7 t = t / n  8 t = t + eps
  //              9 t = sqrt(t)  10 top = top / t
  // 11 scale = top / q
  logic [2:0]  s_op;
  logic [31:0] s_a, s_b;
  logic [95:0] s_int;
  always_comb begin
    s_op = I2F;
    s_a = r_t_q;
    s_b = '0;
    s_int = '0;
    unique case (step_q)
      4'd0:  s_int = 96'(b_q.mx);
      4'd1:  s_int = 96'(b_q.qmax);
      4'd2:  begin s_op = DIV;   s_a = r_q_q;   s_b = r_mx_q; end
      4'd3:  begin s_op = LDEXP; s_a = r_mx_q;  s_b = b_q.ex - (b_q.norm ? b_q.shift : 32'sd0); end
      4'd4:  s_int = 96'(b_q.ss);
      4'd5:  begin s_op = LDEXP; s_b = 32'(b_q.ex <<< 1); end
      4'd6:  s_int = 96'(b_q.n);
      4'd7:  begin s_op = DIV;   s_b = r_n_q; end
      4'd8:  begin s_op = ADD;   s_b = b_q.eps; end
      4'd9:  s_op = SQRT;
      4'd10: begin s_op = DIV;   s_a = r_top_q; s_b = r_t_q; end
      default: begin s_op = DIV; s_a = r_top_q; s_b = r_q_q; end
    endcase
  end

  // Integer conversions need no trip through fp32_scalar: the operand and its leading one's
  // position are registered when the step is "sent", the shift and the round and sticky bits
  // the cycle after, the rounding answers the cycle after that (a 96-bit priority encoder,
  // shifter and rounding in one cycle were the quantizers' longest path, then the shift and the
  // rounding in one).
  wire logic stepping = (b_state_q == B_INV || b_state_q == B_CODES) && !steps_done_q;
  wire logic local_step = s_op == I2F;
  logic s_ready, s_valid, s_fp_valid;
  logic [31:0] s_res, s_fp_res;
  logic [95:0] i2f_x_q;
  logic [7:0]  i2f_e_q;
  logic [trit_num::I2F_MID_W-1:0] i2f_mid_q;
  logic        i2f_late_q;  // req_sent_q a cycle ago: the conversion is through
  always_ff @(posedge clk_i) begin
    i2f_x_q    <= s_int;
    i2f_e_q    <= trit_num::lead_one(s_int);
    i2f_mid_q  <= trit_num::i2f_front(i2f_x_q, i2f_e_q);
    i2f_late_q <= req_sent_q;
  end
  wire logic [31:0] i2f_res = trit_num::i2f_back(i2f_mid_q);
  assign s_valid = local_step ? stepping && req_sent_q && i2f_late_q : s_fp_valid;
  assign s_res   = local_step ? i2f_res : s_fp_res;
  // The other steps' operands go to fp32_scalar registered (the step's operand select in front
  // of the unit's acceptance logic was the quantizers' longest path): a request waits until they
  // belong to the current step, the cycle after a step or a vector begins. fp32_scalar never
  // converts integers here, so its integer input is tied off.
  logic [2:0]  s_op_q;
  logic [31:0] s_a_q, s_b_q;
  logic        s_opnd_ok_q;  // s_*_q are the current step's
  always_ff @(posedge clk_i) begin
    s_op_q <= s_op;
    s_a_q  <= s_a;
    s_b_q  <= s_b;
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) s_opnd_ok_q <= 1'b0;
    else s_opnd_ok_q <= stepping && !s_valid;
  end
  wire logic s_fp_req = stepping && !req_sent_q && !local_step && s_opnd_ok_q;
  fp32_scalar #(.INT_W (96)) u_fp (
    .clk_i, .rst_ni,
    .req_valid_i (s_fp_req), .req_ready_o (s_ready),
    .op_i (s_op_q), .a_i (s_a_q), .b_i (s_b_q), .int_i ('0),
    .rsp_valid_o (s_fp_valid), .rsp_ready_i (1'b1), .res_o (s_fp_res)
  );

  // ---------------------------------------------------------------- codes
  // A code is clamp(requant(p, inv, 0), -qmax, qmax) of the product p of a buffered value and
  // inv's significand: requant_round with 17-bit results (codes are at most 16 bits, so
  // saturating there first changes no clamp), its shift decoded once per vector (registered:
  // inv's exponent changes only between vectors), then the clamp. A four-lane quantizer without a
  // norm: 8.3 k LUTs with 96-bit shifters per lane, 5.0 k with one window shifter per lane
  // (yosys synth_xilinx alone).
  localparam int CW = PW + 25;  // a PW-bit value times a 24-bit significand (25 bits, signed)
  localparam int YW = 17;       // requant's result bits before the clamp
  localparam int YQ = YW + 1;   // ... compared with qmax (unsigned 16 bits) as signed

  // A group read from the buffer is registered, multiplied by inv's significand in two stages
  // (mul_pieces: each DSP's piece product, then their sum), rounded in two (requant_round's
  // window, registered, then the rest), then clamped into the output register (the six move as
  // an elastic pipeline, holding while the consumer is not ready). The whole 48 x 25-bit product
  // in one cycle (four DSPs and their adders) was the longest path of the engines that
  // quantize; rounding and clamp on the way out, into the consumer's logic, had been before it,
  // then the rounding and the clamp in one cycle, then the buffer's read into the DSPs, then the
  // rounding in one cycle after the products' sum.
  logic                k_v_q;      // k_row_q holds a group read from the buffer
  logic                h_v_q;      // mul_pieces' first stage holds a group's piece products
  logic                c_v_q;      // ... its second the products
  logic                w_v_q;      // requant_round's window register holds a group's
  logic                r_v_q;      // r_y_q holds a group's rounded products
  logic                o_v_q;      // the output register holds a group's codes
  wire logic           o_adv  = !o_v_q || code_ready_i;
  wire logic           r_adv  = !r_v_q || o_adv;
  wire logic           w_adv  = !w_v_q || r_adv;
  wire logic           c_adv  = !c_v_q || w_adv;
  wire logic           h_adv  = !h_v_q || c_adv;
  wire logic           k_adv  = !k_v_q || h_adv;
  wire logic           c_take = b_state_q == B_CODES && idx_q < groups_q && k_adv;
  // The buffer is read a cycle ahead, at the group idx_q will be next cycle (block RAM). The
  // load writes only groups the codes have taken, and a vector's codes start after its load.
  wire logic [PAW-1:0] idx_next = b_state_q == B_IDLE ? '0 : PAW'(c_take ? idx_q + GCW'(1) : idx_q);
  logic [PW*LANES-1:0] code_row, k_row_q;
  always_ff @(posedge clk_i) code_row <= pbuf[idx_next];
  always_ff @(posedge clk_i) if (k_adv) k_row_q <= code_row;
  wire logic signed [24:0]  inv_sig  = trit_num::significand(r_inv_q);
  logic [CW*LANES-1:0] c_p_row;  // the products, lane l at CW * l
  for (genvar l = 0; l < LANES; l++) begin : g_mul
    wire logic signed [PW-1:0] a = k_row_q[PW*l +: PW];
    logic signed [CW-1:0]      p;
    mul_pieces #(.A_W (PW), .B_W (25)) u_mul (
      .clk_i, .en1_i (h_adv), .en2_i (c_adv), .a_i (a), .b_i (inv_sig), .p_o (p)
    );
    assign c_p_row[CW*l +: CW] = p;
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      k_v_q <= 1'b0;
      h_v_q <= 1'b0;
      c_v_q <= 1'b0;
      w_v_q <= 1'b0;
      r_v_q <= 1'b0;
      o_v_q <= 1'b0;
    end else begin
      if (k_adv) k_v_q <= c_take;
      if (h_adv) h_v_q <= k_v_q;
      if (c_adv) c_v_q <= h_v_q;
      if (w_adv) w_v_q <= c_v_q;
      if (r_adv) r_v_q <= w_v_q;
      if (o_adv) o_v_q <= r_v_q;
    end
  end
  assign code_valid_o = o_v_q;
  // inv's exponent is decoded the cycle after inv is set, when the first group's products are
  // registered: ready when they are rounded.
  logic [YW*LANES-1:0] c_y;
  requant_round #(
    .LANES (LANES), .P_W (CW), .FRAC (0), .OUT_W (YW), .DECODE_REG (1'b1), .APPLY_REG (1'b1)
  ) u_round (
    .clk_i, .en_i (w_adv), .p_i (c_p_row), .e_i (r_inv_q[30:23]), .y_o (c_y)
  );
  logic [YW*LANES-1:0] r_y_q;
  always_ff @(posedge clk_i) if (r_adv) r_y_q <= c_y;
  always_ff @(posedge clk_i) begin
    if (o_adv) begin
      for (int l = 0; l < LANES; l++) begin
        logic signed [YQ-1:0] y;
        logic signed [YQ-1:0] qm;
        y  = YQ'($signed(r_y_q[YW*l +: YW]));
        qm = YQ'($signed({1'b0, b_q.qmax}));
        if (y > qm) code_o[16*l +: 16] <= 16'(qm);
        else if (y < -qm) code_o[16*l +: 16] <= 16'(-qm);
        else code_o[16*l +: 16] <= 16'(y);
      end
    end
  end

  // The front's vector goes to the back when the back is free (its codes and steps all done).
  wire logic hand = f_state_q == F_HAND && b_state_q == B_IDLE;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      f_state_q    <= F_IDLE;
      f_q          <= '0;
      f_idx_q      <= '0;
      f_groups_q   <= '0;
      groups_q     <= '0;
      b_state_q    <= B_IDLE;
      b_q          <= '0;
      idx_q        <= '0;
      step_q       <= '0;
      steps_done_q <= 1'b0;
      req_sent_q   <= 1'b0;
      r_mx_q       <= '0;
      r_q_q        <= '0;
      r_inv_q      <= '0;
      r_top_q      <= '0;
      r_n_q        <= '0;
      r_t_q        <= '0;
      r_scale_q    <= '0;
      scale_o      <= '0;
      done_o       <= 1'b0;
    end else begin
      done_o <= 1'b0;
      // ---- front
      unique case (f_state_q)
        F_IDLE: if (start_i) begin
          f_q.n     <= n_i;
          f_groups_q <= GCW'((n_i + 32'(LANES) - 1) / 32'(LANES));
          f_q.ex    <= ex_i;
          f_q.shift <= shift_i;
          f_q.norm  <= NORM && norm_i;
          f_q.qmax  <= qmax_i;
          f_q.eps   <= eps_i;
          f_q.mx    <= '0;
          f_q.ss    <= '0;
          f_idx_q   <= '0;
          f_state_q <= F_LOAD;
        end
        F_LOAD: begin
          if (in_fire) f_idx_q <= f_idx_q + 1;
          if (g_v_q) begin
            if (g_max_q > f_q.mx) f_q.mx <= g_max_q;
            f_q.ss <= f_q.ss + g_ss_q;
            if (g_last_q) f_state_q <= F_HAND;
          end
        end
        F_HAND: if (hand) f_state_q <= F_IDLE;
        default: f_state_q <= F_IDLE;
      endcase
      // ---- back
      unique case (b_state_q)
        B_IDLE: if (hand) begin
          b_q          <= f_q;
          groups_q     <= f_groups_q;
          idx_q        <= '0;
          step_q       <= '0;
          req_sent_q   <= 1'b0;
          steps_done_q <= 1'b0;
          // An all-zero vector has codes 0 and scale 0 (no division by zero).
          if (f_q.mx == '0) begin
            r_inv_q      <= '0;
            r_scale_q    <= '0;
            steps_done_q <= 1'b1;
            b_state_q    <= B_CODES;
          end else begin
            b_state_q <= B_INV;
          end
        end
        B_INV, B_CODES: begin
          if ((stepping && !req_sent_q && local_step) || (s_fp_req && s_ready)) req_sent_q <= 1'b1;
          if (stepping && s_valid) begin
            req_sent_q <= 1'b0;
            step_q     <= step_q + 1;
            unique case (step_q)
              4'd0:  r_mx_q  <= s_res;
              4'd1:  r_q_q   <= s_res;
              4'd2:  begin r_inv_q <= s_res; b_state_q <= B_CODES; end
              4'd3:  begin r_top_q <= s_res; if (!b_q.norm) step_q <= 4'd11; end
              4'd6:  r_n_q   <= s_res;
              4'd10: r_top_q <= s_res;
              4'd11: begin r_scale_q <= s_res; steps_done_q <= 1'b1; end
              default: r_t_q <= s_res;
            endcase
          end
          if (c_take) idx_q <= idx_q + 1;
          // Codes and scale both done (the scale register is final once steps_done_q is set).
          if (b_state_q == B_CODES && idx_q >= groups_q && !k_v_q && !h_v_q && !c_v_q && !w_v_q && !r_v_q &&
              !o_v_q && steps_done_q) begin
            scale_o   <= r_scale_q;
            done_o    <= 1'b1;
            b_state_q <= B_IDLE;
          end
        end
        default: b_state_q <= B_IDLE;
      endcase
    end
  end

  logic unused;
  assign unused = ^g_addr_i;

endmodule

`resetall
