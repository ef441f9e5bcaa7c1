// SPDX-License-Identifier: Apache-2.0
//
// op_vector: the two ops that turn Q.16 rows into int8 codes for the next linear layer.
//   NORM_QUANT  code row = quantize(src row) with RMSNorm when a norm weight is given
//               (docs/numerics.md §3);
//   FFN_ACT     act(gate) * up exactly (ReLU^2 or SiLU), block-normalized to int32 with a
//               per-token exponent, then quantized with the sub-norm when given (§7).
// Three machines overlap the tokens: the reader streams each row from device memory through
// elem_reader four values per cycle (16-byte elements) -- NORM_QUANT straight into the
// quantizer, FFN_ACT gate then up into the product buffer; for FFN_ACT a feeder hands the
// products of one token to the quantizer while the reader fetches the next token's gate; the
// writer sends each token's codes (four per cycle) and then its scale through elem_writer while
// the quantizer already loads the next token. The norm gains are read once per op and serve
// every token.
// Wide FFN_ACT (`wide_i`, prefill: the kernel lends this engine weight port 1): gate rows come
// over gmem0 and up rows over port 1 at once, so a token's products take one row's time; the
// reader writes the product buffer behind the feeder, which empties it for the quantizer.

`default_nettype none

module op_vector #(
  parameter int DATA_W = 128,  // bus bits
  parameter int DEPTH  = 256,  // longest row (hidden, ffn)
  parameter int ACT_QMAX = 127  // code range of the linear layers' inputs
) (
  input  wire logic                clk_i,
  input  wire logic                rst_ni,
  input  wire logic                start_i,
  input  wire logic                ffn_i,      // FFN_ACT (else NORM_QUANT)
  input  wire logic                silu_i,     // FFN_ACT: SiLU (else ReLU^2)
  input  wire logic                wide_i,     // FFN_ACT: up rows over the up_* port
  input  wire logic [15:0]         tokens_i,
  input  wire logic [31:0]         n_i,
  input  wire logic [63:0]         src_i,      // NORM_QUANT src, FFN_ACT gate
  input  wire logic [63:0]         up_i,       // FFN_ACT up
  input  wire logic [63:0]         norm_i,     // 0: no norm
  input  wire logic [63:0]         codes_i,
  input  wire logic [63:0]         scales_i,
  input  wire logic [31:0]         eps_i,
  output      logic                done_o,
  output      logic                err_o,      // with done_o: n beyond DEPTH
  output      logic                rd_cmd_valid_o,
  input  wire logic                rd_cmd_ready_i,
  output      logic [63:0]         rd_cmd_addr_o,
  output      logic [31:0]         rd_cmd_beats_o,
  input  wire logic                rd_valid_i,
  output      logic                rd_ready_o,
  input  wire logic [DATA_W-1:0]   rd_data_i,
  output      logic                wr_cmd_valid_o,
  input  wire logic                wr_cmd_ready_i,
  output      logic [63:0]         wr_cmd_addr_o,
  output      logic [31:0]         wr_cmd_beats_o,
  output      logic                wr_valid_o,
  input  wire logic                wr_ready_i,
  output      logic [DATA_W-1:0]   wr_data_o,
  output      logic [DATA_W/8-1:0] wr_strb_o,
  input  wire logic                wr_done_i,
  // Wide FFN_ACT: the up rows (a weight port lent by the kernel).
  output      logic                up_cmd_valid_o,
  input  wire logic                up_cmd_ready_i,
  output      logic [63:0]         up_cmd_addr_o,
  output      logic [31:0]         up_cmd_beats_o,
  input  wire logic                up_valid_i,
  output      logic                up_ready_o,
  input  wire logic [DATA_W-1:0]   up_data_i
);

  localparam int VL = 4;                                // values per cycle (a 16-byte element)
  localparam int PD = (DEPTH + VL - 1) / VL * VL;

  // Reader: the op's setup reads, then per token the row (NORM_QUANT) or gate and up (FFN_ACT).
  typedef enum logic [3:0] {
    IDLE, SHIFT_CMD, SHIFT_DATA, GAIN_CMD, GAIN_DATA, ROW_CMD, ROW_DATA, GATE_DATA, UP_CMD, UP_DATA, PAIR_DATA,
    READ_DONE, FINISH
  } state_e;
  state_e state_q;

  logic              ffn_q, silu_q, wide_q;
  logic              gate_sent_q, up_sent_q;  // wide FFN_ACT: the token's two row commands
  logic [15:0]       tokens_q, tok_q;
  logic [31:0]       n_q, idx_q;
  logic [63:0]       norm_q;
  logic [31:0]       eps_q;
  logic signed [31:0] shift_q;
  logic [95:0]       pmax_q;      // max |act(gate) * up| of the token's groups out of the pipeline

  // ---------------------------------------------------------------- memory streams
  logic        rcmd_valid, rcmd_ready, el_valid, el_ready;
  logic [63:0] rcmd_addr;
  logic [31:0] rcmd_count, el_data;
  logic [127:0] el_wide;  // 16-byte elements: four int32 of a row, eight int16 gains
  logic [2:0]  rcmd_size;
  elem_reader #(.DATA_W (DATA_W)) u_rd (
    .clk_i, .rst_ni,
    .cmd_valid_i (rcmd_valid), .cmd_ready_o (rcmd_ready), .cmd_addr_i (rcmd_addr), .cmd_count_i (rcmd_count),
    .cmd_size_i (rcmd_size), .el_valid_o (el_valid), .el_ready_i (el_ready),
    .el_data_o (el_data), .el_wide_o (el_wide),
    .rd_cmd_valid_o, .rd_cmd_ready_i, .rd_cmd_addr_o, .rd_cmd_beats_o, .rd_valid_i, .rd_ready_o, .rd_data_i
  );

  // Row pitches, registered (n_q settles at the start; the first use is a token's end), and
  // each row's address a register stepped by them per token: no multiply in front of a
  // command (the token x pitch multiply-adds were op_vector's longest path).
  logic [63:0] in_row, code_row;
  always_ff @(posedge clk_i) begin
    in_row   <= trit_num::row_bytes(64'(n_q) * 4);
    code_row <= trit_num::row_bytes(64'(n_q));
  end
  logic [63:0] src_row_q, up_row_q;  // the token's input rows
  wire logic [31:0] gain_words = (n_q + 32'd7) >> 3;
  wire logic [31:0] groups   = (n_q + 32'(VL) - 1) / 32'(VL);

  logic        ucmd_valid, ucmd_ready, uel_valid, uel_ready;
  logic [31:0] unused_udata;
  logic [127:0] uel_wide;  // wide FFN_ACT: four int32 of an up row
  elem_reader #(.DATA_W (DATA_W)) u_up_rd (
    .clk_i, .rst_ni,
    .cmd_valid_i (ucmd_valid), .cmd_ready_o (ucmd_ready), .cmd_addr_i (up_row_q),
    .cmd_count_i (groups), .cmd_size_i (3'd4), .el_valid_o (uel_valid), .el_ready_i (uel_ready),
    .el_data_o (unused_udata), .el_wide_o (uel_wide),
    .rd_cmd_valid_o (up_cmd_valid_o), .rd_cmd_ready_i (up_cmd_ready_i), .rd_cmd_addr_o (up_cmd_addr_o),
    .rd_cmd_beats_o (up_cmd_beats_o), .rd_valid_i (up_valid_i), .rd_ready_o (up_ready_o), .rd_data_i (up_data_i)
  );

  logic        wcmd_valid, wcmd_ready, wel_valid, wel_ready, w_idle;
  logic [63:0] wcmd_addr;
  logic [31:0] wcmd_count, wel_data;
  logic [4:0]  wel_len;
  elem_writer #(.DATA_W (DATA_W)) u_wr (
    .clk_i, .rst_ni,
    .cmd_valid_i (wcmd_valid), .cmd_ready_o (wcmd_ready), .cmd_addr_i (wcmd_addr), .cmd_count_i (wcmd_count),
    .cmd_size_i (3'd2), .el_valid_i (wel_valid), .el_ready_o (wel_ready), .el_data_i ({96'd0, wel_data}), .el_len_i (wel_len),
    .idle_o (w_idle),
    .wr_cmd_valid_o, .wr_cmd_ready_i, .wr_cmd_addr_o, .wr_cmd_beats_o, .wr_valid_o, .wr_ready_i, .wr_data_o,
    .wr_strb_o, .wr_done_i
  );


  // ---------------------------------------------------------------- quantizer
  logic q_start, q_ready, q_in_valid, q_in_ready, q_code_valid, q_code_ready, q_done;
  logic [VL*32-1:0] q_in;
  logic [VL*16-1:0] q_code;
  logic [31:0] q_scale;
  logic signed [31:0] bn_ex;
  vec_quant #(.DEPTH (DEPTH), .LANES (VL)) u_quant (
    .clk_i, .rst_ni,
    .g_we_i (state_q == GAIN_DATA && el_valid), .g_addr_i (idx_q), .g_data_i (el_wide),
    .start_i (q_start), .ready_o (q_ready), .n_i (n_q), .ex_i (ffn_q ? bn_ex : -32'sd16), .shift_i (shift_q),
    .norm_i (norm_q != '0), .qmax_i (16'(ACT_QMAX)), .eps_i (eps_q),
    .in_valid_i (q_in_valid), .in_ready_o (q_in_ready), .in_data_i (q_in),
    .code_valid_o (q_code_valid), .code_ready_i (q_code_ready), .code_o (q_code),
    .done_o (q_done), .scale_o (q_scale)
  );

  // ---------------------------------------------------------------- reader
  // NORM_QUANT starts the quantizer with the row's read command (both wait for it to be ready);
  // UP_CMD waits until the product pipeline has handed the previous token to the feeder and
  // the feeder has taken its products.
  logic feed_busy_q;
  always_comb begin
    rcmd_valid = 1'b0;
    rcmd_addr  = '0;
    rcmd_count = n_q;
    rcmd_size  = 3'd2;
    unique case (state_q)
      SHIFT_CMD: begin rcmd_valid = 1'b1; rcmd_addr = norm_q; rcmd_count = 32'd1; end
      // Eight int16 gains per 16-byte element.
      GAIN_CMD:  begin rcmd_valid = 1'b1; rcmd_addr = norm_q + 64'd64; rcmd_count = gain_words; rcmd_size = 3'd4; end
      // Rows: four int32 per 16-byte element (rows start 64-byte aligned; lanes past n ignored).
      ROW_CMD:   begin
        rcmd_valid = ffn_q ? !gate_sent_q : q_ready;
        rcmd_addr  = src_row_q;
        rcmd_count = groups;
        rcmd_size  = 3'd4;
      end
      UP_CMD:    begin
        rcmd_valid = !feed_busy_q && !p_tail;
        rcmd_addr  = up_row_q;
        rcmd_count = groups;
        rcmd_size  = 3'd4;
      end
      default: ;
    endcase
  end
  wire logic rcmd_fire = rcmd_valid && rcmd_ready;
  assign ucmd_valid = state_q == ROW_CMD && wide_q && !up_sent_q;
  wire logic ucmd_fire = ucmd_valid && ucmd_ready;
  // Wide FFN_ACT: a gate and an up element together, written only where the feeder has read
  // (not while a token's last group is still in the product pipeline: the feeder restarts at
  // row 0 when it leaves).
  wire logic pair_ok = el_valid && uel_valid && (feed_busy_q ? idx_q < fidx_q : !p_tail);
  assign uel_ready = state_q == PAIR_DATA && pair_ok;
  wire logic el_fire = el_valid && el_ready;
  assign el_ready = state_q == SHIFT_DATA || state_q == GAIN_DATA || state_q == GATE_DATA || state_q == UP_DATA ||
                    (state_q == ROW_DATA && q_in_ready) || (state_q == PAIR_DATA && pair_ok);

  // ---------------------------------------------------------------- FFN products
  // Four lanes: lane l of group idx_q is element idx_q * 4 + l; lanes past n give product 0.
  logic [31:0]        fidx_q;          // feeder: next group of the product buffer
  logic [95:0]        feed_pmax_q;     // max |product| of the token being fed
  // The gate values and the products in rows of one group (VL lanes), written and read a group
  // at a time: one memory each (one write, one read port), not PD registers per lane.
  localparam int PG = PD / VL;
  localparam int RW = PG > 1 ? $clog2(PG) : 1;
  logic [32*VL-1:0]   gate_rows [PG];
  logic [96*VL-1:0]   prod_rows [PG];
  // Both are read a cycle after the address (block RAM): the gate group in stage 1 of the
  // product pipeline, beside the up group; the feeder's groups through a read-ahead FIFO.
  logic [32*VL-1:0]   gate_rd_q;      // gate_rows at the group that came in the cycle before
  logic [96*VL-1:0]   feed_rd_q;      // prod_rows at the feeder's read address of the cycle before
  logic [96*VL-1:0]   feed_row;       // the group being fed
  logic [31:0]        fr_q;           // the feeder's next read
  logic [96*VL-1:0]   prod_row;
  logic signed [95:0] prod     [VL];
  logic [95:0]        prod_max;       // max |product| over the group
  logic [VL*32-1:0]   bn_vals;        // the fed group's block-normalized values
  logic [7:0]         bn_shift;
  // The product pipeline: a gate/up element pair enters when the reader takes it (UP_DATA,
  // PAIR_DATA) and leaves PL cycles later into the product buffer at its group, with the
  // token's running max |product|; the token's last group leaving hands the token to the
  // feeder. One multiply or one table step per stage (silu_fx in numerics §7):
  //   1 inputs   2 the gate selected   3,4 g * log2(e) (mul_pieces)   5 |.| rounded
  //   6,7,8 exp2_neg (table product, its rounding, shift)   9..16 sigmoid (sigmoid_pipe)
  //   17 sigmoid(g) from sigmoid(|g|)   18 g * sigmoid, relu's halves' products
  //   19 silu rounded, relu^2 summed   20 the activation's pieces times up's (one DSP each)
  //   21 each of up's pieces' rows   22 their sum, the product
  // (Stage 17 alone: the sigmoid's rounding, its sign and the multiply in one cycle were the
  // engine's longest path; so were the 63 x 32-bit product in one stage, then in two (the
  // DSPs' products and the adders joining them in one), exp2_neg in one, then its product and
  // rounding in one, g * log2(e) with its DSPs' sum in one, and the gate's select in front of
  // that multiply.)
  localparam int SIG_L = 8;           // sigmoid_pipe's latency
  localparam int PL    = 14 + SIG_L;  // stages
  wire logic     p_in = (state_q == UP_DATA || state_q == PAIR_DATA) && el_fire;
  logic [PL:1]   pv_q;                // per stage: holds a group
  logic [PL:1]   plast_q;             // ... the token's last
  logic [RW-1:0] pidx_q [PL:1];       // ... which
  wire logic     p_out  = pv_q[PL];
  wire logic     p_tail = |(pv_q & plast_q);  // a token's last group is in the pipeline
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) pv_q <= '0;
    else pv_q <= {pv_q[PL-1:1], p_in};
  end
  always_ff @(posedge clk_i) begin
    plast_q   <= {plast_q[PL-1:1], idx_q + 1 == groups};
    pidx_q[1] <= RW'(idx_q);
    for (int t = 2; t <= PL; t++) pidx_q[t] <= pidx_q[t-1];
  end
  for (genvar l = 0; l < VL; l++) begin : g_lane
    wire logic [31:0] e = idx_q * 32'(VL) + 32'(l);
    // Gate, up and whether the lane is within the row, carried along stages 1 .. PL-2.
    logic signed [31:0] g_s  [1:PL-2];
    logic signed [31:0] up_s [1:PL-2];
    logic [PL-2:1]      live_s;
    logic signed [49:0] t4;        // g * log2(e) in Q.32 (its magnitude is taken in stage 5)
    logic [47:0]        d5_q;      // ... in Q.16
    logic [15:0]        e8_q;      // exp2_neg: 2^-|g|log2(e) in Q.15
    logic signed [31:0] sig17_q;   // sigmoid(g) in Q.15
    logic signed [48:0] gs18_q;    // g * sigmoid(g) in Q.31
    logic [31:0]        rr_ll18_q; // relu(g)^2 as its 16-bit halves' products (one DSP each):
    logic [30:0]        rr_hl18_q; // ... low x low, high x low, high x high, summed in stage 19
    logic [29:0]        rr_hh18_q; // (the 31 x 31-bit product with its DSPs' adders in one stage
                                   // was the engine's longest path)
    // One multiplier for both activations: silu(g) (signed Q.16) or relu(g)^2 (non-negative),
    // selected into stage 19's register (the select in front of stage 20's products was the
    // engine's longest path).
    logic signed [62:0] act19_q;
    // The activation in pieces of 26 bits (a DSP's 27-bit port: two unsigned, the top 11 bits
    // signed), up in pieces of 17 (the 18-bit port: the low unsigned, the top 15 signed).
    logic signed [44:0] t20_q [3][2];  // piece i of the activation times piece j of up
    logic signed [94:0] row21_q [2];   // up's piece j times the whole activation (0 past n)
    logic signed [95:0] prod22_q;
    logic [15:0]        e8;
    logic [15:0]        sig_pos;   // sigmoid(|g|) in Q.15, stage 16
    mul_pieces #(.A_W (32), .B_W (18)) u_log2e (
      .clk_i, .en1_i (1'b1), .en2_i (1'b1), .a_i (g_s[2]), .b_i (18'sd94548), .p_o (t4)
    );
    exp2_neg u_exp2 (.clk_i, .d_i (d5_q), .y_o (e8));
    sigmoid_pipe #(.LATENCY (SIG_L)) u_sig (.clk_i, .e_i (e8_q), .y_o (sig_pos));
    // Stage 1's gate: the gate element itself (wide rows) or the buffered gate group's lane.
    wire logic signed [31:0] g2     = wide_q ? g_s[1] : $signed(gate_rd_q[32*l +: 32]);
    // |g| log2(e) = |g log2(e)|: the magnitude after the multiply, not between the gate
    // buffer's read and the multiplier (that was the unit's longest path).
    wire logic [47:0]        t4_abs  = t4 < 0 ? 48'(0 - t4) : 48'(t4);
    wire logic signed [95:0] g_log2e = trit_num::rne_shift(96'(t4_abs), 8'd16);
    wire logic signed [31:0] g16    = g_s[16];
    wire logic signed [31:0] g17    = g_s[17];
    wire logic [30:0]        relu   = g17 < 0 ? 31'd0 : 31'(g17);
    wire logic signed [95:0] silu   = trit_num::rne_shift(96'(gs18_q), 8'd15);
    wire logic signed [31:0] up19   = up_s[19];
    always_ff @(posedge clk_i) begin
      g_s[1]    <= $signed(el_wide[32*l +: 32]);
      up_s[1]   <= $signed(wide_q ? uel_wide[32*l +: 32] : el_wide[32*l +: 32]);
      live_s[1] <= e < n_q;
      g_s[2]    <= g2;
      for (int t = 2; t < PL - 1; t++) begin
        if (t > 2) g_s[t] <= g_s[t-1];
        up_s[t]   <= up_s[t-1];
        live_s[t] <= live_s[t-1];
      end
      d5_q     <= g_log2e[47:0];
      e8_q     <= e8;
      sig17_q  <= g16 < 0 ? 32'sd32768 - 32'(sig_pos) : 32'(sig_pos);
      gs18_q   <= 49'(g17) * 49'(sig17_q);
      rr_ll18_q <= relu[15:0] * relu[15:0];
      rr_hl18_q <= relu[30:16] * relu[15:0];
      rr_hh18_q <= relu[30:16] * relu[30:16];
      act19_q  <= silu_q ? 63'($signed(silu[47:0])) :
                  $signed({1'b0, (62'(rr_hh18_q) << 32) + (62'(rr_hl18_q) << 17) + 62'(rr_ll18_q)});
      for (int i = 0; i < 3; i++) begin
        for (int j = 0; j < 2; j++) begin
          logic signed [26:0] a;
          logic signed [17:0] u;
          a = i == 2 ? 27'($signed(act19_q[62:52])) : $signed({1'b0, act19_q[26*i +: 26]});
          u = j == 1 ? 18'($signed(up19[31:17])) : $signed({1'b0, up19[16:0]});
          t20_q[i][j] <= 45'(a) * 45'(u);
        end
      end
      for (int j = 0; j < 2; j++) begin
        row21_q[j] <= !live_s[20] ? 95'sd0 :
                      95'(t20_q[0][j]) + (95'(t20_q[1][j]) <<< 26) + (95'(t20_q[2][j]) <<< 52);
      end
      prod22_q <= 96'(row21_q[0]) + (96'(row21_q[1]) <<< 17);
    end
    assign prod[l] = prod22_q;
    assign prod_row[96*l +: 96] = prod22_q;
    assign bn_vals[32*l +: 32] = bn_at($signed(feed_row[96*l +: 96]), bn_shift, bn_lmask_q);  // |.| <= 2^30
    logic unused_lane;
    assign unused_lane = ^{g_log2e[95:48], silu[95:48]};
  end
  always_ff @(posedge clk_i) begin
    if (state_q == GATE_DATA && el_fire) gate_rows[RW'(idx_q)] <= el_wide[32*VL-1:0];
    if (p_out) prod_rows[pidx_q[PL]] <= prod_row;
    gate_rd_q <= gate_rows[RW'(idx_q)];
    feed_rd_q <= prod_rows[RW'(fr_q)];
  end
  // The token's running max |product|, two stages behind the pipeline's output: the lanes'
  // magnitudes are registered (ab_*), then the group's max (gm_*), then folded in (its first
  // group starts it; |product|, a four-way max and the running max in one cycle, then the
  // magnitudes and the max in one, were op_vector's longest path). The token's max is final two
  // cycles after its hand-over, which bn_settle_q allows for.
  logic        ab_v_q, ab_first_q, ab_last_q;  // ab_q holds a group's magnitudes / ...
  logic [95:0] ab_q [VL];
  logic        gm_v_q, gm_first_q, gm_last_q;  // gm_max_q holds a group's max / its token's first / last
  logic [95:0] gm_max_q;
  always_ff @(posedge clk_i) begin
    for (int l = 0; l < VL; l++) ab_q[l] <= prod[l] < 0 ? 96'(0 - prod[l]) : 96'(prod[l]);
    ab_first_q <= pidx_q[PL] == '0;
    ab_last_q  <= plast_q[PL];
    gm_max_q   <= prod_max;
    gm_first_q <= ab_first_q;
    gm_last_q  <= ab_last_q;
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      ab_v_q <= 1'b0;
      gm_v_q <= 1'b0;
    end else begin
      ab_v_q <= p_out;
      gm_v_q <= ab_v_q;
    end
  end
  wire logic [95:0] run_max = gm_first_q || gm_max_q > pmax_q ? gm_max_q : pmax_q;
  // A two-level tree (VL = 4): two compares deep, not four in a chain.
  wire logic [95:0] ab_01 = ab_q[0] > ab_q[1] ? ab_q[0] : ab_q[1];
  wire logic [95:0] ab_23 = ab_q[2] > ab_q[3] ? ab_q[2] : ab_q[3];
  assign prod_max = ab_01 > ab_23 ? ab_01 : ab_23;

  // block_normalize: shift so that every magnitude is at most 2^30 (the max's bits beyond 30).
  // The shift and its sticky mask are registered (the max's leading one, the mask and the
  // lanes' window shifters in one cycle were op_vector's longest path): the feeder starts the
  // quantizer only once they have settled, bn_settle_q cycles after the hand-over.
  wire logic [7:0] lead = trit_num::lead_one(feed_pmax_q);
  logic [7:0]  bn_shift_q;
  logic [95:0] bn_lmask_q;
  logic [2:0]  bn_settle_q;
  always_ff @(posedge clk_i) begin
    bn_shift_q <= lead >= 8'd30 ? lead - 8'd29 : 8'd0;
    bn_lmask_q <= bn_decode(bn_shift_q);
  end
  assign bn_shift = bn_shift_q;
  // trit_num::rne_shift(x, s)[31:0] with the sticky mask decoded once for the four lanes and a
  // 33-bit window per lane (the low 32 bits of the rounded value need only the low 32 of the
  // quotient); proven equal for every x and s <= 66 (host/tests/proofs.rs).
  // [proof: bn_at begin]
  function automatic logic [95:0] bn_decode(input logic [7:0] s);  // the bits below the round bit
    bn_decode = s == 8'd0 ? '0 : ~({96{1'b1}} << (s - 8'd1));
  endfunction
  /* verilator lint_off UNUSEDSIGNAL */  // w: only the window above the shift is read
  function automatic logic [31:0] bn_at(input logic signed [95:0] x, input logic [7:0] s, input logic [95:0] lmask);
    logic signed [96:0] w;  // {x, 0} >>> s: the quotient's low bits, then the round bit
    logic               up;
    w = $signed({x, 1'b0}) >>> s;
    up = w[0] && ((|(x & lmask)) || w[1]);
    bn_at = w[32:1] + 32'(up);
  endfunction
  /* verilator lint_on UNUSEDSIGNAL */
  // [proof: bn_at end]
  assign bn_ex = 32'(bn_shift) - (silu_q ? 32'sd32 : 32'sd48);

  // ---------------------------------------------------------------- feeder (FFN_ACT)
  logic feed_started_q;
  assign q_start    = ffn_q ? feed_busy_q && !feed_started_q && q_ready && bn_settle_q == '0 :
                              state_q == ROW_CMD && rcmd_fire;
  // The feeder reads the token's groups ahead into a FIFO from the hand-over on (the product
  // pipeline writes a group only after the feeder has taken it: pair_ok).
  logic        f_room, f_valid;
  wire logic   handover = p_out && plast_q[PL];
  wire logic   fr_issue = feed_busy_q && !handover && fr_q < groups && f_room;
  read_ahead #(.W(96 * VL)) u_feed_ahead (
    .clk_i, .rst_ni, .clear_i (handover), .issue_i (fr_issue), .rdata_i (feed_rd_q), .room_o (f_room),
    .valid_o (f_valid), .ready_i (ffn_q && feed_busy_q && feed_started_q && q_in_ready), .data_o (feed_row)
  );
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) fr_q <= '0;
    else if (handover) fr_q <= '0;
    else if (fr_issue) fr_q <= fr_q + 1;
  end
  assign q_in_valid = ffn_q ? feed_busy_q && feed_started_q && f_valid : state_q == ROW_DATA && el_valid;
  assign q_in       = ffn_q ? bn_vals : el_wide;

  // ---------------------------------------------------------------- writer
  // Per token: the codes command, its codes straight from the quantizer, then the scale once
  // the quantizer's done_o has given it.
  logic [15:0] w_tok_q;
  logic [63:0] w_codes_q, w_scales_q;  // the token's codes row and scale
  logic [31:0] w_group_q;
  logic [1:0]  w_step_q;     // 0 codes command, 1 codes, 2 scale command, 3 scale
  logic        w_all_q;      // every token's codes and scale handed to the writer
  logic        scale_ready_q;
  assign wcmd_valid   = !w_all_q && state_q != IDLE && state_q != FINISH && (w_step_q == 2'd0 || w_step_q == 2'd2);
  assign wcmd_addr    = w_step_q[1] ? w_scales_q : w_codes_q;
  // Codes: four per 4-byte element, the last one cut to the row's length.
  assign wcmd_count   = w_step_q[1] ? 32'd1 : groups;
  assign wel_valid    = !w_all_q && (w_step_q == 2'd3 ? scale_ready_q : w_step_q == 2'd1 && q_code_valid);
  assign wel_data     = w_step_q == 2'd3 ? q_scale : {q_code[55:48], q_code[39:32], q_code[23:16], q_code[7:0]};
  wire logic [31:0] codes_left = n_q - w_group_q * 32'(VL);
  assign wel_len      = w_step_q == 2'd3 || codes_left >= 32'(VL) ? 5'd4 : 5'(codes_left);
  assign q_code_ready = !w_all_q && w_step_q == 2'd1 && wel_ready;
  wire logic wel_fire = wel_valid && wel_ready;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      w_tok_q        <= '0;
      w_codes_q      <= '0;
      w_scales_q     <= '0;
      w_group_q      <= '0;
      w_step_q       <= '0;
      w_all_q        <= 1'b0;
      scale_ready_q  <= 1'b0;
      fidx_q         <= '0;
      feed_busy_q    <= 1'b0;
      feed_started_q <= 1'b0;
      feed_pmax_q    <= '0;
      bn_settle_q    <= '0;
      pmax_q         <= '0;
    end else if (state_q == IDLE) begin
      w_tok_q        <= '0;
      w_codes_q      <= codes_i;  // the op's, taken with start_i like the main machine's
      w_scales_q     <= scales_i;
      w_group_q      <= '0;
      w_step_q       <= '0;
      w_all_q        <= 1'b0;
      scale_ready_q  <= 1'b0;
      feed_busy_q    <= 1'b0;
      feed_started_q <= 1'b0;
    end else begin
      // Writer.
      if (q_done) scale_ready_q <= 1'b1;
      if (wcmd_valid && wcmd_ready) begin
        w_group_q <= '0;
        w_step_q  <= w_step_q + 2'd1;
      end
      if (wel_fire && w_step_q == 2'd1) begin
        w_group_q <= w_group_q + 1;
        if (w_group_q + 1 == groups) w_step_q <= 2'd2;
      end
      if (wel_fire && w_step_q == 2'd3) begin
        scale_ready_q <= 1'b0;
        w_step_q      <= 2'd0;
        w_tok_q       <= w_tok_q + 1;
        w_codes_q     <= w_codes_q + code_row;
        w_scales_q    <= w_scales_q + 4;
        if (w_tok_q + 1 == tokens_q) w_all_q <= 1'b1;
      end
      // Feeder: the token's last group out of the product pipeline hands the token over.
      if (gm_v_q) pmax_q <= run_max;
      if (gm_v_q && gm_last_q) feed_pmax_q <= run_max;
      if (bn_settle_q != '0) bn_settle_q <= bn_settle_q - 3'd1;
      if (p_out && plast_q[PL]) begin
        feed_busy_q <= 1'b1;
        bn_settle_q <= 3'd4;  // the token's max in two cycles, the shift registered from it, then the mask
        fidx_q      <= '0;
      end
      if (q_start && ffn_q) feed_started_q <= 1'b1;
      if (q_in_valid && q_in_ready && ffn_q) begin
        fidx_q <= fidx_q + 1;
        if (fidx_q + 1 == groups) begin
          feed_busy_q    <= 1'b0;
          feed_started_q <= 1'b0;
        end
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q  <= IDLE;
      ffn_q    <= 1'b0;
      silu_q   <= 1'b0;
      wide_q   <= 1'b0;
      gate_sent_q <= 1'b0;
      up_sent_q   <= 1'b0;
      tokens_q <= '0;
      tok_q    <= '0;
      n_q      <= '0;
      idx_q    <= '0;
      src_row_q <= '0;
      up_row_q  <= '0;
      norm_q   <= '0;
      eps_q    <= '0;
      shift_q  <= '0;
      done_o   <= 1'b0;
      err_o    <= 1'b0;
    end else begin
      done_o <= 1'b0;
      unique case (state_q)
        IDLE: if (start_i) begin
          ffn_q    <= ffn_i;
          wide_q   <= ffn_i && wide_i;
          silu_q   <= silu_i;
          tokens_q <= tokens_i;
          n_q      <= n_i;
          src_row_q <= src_i;
          up_row_q  <= up_i;
          norm_q   <= norm_i;
          eps_q    <= eps_i;
          shift_q  <= '0;
          tok_q    <= '0;
          idx_q    <= '0;
          err_o    <= n_i == '0 || n_i > DEPTH;
          if (n_i == '0 || n_i > DEPTH || tokens_i == '0) state_q <= FINISH;
          else state_q <= norm_i != '0 ? SHIFT_CMD : ROW_CMD;
        end
        SHIFT_CMD: if (rcmd_ready) state_q <= SHIFT_DATA;
        SHIFT_DATA: if (el_fire) begin
          shift_q <= $signed(el_data);
          state_q <= GAIN_CMD;
        end
        GAIN_CMD: if (rcmd_ready) state_q <= GAIN_DATA;
        ROW_CMD: if (wide_q) begin
          // Both rows' commands (in either order), then the pairs.
          if (rcmd_fire) gate_sent_q <= 1'b1;
          if (ucmd_fire) up_sent_q <= 1'b1;
          if ((gate_sent_q || rcmd_fire) && (up_sent_q || ucmd_fire)) begin
            gate_sent_q <= 1'b0;
            up_sent_q   <= 1'b0;
            idx_q       <= '0;
            state_q     <= PAIR_DATA;
          end
        end else if (rcmd_fire) begin
          idx_q   <= '0;
          state_q <= ffn_q ? GATE_DATA : ROW_DATA;
        end
        UP_CMD: if (rcmd_fire) begin
          idx_q   <= '0;
          state_q <= UP_DATA;
        end
        GAIN_DATA, ROW_DATA, GATE_DATA, UP_DATA, PAIR_DATA: if (el_fire) begin
          idx_q <= idx_q + 1;
          if (idx_q + 1 == (state_q == GAIN_DATA ? gain_words : groups)) begin
            idx_q <= '0;
            unique case (state_q)
              GAIN_DATA: state_q <= ROW_CMD;
              GATE_DATA: state_q <= UP_CMD;
              default: begin
                // The row is read (NORM_QUANT: into the quantizer; FFN_ACT: into the products).
                tok_q     <= tok_q + 1;
                src_row_q <= src_row_q + in_row;
                up_row_q  <= up_row_q + in_row;
                state_q <= tok_q + 1 == tokens_q ? READ_DONE : ROW_CMD;
              end
            endcase
          end
        end
        READ_DONE: if (w_all_q) state_q <= FINISH;
        FINISH: if (w_idle) begin
          done_o  <= 1'b1;
          state_q <= IDLE;
        end
        default: state_q <= IDLE;
      endcase
    end
  end

  logic unused;
  assign unused = ^{el_data, q_code, unused_udata};

endmodule

`resetall
