// SPDX-License-Identifier: Apache-2.0
//
// op_attention: the ATTENTION op, decode and prefill alike (docs/numerics.md §6). For each query
// token at position pos and each query head h (KV head h / (heads / kv_heads)):
//   query   the head's q (Q.16, after RoPE) quantized to int8 with scale sq (vec_quant);
//   scores  for every key t <= pos: raw = q . k_t (exact), c = (sq * sk_t) * score_scale in
//           binary32, z_t = sat32(requant(raw, c, 16)) kept on chip; m = max z_t;
//   values  for every key: e = exp2_neg(m - z_t), S += e, w = requant(e, sv_t, 16),
//           acc_d += w * v_t,d (exact);
//   output  o_d = sat32(requant(acc_d, 1 / f32(S), 0)).
// The exact two-pass softmax makes the result independent of key order, so decode and prefill
// share this engine and any later reordering (TeLLMe's reversed prefill) stays bit-exact.
// The KV cache is head-major (hdl::isa::KvLayout), so each head's keys, key scales, value scales
// and values are long runs, queued at once. The keys are split into PORTS ranges, one per memory
// port: lane p reads its range's key codes, key scales, value scales and value codes, keeps its
// keys' scores and weights in its own memory (one write and one read per cycle: RAM, not
// registers), and computes its own maximum, numerator sum and exact value sums (combined at the
// end; the maximum and integer sums do not depend on order). Port 0 also carries the queries.
// Codes arrive LANES at a time: a key's dot product and a value's accumulation take
// head_dim / LANES cycles (head_dim must be a multiple of LANES; model::config checks it).

`default_nettype none

module op_attention #(
  parameter int DATA_W       = 128,
  parameter int MAX_HEAD_DIM = 64,
  parameter int MAX_HEADS    = 4,
  parameter int MAX_SEQ      = 64,
  parameter int ACT_QMAX     = 127,  // query code range
  parameter int LANES        = 16,   // int8 codes per cycle (one 16-byte element of elem_reader)
  parameter int PORTS        = 1,    // read masters: the rd_* bundle and PORTS-1 wrd_*
  parameter int XP           = PORTS > 1 ? PORTS - 1 : 1  // derived: wrd_* slots
) (
  input  wire logic                clk_i,
  input  wire logic                rst_ni,
  input  wire logic                start_i,
  input  wire logic [15:0]         tokens_i,
  input  wire logic [31:0]         pos0_i,
  input  wire logic [63:0]         q_i,
  input  wire logic [63:0]         kv_i,
  input  wire logic [63:0]         dst_i,
  input  wire logic [15:0]         heads_i,
  input  wire logic [15:0]         kv_heads_i,
  input  wire logic [15:0]         head_dim_i,
  input  wire logic [31:0]         max_seq_i,
  input  wire logic [31:0]         score_scale_i,  // binary32 log2(e) / sqrt(head_dim)
  output      logic                done_o,
  output      logic                err_o,
  output      logic                busy_o,
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
  // Read masters 1..PORTS-1 (flattened, master 1 in the low bits): key and value codes.
  output      logic [XP-1:0]        wrd_cmd_valid_o,
  input  wire logic [XP-1:0]        wrd_cmd_ready_i,
  output      logic [XP*64-1:0]     wrd_cmd_addr_o,
  output      logic [XP*32-1:0]     wrd_cmd_beats_o,
  input  wire logic [XP-1:0]        wrd_valid_i,
  output      logic [XP-1:0]        wrd_ready_o,
  input  wire logic [XP*DATA_W-1:0] wrd_data_i
);

  localparam int QL = 4;  // query values per cycle (a 16-byte element of int32)
  // A head's q codes and each lane's value sums are memories of rows of LANES elements (a code
  // group, the unit every phase reads or writes), each with one write port: indexed per element,
  // yosys built a multiplexer over every element per access (143k LUTs on tellme-kv260).
  localparam int ROWS = (MAX_HEAD_DIM + LANES - 1) / LANES;
  localparam int RW = ROWS > 1 ? $clog2(ROWS) : 1;
  localparam int QPR = LANES / QL;  // quantizer outputs per row
  localparam int SHARE = (MAX_SEQ + PORTS - 1) / PORTS;  // most keys of one lane
  localparam int KW = SHARE > 1 ? $clog2(SHARE) : 1;

  if (LANES != 16) begin : g_bad_lanes
`ifdef __ICARUS__
    op_attention_LANES_must_be_16 u_fail ();
`else
    $error("op_attention: LANES = %0d; elem_reader's wide elements are 16 bytes", LANES);
`endif
  end
  localparam logic [2:0] DIV = 3'd1;

  typedef enum logic [3:0] {
    IDLE, GROUP, Q_CMD, Q_QUANT, K_CODES, K_SCALES, V_SCALES, V_WAIT, V_CODES, FINISH
  } state_e;
  state_e state_q;

  logic [15:0] tokens_q, tok_q, heads_q, kv_heads_q, hd_q;
  logic [31:0] pos0_q, max_seq_q, score_q, head_q, kvh_q, gcount_q, group_q, sub_q;
  logic [63:0] q_q, kv_q, dst_q;
  logic [31:0] issue_q;  // reads issued for the head on port 0
  logic signed [31:0] zmax_q;
  logic [31:0] sq_q;
  logic        quant_started_q;
  logic [31:0] qidx_q;         // q code groups written into qc
  logic        q_have_q;       // the current (or next) head's q codes and scale are in qc / sq_q
  logic [31:0] qn_left_q;      // V_CODES: next head's q elements still ahead of lane 0's codes

  wire logic [31:0] pos    = pos0_q + 32'(tok_q);
  wire logic [31:0] groups = 32'(hd_q) / LANES;  // LANES-wide code groups per head
  wire logic [31:0] keys   = pos + 1;
  wire logic [31:0] qd     = 32'(heads_q) * 32'(hd_q);
  wire logic [63:0] q_row  = trit_num::row_bytes(64'(qd) * 4);
  wire logic [63:0] head_off  = 64'(head_q) * 64'(hd_q) * 4;
  // The (token, head) after this one: its q is read and quantized during this head's values.
  wire logic        last_head = head_q + 1 == 32'(heads_q);
  wire logic        has_next  = !(last_head && tok_q + 1 == tokens_q);
  wire logic [31:0] next_head = last_head ? 32'd0 : head_q + 1;
  wire logic [15:0] next_tok  = last_head ? tok_q + 1 : tok_q;
  // Head-major cache regions (hdl::isa::KvLayout).
  wire logic [63:0] head_stride  = trit_num::row_bytes(64'(max_seq_q) * 64'(hd_q));
  wire logic [63:0] scale_stride = trit_num::row_bytes(64'(max_seq_q) * 4);
  wire logic [63:0] codes_sz     = 64'(kv_heads_q) * head_stride;
  wire logic [63:0] scales_sz    = 64'(kv_heads_q) * scale_stride;

  // Key ranges, one per port: [p * share, p * share + range_len[p]).
  wire logic [31:0] share = (keys + 32'(PORTS) - 1) / 32'(PORTS);
  logic [31:0] range_len [PORTS];
  always_comb begin
    for (int p = 0; p < PORTS; p++) begin
      range_len[p] = keys > 32'(p) * share ? keys - 32'(p) * share : 32'd0;
      if (range_len[p] > share) range_len[p] = share;
    end
  end

  // ---------------------------------------------------------------- reads
  // Q_CMD: the first head's q. Then per head, queued together: the KV head's key codes (all
  // keys), key scales, value scales, the next head's q (when there is one), value codes.
  wire logic streaming = state_q == K_CODES || state_q == K_SCALES || state_q == V_SCALES || state_q == V_WAIT ||
                        state_q == V_CODES;
  wire logic [31:0] stream_cmds = has_next ? 32'd5 : 32'd4;
  logic        rcmd_valid, rcmd_ready, el_valid, el_ready;
  logic [63:0] rcmd_addr;
  logic [31:0] rcmd_count, el_data;
  logic [127:0] el_wide;
  logic [2:0]  rcmd_size;
  always_comb begin
    rcmd_valid = state_q == Q_CMD || (streaming && issue_q < stream_cmds);
    rcmd_addr  = q_q + 64'(tok_q) * q_row + head_off;
    rcmd_count = 32'(hd_q) / QL;  // a head's q: four int32 per 16-byte element
    rcmd_size  = 3'd4;
    if (streaming) begin
      rcmd_count = range_len[0];  // scales: one binary32 per key of lane 0's range
      rcmd_size  = 3'd2;
      unique case (issue_q[2:0])
        3'd0: begin
          rcmd_addr  = kv_q + 64'(kvh_q) * head_stride;
          rcmd_count = range_len[0] * groups;
          rcmd_size  = 3'($clog2(LANES));
        end
        3'd1: rcmd_addr = kv_q + codes_sz + 64'(kvh_q) * scale_stride;
        3'd2: rcmd_addr = kv_q + 2 * codes_sz + scales_sz + 64'(kvh_q) * scale_stride;
        3'd3: if (has_next) begin
          rcmd_addr  = q_q + 64'(next_tok) * q_row + 64'(next_head) * 64'(hd_q) * 4;
          rcmd_count = 32'(hd_q) / QL;
          rcmd_size  = 3'd4;
        end else begin
          rcmd_addr  = kv_q + codes_sz + scales_sz + 64'(kvh_q) * head_stride;
          rcmd_count = range_len[0] * groups;
          rcmd_size  = 3'($clog2(LANES));
        end
        default: begin
          rcmd_addr  = kv_q + codes_sz + scales_sz + 64'(kvh_q) * head_stride;
          rcmd_count = range_len[0] * groups;
          rcmd_size  = 3'($clog2(LANES));
        end
      endcase
    end
  end
  elem_reader #(.DATA_W (DATA_W), .QUEUE (8)) u_rd (
    .clk_i, .rst_ni,
    .cmd_valid_i (rcmd_valid), .cmd_ready_o (rcmd_ready), .cmd_addr_i (rcmd_addr), .cmd_count_i (rcmd_count),
    .cmd_size_i (rcmd_size), .el_valid_o (el_valid), .el_ready_i (el_ready), .el_data_o (el_data), .el_wide_o (el_wide),
    .rd_cmd_valid_o, .rd_cmd_ready_i, .rd_cmd_addr_o, .rd_cmd_beats_o, .rd_valid_i, .rd_ready_o, .rd_data_i
  );
  wire logic el_fire = el_valid && el_ready;

  // ---------------------------------------------------------------- query
  logic q_in_ready, q_code_valid, q_done, q_ready;  // q_ready: started only after done_o
  logic [QL*16-1:0] q_code;
  logic [31:0] q_scale;
  // The first head's q in Q_QUANT; every later head's during the previous head's V_CODES.
  wire logic q_feeding = (state_q == Q_QUANT || (state_q == V_CODES && qn_left_q != '0)) && quant_started_q;
  wire logic q_start   = (state_q == Q_QUANT || (state_q == V_CODES && qn_left_q != '0)) && !quant_started_q;
  vec_quant #(.DEPTH (MAX_HEAD_DIM), .LANES (QL)) u_quant (
    .clk_i, .rst_ni,
    .g_we_i (1'b0), .g_addr_i ('0), .g_data_i ('0),
    .start_i (q_start), .ready_o (q_ready), .n_i (32'(hd_q)), .ex_i (-32'sd16), .shift_i ('0), .norm_i (1'b0),
    .qmax_i (16'(ACT_QMAX)), .eps_i ('0),
    .in_valid_i (q_feeding && el_valid), .in_ready_o (q_in_ready),
    .in_data_i (el_wide),
    .code_valid_o (q_code_valid), .code_ready_i (1'b1), .code_o (q_code),
    .done_o (q_done), .scale_o (q_scale)
  );

  // The quantizer's codes, QL at a time, gathered into rows (head_dim is a multiple of LANES).
  logic [8*LANES-1:0] qc [ROWS];
  logic [8*LANES-1:0] q_stage_q;  // the row being gathered
  logic [8*LANES-1:0] qc_next;
  always_comb begin
    qc_next = q_stage_q;
    // Constant slices, chosen by the position in the row (a computed part-select is a shifter).
    for (int s = 0; s < QPR; s++) begin
      if (qidx_q % QPR == 32'(s)) for (int l = 0; l < QL; l++) qc_next[8*(QL*s + l) +: 8] = q_code[16*l +: 8];
    end
  end
  always_ff @(posedge clk_i) begin
    if (q_code_valid) q_stage_q <= qc_next;
    if (q_code_valid && qidx_q % QPR == QPR - 1) qc[RW'(qidx_q / QPR)] <= qc_next;
  end

  // The finisher's registers (below): the lanes' sums are read at its position.
  logic [47:0] f_sum_q;
  logic [15:0] f_tok_q;
  logic [31:0] f_head_q, f_el_q;
  logic [31:0] rcp_q;
  logic        f_sent_q, f_cmd_q;
  logic [PORTS-1:0] f_used_q;  // the lanes that had keys

  // ---------------------------------------------------------------- lanes
  // Every lane walks its own range once per phase: K_CODES (raw scores), K_SCALES (scores and
  // their maximum), V_SCALES (softmax numerators, their sum, value weights), V_CODES (value sums).
  wire logic lane_phase = state_q == K_CODES || state_q == K_SCALES || state_q == V_SCALES || state_q == V_CODES;
  logic [PORTS-1:0]    lane_done;    // the lane has consumed its range in this phase
  logic [PORTS-1:0]    lane_ready;   // lane p takes its stream's element this cycle
  logic [64*QL-1:0]    lane_out [PORTS];  // the finisher's QL sums of the lane
  logic [PORTS-1:0]    lane_used;    // the lane had keys (its max, sums are valid)
  logic signed [31:0]  lane_max [PORTS];
  logic [47:0]         lane_sum [PORTS];
  logic [PORTS-1:0]    x_valid;
  logic [127:0]        x_wide [PORTS];
  // In V_CODES the next head's q comes first on port 0: lane 0 waits until the quantizer has it.
  wire logic q_pending = state_q == V_CODES && qn_left_q != '0;
  assign x_valid[0] = el_valid && !q_pending;
  assign x_wide[0]  = el_wide;
  // The phase ends when every lane has its range; the lanes restart their walk with the next.
  wire logic phase_end = lane_phase && &lane_done;
  for (genvar p = 0; p < PORTS; p++) begin : g_lane
    logic [31:0]        g_q, k_q;     // group within the key, key within the range
    logic signed [31:0] raw_q;
    logic signed [31:0] zb [SHARE];   // raw scores, then scores z
    logic signed [47:0] wb [SHARE];   // value weights w
    wire logic          last_group = g_q + 1 == groups;
    assign lane_done[p] = k_q == range_len[p];
    assign lane_used[p] = range_len[p] != '0;
    assign lane_ready[p] = lane_phase && !lane_done[p];
    wire logic fire = lane_ready[p] && x_valid[p];
    wire logic [KW-1:0] ka = KW'(k_q);
    wire logic [8*LANES-1:0] q_codes = qc[RW'(g_q)];
    logic signed [31:0] dot;  // one code group's LANES products, exact
    always_comb begin
      dot = '0;
      for (int j = 0; j < LANES; j++) begin
        dot = dot + 32'($signed(q_codes[8*j +: 8])) * 32'($signed(x_wide[p][8*j +: 8]));
      end
    end
    // Scales: one binary32 per key.
    wire logic [31:0]        sc      = x_wide[p][31:0];
    wire logic signed [31:0] z_key   = zb[ka];
    wire logic [31:0]        c_score = trit_num::fp32_mul(trit_num::fp32_mul(sq_q, sc), score_q);
    wire logic signed [31:0] z       = trit_num::sat32(trit_num::requant(64'(z_key), c_score, 8'd16));
    logic [15:0] e;
    exp2_neg u_exp2 (.d_i (48'(64'(zmax_q) - 64'(z_key))), .y_o (e));
    wire logic signed [95:0] w_key   = trit_num::requant(64'(e), sc, 8'd16);  // < 2^40
    wire logic signed [47:0] w       = wb[ka];
    // One write port each (a raw score in K_CODES, then its score in K_SCALES).
    always_ff @(posedge clk_i) begin
      if (fire && ((state_q == K_CODES && last_group) || state_q == K_SCALES)) begin
        zb[ka] <= state_q == K_SCALES ? z : raw_q + dot;
      end
      if (fire && state_q == V_SCALES) wb[ka] <= w_key[47:0];
    end
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        g_q         <= '0;
        k_q         <= '0;
        raw_q       <= '0;
        lane_max[p] <= '0;
        lane_sum[p] <= '0;
      end else if (phase_end || !lane_phase) begin
        g_q   <= '0;
        k_q   <= '0;
        raw_q <= '0;
      end else if (fire) begin
        unique case (state_q)
          K_SCALES: begin
            if (k_q == '0 || z > lane_max[p]) lane_max[p] <= z;
            k_q <= k_q + 1;
          end
          V_SCALES: begin
            lane_sum[p] <= (k_q == '0 ? 48'd0 : lane_sum[p]) + 48'(e);
            k_q <= k_q + 1;
          end
          default: begin  // K_CODES, V_CODES: LANES codes per element, `groups` per key
            raw_q <= last_group ? 32'sd0 : raw_q + dot;
            g_q   <= last_group ? 32'd0 : g_q + 1;
            if (last_group) k_q <= k_q + 1;
          end
        endcase
      end
    end
    // The lane's value sums, a row per code group. One read port: V_CODES reads the row it
    // updates; outside V_CODES the finisher reads the row it outputs.
    logic [64*LANES-1:0] acc [ROWS];
    wire logic [RW-1:0]       acc_addr = RW'(state_q == V_CODES ? g_q : f_el_q / LANES);
    wire logic [64*LANES-1:0] acc_row  = acc[acc_addr];
    logic [64*LANES-1:0] acc_next;
    // The first key of the range starts the lane's sums (no clearing pass).
    always_comb begin
      for (int j = 0; j < LANES; j++) begin
        acc_next[64*j +: 64] = (k_q == '0 ? 64'sd0 : $signed(acc_row[64*j +: 64])) +
                               64'(w) * 64'($signed(x_wide[p][8*j +: 8]));
      end
    end
    always_ff @(posedge clk_i) begin
      if (fire && state_q == V_CODES) acc[acc_addr] <= acc_next;
    end
    always_comb begin
      lane_out[p] = acc_row[64*QL-1:0];
      for (int s = 1; s < QPR; s++) if ((f_el_q % LANES) / QL == 32'(s)) lane_out[p] = acc_row[64*QL*s +: 64*QL];
    end
    logic unused_lane_w;
    assign unused_lane_w = ^w_key[95:48];
    if (p > 0) begin : g_port
      // This lane's own reader: its key codes, key scales, value scales and value codes.
      logic [31:0] pissue_q;  // commands issued
      logic        c_valid, c_ready, rd_valid, rd_ready;
      logic [31:0] unused_data;
      logic [63:0] c_addr;
      logic [31:0] c_count;
      logic [2:0]  c_size;
      always_comb begin
        c_size  = 3'($clog2(LANES));
        c_count = range_len[p] * groups;
        unique case (pissue_q[1:0])
          2'd0: c_addr = kv_q + 64'(kvh_q) * head_stride + 64'(32'(p) * share) * 64'(hd_q);
          2'd1: begin
            c_addr  = kv_q + codes_sz + 64'(kvh_q) * scale_stride + 64'(32'(p) * share) * 4;
            c_count = range_len[p];
            c_size  = 3'd2;
          end
          2'd2: begin
            c_addr  = kv_q + 2 * codes_sz + scales_sz + 64'(kvh_q) * scale_stride + 64'(32'(p) * share) * 4;
            c_count = range_len[p];
            c_size  = 3'd2;
          end
          default: c_addr = kv_q + codes_sz + scales_sz + 64'(kvh_q) * head_stride + 64'(32'(p) * share) * 64'(hd_q);
        endcase
      end
      elem_reader #(.DATA_W (DATA_W), .QUEUE (4)) u_rd (
        .clk_i, .rst_ni,
        .cmd_valid_i (c_valid), .cmd_ready_o (c_ready),
        .cmd_addr_i (c_addr), .cmd_count_i (c_count), .cmd_size_i (c_size),
        .el_valid_o (x_valid[p]), .el_ready_i (lane_ready[p]), .el_data_o (unused_data), .el_wide_o (x_wide[p]),
        .rd_cmd_valid_o (wrd_cmd_valid_o[p-1]), .rd_cmd_ready_i (wrd_cmd_ready_i[p-1]),
        .rd_cmd_addr_o (wrd_cmd_addr_o[64*(p-1) +: 64]), .rd_cmd_beats_o (wrd_cmd_beats_o[32*(p-1) +: 32]),
        .rd_valid_i (wrd_valid_i[p-1]), .rd_ready_o (wrd_ready_o[p-1]), .rd_data_i (wrd_data_i[DATA_W*(p-1) +: DATA_W])
      );
      assign c_valid = streaming && pissue_q < 4 && range_len[p] != '0;
      always_ff @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) pissue_q <= '0;
        else if (!streaming) pissue_q <= '0;
        else if (c_valid && c_ready) pissue_q <= pissue_q + 1;
      end
      logic unused_lane;
      assign unused_lane = ^{unused_data, rd_valid, rd_ready};
      assign rd_valid = 1'b0;
      assign rd_ready = 1'b0;
    end
  end
  for (genvar p = PORTS; p < XP + 1; p++) begin : g_noport
    if (p > 0) begin : g_tie
      assign wrd_cmd_valid_o[p-1]            = 1'b0;
      assign wrd_cmd_addr_o[64*(p-1) +: 64]  = '0;
      assign wrd_cmd_beats_o[32*(p-1) +: 32] = '0;
      assign wrd_ready_o[p-1]                = 1'b0;
      logic unused_in;
      assign unused_in = ^{wrd_cmd_ready_i[p-1], wrd_valid_i[p-1], wrd_data_i[DATA_W*(p-1) +: DATA_W]};
    end
  end

  // The lanes' maximum score (K_SCALES) and numerator sum (V_SCALES), over the lanes with keys.
  logic signed [31:0] max_all;
  logic [47:0]        sum_all;
  always_comb begin
    max_all = lane_max[0];  // lane 0 always has keys
    sum_all = '0;
    for (int p = 0; p < PORTS; p++) begin
      if (lane_used[p] && lane_max[p] > max_all) max_all = lane_max[p];
      if (lane_used[p]) sum_all = sum_all + lane_sum[p];
    end
  end
  assign el_ready = q_feeding ? q_in_ready : !q_pending && lane_ready[0];

  // The head's output, QL values per cycle: the lanes' exact sums added up.
  logic signed [63:0] acc_sum [QL];
  always_comb begin
    for (int i = 0; i < QL; i++) begin
      acc_sum[i] = '0;
      for (int p = 0; p < PORTS; p++) if (f_used_q[p]) acc_sum[i] = acc_sum[i] + $signed(lane_out[p][64*i +: 64]);
    end
  end

  // ---------------------------------------------------------------- finisher: 1 / S, output
  // Takes a head when its value codes are in (its sum, token and head) and writes its output
  // while the main machine goes on with the next head; that head's V_CODES waits for it (the
  // lanes' sums are read here).
  typedef enum logic [1:0] {F_IDLE, F_I2F, F_DIV, F_OUT} fin_e;
  fin_e        f_state_q;
  logic s_ready, s_valid;
  logic [31:0] s_res;
  fp32_scalar #(.INT_W (48)) u_fp (
    .clk_i, .rst_ni,
    .req_valid_i (f_state_q == F_DIV && !f_sent_q), .req_ready_o (s_ready),
    .op_i (DIV), .a_i (32'h3f80_0000), .b_i (rcp_q), .int_i (f_sum_q),
    .rsp_valid_o (s_valid), .rsp_ready_i (1'b1), .res_o (s_res)
  );

  logic        wcmd_ready, wel_ready, w_idle;
  logic [QL*32-1:0] o_d;
  for (genvar i = 0; i < QL; i++) begin : g_out
    assign o_d[32*i +: 32] = trit_num::sat32(trit_num::requant(acc_sum[i], rcp_q, 8'd0));
  end
  elem_writer #(.DATA_W (DATA_W)) u_wr (
    .clk_i, .rst_ni,
    .cmd_valid_i (f_state_q == F_OUT && !f_cmd_q), .cmd_ready_o (wcmd_ready),
    .cmd_addr_i (dst_q + 64'(f_tok_q) * q_row + 64'(f_head_q) * 64'(hd_q) * 4), .cmd_count_i (32'(hd_q) / QL),
    .cmd_size_i (3'd4),
    .el_valid_i (f_state_q == F_OUT && f_cmd_q && f_el_q < 32'(hd_q)), .el_ready_o (wel_ready), .el_data_i (o_d),
    .el_len_i (5'd16),
    .idle_o (w_idle),
    .wr_cmd_valid_o, .wr_cmd_ready_i, .wr_cmd_addr_o, .wr_cmd_beats_o, .wr_valid_o, .wr_ready_i, .wr_data_o,
    .wr_strb_o, .wr_done_i
  );
  wire logic v_done = state_q == V_CODES && phase_end;  // hands the head to the finisher
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      f_state_q <= F_IDLE;
      f_sum_q   <= '0;
      f_tok_q   <= '0;
      f_head_q  <= '0;
      f_el_q    <= '0;
      rcp_q     <= '0;
      f_sent_q  <= 1'b0;
      f_cmd_q   <= 1'b0;
      f_used_q  <= '0;
    end else begin
      unique case (f_state_q)
        F_IDLE: if (v_done) begin
          f_sum_q   <= sum_all;  // the lanes' sums hold from V_SCALES until the next head's
          f_tok_q   <= tok_q;
          f_head_q  <= head_q;
          f_used_q  <= lane_used;
          f_state_q <= F_I2F;
        end
        // rcp = 1 / f32(S): the conversion in one cycle, the divide on fp32_scalar.
        F_I2F: begin
          rcp_q     <= trit_num::i2f(96'(f_sum_q));
          f_sent_q  <= 1'b0;
          f_state_q <= F_DIV;
        end
        F_DIV: begin
          if (!f_sent_q && s_ready) f_sent_q <= 1'b1;
          if (s_valid) begin
            rcp_q     <= s_res;
            f_el_q    <= '0;
            f_cmd_q   <= 1'b0;
            f_state_q <= F_OUT;
          end
        end
        F_OUT: begin
          if (!f_cmd_q && wcmd_ready) f_cmd_q <= 1'b1;
          if (f_cmd_q && f_el_q < 32'(hd_q) && wel_ready) f_el_q <= f_el_q + QL;
          // Every value handed to the writer (which posts the write).
          if (f_cmd_q && f_el_q == 32'(hd_q)) f_state_q <= F_IDLE;
        end
        default: f_state_q <= F_IDLE;
      endcase
    end
  end

  assign busy_o = state_q != IDLE;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q         <= IDLE;
      tokens_q        <= '0;
      tok_q           <= '0;
      heads_q         <= '0;
      kv_heads_q      <= '0;
      hd_q            <= '0;
      pos0_q          <= '0;
      max_seq_q       <= '0;
      score_q         <= '0;
      head_q          <= '0;
      kvh_q           <= '0;
      gcount_q        <= '0;
      group_q         <= '0;
      sub_q           <= '0;
      q_q             <= '0;
      kv_q            <= '0;
      dst_q           <= '0;
      issue_q         <= '0;
      zmax_q          <= '0;
      sq_q            <= '0;
      quant_started_q <= 1'b0;
      qidx_q          <= '0;
      q_have_q        <= 1'b0;
      qn_left_q       <= '0;
      done_o          <= 1'b0;
      err_o           <= 1'b0;
    end else begin
      done_o <= 1'b0;
      if (rcmd_valid && rcmd_ready && streaming) issue_q <= issue_q + 1;
      // The query quantizer: codes into qc, the scale into sq_q.
      if (q_start) begin
        quant_started_q <= 1'b1;
        qidx_q          <= '0;
        q_have_q        <= 1'b0;
      end
      if (q_code_valid) qidx_q <= qidx_q + 1;
      if (q_done) begin
        sq_q     <= q_scale;
        q_have_q <= 1'b1;
      end
      if (q_feeding && el_fire && state_q == V_CODES) qn_left_q <= qn_left_q - 1;
      unique case (state_q)
        IDLE: if (start_i) begin
          tokens_q   <= tokens_i;
          pos0_q     <= pos0_i;
          q_q        <= q_i;
          kv_q       <= kv_i;
          dst_q      <= dst_i;
          heads_q    <= heads_i;
          kv_heads_q <= kv_heads_i;
          hd_q       <= head_dim_i;
          max_seq_q  <= max_seq_i;
          score_q    <= score_scale_i;
          tok_q      <= '0;
          head_q     <= '0;
          kvh_q      <= '0;
          gcount_q   <= '0;
          group_q    <= '0;
          sub_q      <= 32'(heads_i);
          err_o      <= 1'b0;
          if (32'(head_dim_i) > MAX_HEAD_DIM || head_dim_i == '0 || 32'(head_dim_i) % LANES != 0 || 32'(heads_i) > MAX_HEADS || kv_heads_i == '0 ||
              kv_heads_i > heads_i || 64'(pos0_i) + 64'(tokens_i) > 64'(max_seq_i) ||
              64'(pos0_i) + 64'(tokens_i) > 64'(MAX_SEQ)) begin
            err_o   <= 1'b1;
            state_q <= FINISH;
          end else begin
            state_q <= tokens_i == '0 ? FINISH : GROUP;
          end
        end
        // Query heads per KV head, by repeated subtraction (a few cycles per op).
        GROUP: if (sub_q >= 32'(kv_heads_q)) begin
          sub_q   <= sub_q - 32'(kv_heads_q);
          group_q <= group_q + 1;
        end else begin
          state_q <= Q_CMD;
        end
        Q_CMD: if (rcmd_ready) begin
          quant_started_q <= 1'b0;
          state_q         <= Q_QUANT;
        end
        // Until the head's q codes and scale are in (the first head's streamed here, every later
        // one's during the previous head's V_CODES).
        Q_QUANT: if (q_have_q && !q_start) begin
          issue_q <= '0;
          state_q <= K_CODES;
        end
        // The code lanes run on their own; the phase ends when every lane has its range.
        K_CODES: if (phase_end) state_q <= K_SCALES;
        K_SCALES: if (phase_end) begin
          zmax_q  <= max_all;
          state_q <= V_SCALES;
        end
        // The lanes' sums are free once the finisher has written the previous head.
        V_SCALES: if (phase_end) begin
          quant_started_q <= 1'b0;
          qn_left_q       <= has_next ? 32'(hd_q) / QL : 32'd0;
          state_q         <= V_WAIT;
        end
        V_WAIT: if (f_state_q == F_IDLE) state_q <= V_CODES;
        // The finisher takes the head (v_done); then the next head, or the end.
        V_CODES: if (v_done) begin
          if (!has_next) begin
            state_q <= FINISH;
          end else begin
            head_q <= next_head;
            tok_q  <= next_tok;
            if (last_head) begin
              kvh_q    <= '0;
              gcount_q <= '0;
            end else if (gcount_q + 1 == group_q) begin
              // The KV head advances every `group` query heads.
              gcount_q <= '0;
              kvh_q    <= kvh_q + 1;
            end else begin
              gcount_q <= gcount_q + 1;
            end
            state_q <= Q_QUANT;
          end
        end
        FINISH: if (w_idle && f_state_q == F_IDLE) begin
          done_o  <= 1'b1;
          state_q <= IDLE;
        end
        default: state_q <= IDLE;
      endcase
    end
  end

  logic unused;
  assign unused = ^{q_code, q_ready, el_data};

endmodule

`resetall
