// SPDX-License-Identifier: Apache-2.0
//
// vec_quant: per-token absmax quantization, optionally fused with RMSNorm -- exactly
// model::numerics::quantize_wide (docs/numerics.md §3). Every engine that turns a vector into
// codes uses this one: NORM_QUANT and FFN_ACT (int8 for the next linear layer), ROPE_KV (the KV
// cache, qmax 127 or 7), ATTENTION (the query), LM_HEAD (int16, qmax 32767).
//
//   load   x_i streams in: p_i = x_i * gain_i (or x_i) kept on chip, max |p_i| and sum x_i^2
//          accumulated exactly;
//   scalar the few binary32 operations of the token (table below): integer conversions in one
//          cycle (trit_num::i2f), divides, square root and adds on the sequential fp32_scalar
//          unit: inv = qmax / f32(max) and the scale, with 1/rms only in the scale;
//   codes  code_i = clamp(requant(p_i, inv, 0), -qmax, qmax) streams out, then `done_o` with
//          the scale.
// Gains are written through the g_* port before `start_i`, eight per write (one 16-byte read
// element); they stay for every token. LANES values go in and LANES codes come out per cycle
// (lane l of group j is element j * LANES + l; lanes past n are ignored on input and give code
// 0 on output).

`default_nettype none

module vec_quant #(
  parameter int DEPTH = 64,  // longest vector
  parameter int LANES = 1    // elements per cycle (1, 2, 4 or 8)
) (
  input  wire logic              clk_i,
  input  wire logic              rst_ni,
  input  wire logic              g_we_i,
  input  wire logic [31:0]       g_addr_i,  // gains 8*addr .. 8*addr+7
  input  wire logic [127:0]      g_data_i,  // eight int16 gains, the first in the low bits
  input  wire logic              start_i,
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
  localparam int PD = (DEPTH + LANES - 1) / LANES * LANES;  // DEPTH rounded up to whole groups
  localparam int PAW = PD > 1 ? $clog2(PD) : 1;
  logic signed [47:0] pbuf [PD];
  always_ff @(posedge clk_i) if (g_we_i) gain[GAW'(g_addr_i)] <= g_data_i;

  typedef enum logic [1:0] {IDLE, LOAD, SCALAR, CODES} state_e;
  state_e state_q;
  logic [31:0]        n_q, idx_q;      // idx_q: group (LANES elements)
  wire logic [31:0]   groups = (n_q + 32'(LANES) - 1) / 32'(LANES);
  logic signed [31:0] ex_q, shift_q;
  logic               norm_q;
  logic [15:0]        qmax_q;
  logic [31:0]        eps_q;
  logic [47:0]        mx_q;
  logic [79:0]        ss_q;
  logic [3:0]         step_q;
  logic               req_sent_q;
  // Scalar registers: f32(max), f32(qmax), inv, the scale's numerator, f32(n), a temporary.
  logic [31:0]        r_mx_q, r_q_q, r_inv_q, r_top_q, r_n_q, r_t_q;

  // ---------------------------------------------------------------- load
  assign in_ready_o = state_q == LOAD;
  wire logic in_fire = in_valid_i && in_ready_o;
  // Per lane: the product with its gain, |product|, the square; then the group's max and sum.
  logic signed [47:0] p_in  [LANES];
  logic [47:0]        g_max;   // max |p| over the group's lanes
  logic [79:0]        g_ss;    // sum of x^2 over the group's lanes
  always_comb begin
    g_max = '0;
    g_ss  = '0;
    for (int l = 0; l < LANES; l++) begin
      logic [31:0]        e;
      logic signed [31:0] x;
      logic [127:0]       w;
      logic signed [15:0] g;
      logic [47:0]        a;
      e = idx_q * 32'(LANES) + 32'(l);
      x = e < n_q ? $signed(in_data_i[32*l +: 32]) : 32'sd0;
      w = gain[GAW'(e >> 3)];
      g = w[16 * e[2:0] +: 16];
      p_in[l] = norm_q ? 48'(x) * 48'(g) : 48'(x);
      a = p_in[l] < 0 ? 48'(0 - p_in[l]) : 48'(p_in[l]);
      if (a > g_max) g_max = a;
      g_ss = g_ss + 80'(64'(x * x));
    end
  end
  always_ff @(posedge clk_i) begin
    if (in_fire) for (int l = 0; l < LANES; l++) pbuf[PAW'(idx_q * 32'(LANES) + 32'(l))] <= p_in[l];
  end

  // ---------------------------------------------------------------- scalar steps
  // step: 0 mx = f32(max)   1 q = f32(qmax)   2 inv = q / mx   3 top = ldexp(mx, ex - shift)
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
      4'd0:  s_int = 96'(mx_q);
      4'd1:  s_int = 96'(qmax_q);
      4'd2:  begin s_op = DIV;   s_a = r_q_q;   s_b = r_mx_q; end
      4'd3:  begin s_op = LDEXP; s_a = r_mx_q;  s_b = ex_q - (norm_q ? shift_q : 32'sd0); end
      4'd4:  s_int = 96'(ss_q);
      4'd5:  begin s_op = LDEXP; s_b = 32'(ex_q <<< 1); end
      4'd6:  s_int = 96'(n_q);
      4'd7:  begin s_op = DIV;   s_b = r_n_q; end
      4'd8:  begin s_op = ADD;   s_b = eps_q; end
      4'd9:  s_op = SQRT;
      4'd10: begin s_op = DIV;   s_a = r_top_q; s_b = r_t_q; end
      default: begin s_op = DIV; s_a = r_top_q; s_b = r_q_q; end
    endcase
  end

  // Integer conversions need no trip through fp32_scalar.
  wire logic local_step = s_op == I2F;
  logic s_ready, s_valid, s_fp_valid;
  logic [31:0] s_res, s_fp_res;
  assign s_valid = local_step ? state_q == SCALAR : s_fp_valid;
  assign s_res   = local_step ? trit_num::i2f(s_int) : s_fp_res;
  fp32_scalar #(.INT_W (96)) u_fp (
    .clk_i, .rst_ni,
    .req_valid_i (state_q == SCALAR && !req_sent_q && !local_step), .req_ready_o (s_ready),
    .op_i (s_op), .a_i (s_a), .b_i (s_b), .int_i (s_int),
    .rsp_valid_o (s_fp_valid), .rsp_ready_i (1'b1), .res_o (s_fp_res)
  );

  // ---------------------------------------------------------------- codes
  assign code_valid_o = state_q == CODES;
  always_comb begin
    for (int l = 0; l < LANES; l++) begin
      code_o[16*l +: 16] = trit_num::clamp_code(
        trit_num::requant(64'(pbuf[PAW'(idx_q * 32'(LANES) + 32'(l))]), r_inv_q, 8'd0), qmax_q);
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q    <= IDLE;
      n_q        <= '0;
      idx_q      <= '0;
      ex_q       <= '0;
      shift_q    <= '0;
      norm_q     <= 1'b0;
      qmax_q     <= '0;
      eps_q      <= '0;
      mx_q       <= '0;
      ss_q       <= '0;
      step_q     <= '0;
      req_sent_q <= 1'b0;
      r_mx_q     <= '0;
      r_q_q      <= '0;
      r_inv_q    <= '0;
      r_top_q    <= '0;
      r_n_q      <= '0;
      r_t_q      <= '0;
      scale_o    <= '0;
      done_o     <= 1'b0;
    end else begin
      done_o <= 1'b0;
      unique case (state_q)
        IDLE: if (start_i) begin
          n_q     <= n_i;
          ex_q    <= ex_i;
          shift_q <= shift_i;
          norm_q  <= norm_i;
          qmax_q  <= qmax_i;
          eps_q   <= eps_i;
          mx_q    <= '0;
          ss_q    <= '0;
          idx_q   <= '0;
          state_q <= LOAD;
        end
        LOAD: if (in_fire) begin
          if (g_max > mx_q) mx_q <= g_max;
          ss_q  <= ss_q + g_ss;
          idx_q <= idx_q + 1;
          if (idx_q + 1 == groups) begin
            idx_q      <= '0;
            step_q     <= '0;
            req_sent_q <= 1'b0;
            // An all-zero vector has codes 0 and scale 0 (no division by zero).
            if (mx_q == '0 && g_max == '0) begin
              r_inv_q <= '0;
              scale_o <= '0;
              state_q <= CODES;
            end else begin
              state_q <= SCALAR;
            end
          end
        end
        SCALAR: begin
          if (!req_sent_q && s_ready) req_sent_q <= 1'b1;
          if (s_valid) begin
            req_sent_q <= 1'b0;
            step_q     <= step_q + 1;
            unique case (step_q)
              4'd0:  r_mx_q  <= s_res;
              4'd1:  r_q_q   <= s_res;
              4'd2:  r_inv_q <= s_res;
              4'd3:  begin r_top_q <= s_res; if (!norm_q) step_q <= 4'd11; end
              4'd6:  r_n_q   <= s_res;
              4'd10: r_top_q <= s_res;
              4'd11: begin scale_o <= s_res; state_q <= CODES; end
              default: r_t_q <= s_res;
            endcase
          end
        end
        CODES: if (code_ready_i) begin
          idx_q <= idx_q + 1;
          if (idx_q + 1 == groups) begin
            done_o  <= 1'b1;
            state_q <= IDLE;
          end
        end
        default: state_q <= IDLE;
      endcase
    end
  end

  logic unused;
  assign unused = ^g_addr_i;

endmodule

`resetall
