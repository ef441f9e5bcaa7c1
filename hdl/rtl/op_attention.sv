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
// Query blocks: up to QUERIES consecutive tokens of one head share each pass over the keys (the
// keys of the block's last token; a key beyond a query's position is masked: no maximum, no
// numerator, weight 0). The code phases do QUERIES dot products or value sums per code group at
// once; the scale phases take one query per cycle (the binary32 chains are shared). In prefill
// the keys and values stream once per block instead of once per token -- TeLLMe runs 8 queries
// in parallel the same way. Decode is a block of one.
// The KV cache is head-major (hdl::isa::KvLayout), so each head's keys, key scales, value scales
// and values are long runs, queued at once. The keys are split into PORTS ranges, one per memory
// port: lane p reads its range's key codes, key scales, value scales and value codes, keeps its
// keys' scores and weights in its own memories (one write and one read per cycle: RAM, not
// registers), and computes its own maxima, numerator sums and exact value sums (combined at the
// end; the maximum and integer sums do not depend on order). Port 0 also carries the queries.
// Codes arrive LANES at a time: a key's dot products and a value's accumulation take
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
  parameter int QUERIES      = 1,    // query tokens per pass over the keys (1..4 keep port 0's queue full)
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
  input  wire logic [XP*DATA_W-1:0] wrd_data_i,
  // The first query's quantizer is outside, shared with ROPE_KV (trit_kernel_core: the two never
  // run at once): vec_quant's ports, an instance with DEPTH MAX_HEAD_DIM, LANES 4, NORM 0.
  output      logic                sq_start_o,
  input  wire logic                sq_ready_i,
  output      logic [31:0]         sq_n_o,
  output      logic [15:0]         sq_qmax_o,
  output      logic                sq_in_valid_o,
  input  wire logic                sq_in_ready_i,
  output      logic [127:0]        sq_in_data_o,
  input  wire logic                sq_code_valid_i,
  output      logic                sq_code_ready_o,
  input  wire logic [63:0]         sq_code_i,
  input  wire logic                sq_done_i,
  input  wire logic [31:0]         sq_scale_i
);


  localparam int QL = 4;  // query values per cycle (a 16-byte element of int32)
  // The q codes and each lane's value sums are memories of rows of LANES elements (a code group,
  // the unit every phase reads or writes), each with one write port: indexed per element, yosys
  // built a multiplexer over every element per access (143k LUTs on tellme-kv260).
  localparam int ROWS = (MAX_HEAD_DIM + LANES - 1) / LANES;
  localparam int RW = ROWS > 1 ? $clog2(ROWS) : 1;
  localparam int QPR = LANES / QL;  // quantizer outputs per row
  localparam int SHARE = (MAX_SEQ + PORTS - 1) / PORTS;  // most keys of one lane
  localparam int KW = SHARE > 1 ? $clog2(SHARE) : 1;
  // A lane's value sums: SHARE products of 49 bits (w < 2^40 times an int8 code, numerics §6)
  // fit in 49 + KW bits; the finisher adds the PORTS lanes' sums at 64.
  localparam int AW = 49 + KW;
  localparam int QB = QUERIES;
  localparam int QW = QB > 1 ? $clog2(QB) : 1;
  // Query i's q vector comes over port i % PORTS (each lane's stream carries its share, so no
  // lane waits for all of them): of n queries, port p carries this many.
  // Command slots and query counts at the widths they take (a block has nb <= QB queries; a
  // port issues at most 4 + QB commands per head): at 32 bits, q_on_port's arithmetic and the
  // slot compares after it were the engine's longest path.
  localparam int QNW = $clog2(QB + 1);  // a query count
  localparam int SLW = $clog2(QB + 5);  // a command slot
  function automatic logic [SLW-1:0] q_on_port(input logic [QNW-1:0] n, input int p);
    logic [31:0] m;
    m = 32'(n);
    q_on_port = SLW'(m > 32'(p) ? (m - 32'(p) + 32'(PORTS) - 1) / 32'(PORTS) : 32'd0);
  endfunction

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

  logic [15:0] tokens_q, tok_q, heads_q, kv_heads_q, hd_q;  // tok_q: the block's first token
  logic [31:0] pos0_q, max_seq_q, score_q, head_q, kvh_q, gcount_q, group_q, sub_q;
  logic [63:0] q_q, kv_q, dst_q;
  logic [SLW-1:0] issue_q;  // reads issued for the block's head on port 0
  logic signed [31:0] zmax_q [QB];
  logic [31:0] sq_q [QB];
  logic [QB-1:0] q_have_q;     // query i's codes and scale (of the current or next head) are in
  logic [QB-1:0] q_need;       // the block's queries

  // The block: nb queries at positions pos .. pos + nb - 1; the keys of its last. The
  // (block, head) after this one: its q is read and quantized during this head's values. Both
  // are registered: they follow tok_q and head_q (set at the op's start and leaving V_CODES) a
  // cycle late, and nothing reads them that early -- GROUP lasts two cycles or more, and Q_QUANT
  // waits range_wait_q (the chain from tok_q through them into a command's address or a range's
  // code count was the engine's longest path).
  logic [QNW-1:0] nb, next_nb;
  logic [31:0] pos, next_head;
  logic [15:0] next_tok;
  logic        has_next, last_head;
  // In two registered steps: the block, then the next block's query count from its first
  // token (the whole chain in one cycle was the engine's longest path). has_next and next_nb
  // settle two cycles after tok_q / head_q; they are first read when the head streams.
  always_ff @(posedge clk_i) begin
    logic [31:0] left;
    logic [QNW-1:0] nb_d;
    logic        last_d;
    logic [31:0] next_left;
    left       = 32'(tokens_q) - 32'(tok_q);
    nb_d       = QNW'(left < QB ? left : QB);
    last_d     = head_q + 1 == 32'(heads_q);
    nb         <= nb_d;
    pos        <= pos0_q + 32'(tok_q);
    last_head  <= last_d;
    next_tok   <= last_d ? tok_q + 16'(nb_d) : tok_q;
    next_head  <= last_d ? 32'd0 : head_q + 1;
    next_left  = 32'(tokens_q) - 32'(next_tok);
    has_next   <= next_tok < tokens_q;
    next_nb    <= QNW'(next_left < QB ? next_left : QB);
  end
  always_comb for (int i = 0; i < QB; i++) q_need[i] = 32'(i) < 32'(nb);
  wire logic [31:0] groups = 32'(hd_q) / LANES;  // LANES-wide code groups per head
  wire logic [31:0] qd     = 32'(heads_q) * 32'(hd_q);
  logic [31:0] q_row;  // a q-layout row's bytes (registered below; heads x head_dim are checked)
  // Head-major cache regions (hdl::isa::KvLayout).
  // The address terms are registered: they change only with the op's arguments (at its start),
  // the KV head (leaving V_CODES) and the block (likewise), and a stream command first uses them
  // at least four cycles later (Q_QUANT waits out range_wait_q), so the multiplies are paths of
  // their own instead of the front of every command's address: the regions' sizes and the KV
  // head's offsets a stage ahead of the sums (a multiply into a four-term add was the unit's
  // longest path).
  // The strides and sizes (kv_layout, shared with op_rope_kv) at the widths the op's checks
  // admit, two stages after the start.
  localparam int HSW = trit_num::kv_stride_bits(MAX_SEQ, MAX_HEAD_DIM);  // a head's region
  localparam int KHW = $clog2(MAX_HEADS + 1);                             // a KV head count
  logic [HSW-1:0]     head_stride, scale_stride;
  logic [HSW+KHW-1:0] codes_sz, scales_sz;
  logic [HSW+KHW-1:0] kvh_codes, kvh_scales;      // the KV head's offset in a codes / scales region
  logic [63:0] ks_region, vc_region, vs_region;     // key scales, value codes, value scales at head 0
  logic [63:0] kc_base, ks_base, vs_base, vc_base;  // the KV head's four regions at key 0
  wire logic [63:0] q_row_b = trit_num::row_bytes(64'(qd) * 4);  // < 2^32 (heads x head_dim checked)
  kv_layout #(.MAX_SEQ (MAX_SEQ), .MAX_HEAD_DIM (MAX_HEAD_DIM), .MAX_HEADS (MAX_HEADS)) u_layout (
    .clk_i, .max_seq_i (max_seq_q), .head_dim_i (hd_q), .kv_heads_i (KHW'(kv_heads_q)),
    .head_stride_o (head_stride), .scale_stride_o (scale_stride), .codes_sz_o (codes_sz), .scales_sz_o (scales_sz)
  );
  always_ff @(posedge clk_i) begin
    q_row        <= q_row_b[31:0];
    kvh_codes    <= KHW'(kvh_q) * head_stride;
    kvh_scales   <= KHW'(kvh_q) * scale_stride;
    ks_region    <= kv_q + 64'(codes_sz);
    vc_region    <= kv_q + 64'(codes_sz) + 64'(scales_sz);
    vs_region    <= vc_region + 64'(codes_sz);
    kc_base      <= kv_q + 64'(kvh_codes);
    ks_base      <= ks_region + 64'(kvh_scales);
    vs_base      <= vs_region + 64'(kvh_scales);
    vc_base      <= vc_region + 64'(kvh_codes);
  end
  // The q vectors of this (block, head) and the next: their rows' addresses (row_addr: two
  // cycles after tok_q / head_q, three after next_tok / next_head; GROUP and Q_QUANT wait
  // RANGE_WAIT cycles), a port's j-th query PORTS rows on (j < QB: a narrow multiply).
  localparam int QJ = $clog2(QB + 1);
  logic [63:0] q_blk_q, q_nxt_q, q_step_q;
  row_addr u_q_blk (
    .clk_i, .base_i (q_q), .tok_i (tok_q), .head_i (16'(head_q)), .row_i (q_row), .hd_i (hd_q), .addr_o (q_blk_q)
  );
  row_addr u_q_nxt (
    .clk_i, .base_i (q_q), .tok_i (next_tok), .head_i (16'(next_head)), .row_i (q_row), .hd_i (hd_q),
    .addr_o (q_nxt_q)
  );
  always_ff @(posedge clk_i) q_step_q <= 64'(PORTS) * 64'(q_row);
  function automatic logic [63:0] q_addr(input logic [63:0] base, input logic [QJ-1:0] j);
    q_addr = base + 64'(j) * q_step_q;
  endfunction

  // Key ranges, one per port: [p * share, p * share + range_len[p]), with each range's code
  // groups and its start's offsets into the code and scale regions. They change only with the
  // block (leaving V_CODES) and are worked out in registered steps after the block's geometry
  // -- the key count; the share and the ranges' first keys; the ranges' lengths and offsets;
  // their code counts -- while GROUP or Q_QUANT waits for range_wait_q (each step's operands
  // registered: the share into a multiply into the length was the engine's longest path).
  localparam int SW = $clog2(MAX_SEQ + 1);  // a key count (<= MAX_SEQ: the op's check)
  localparam int STW = SW + 1;               // a range's first key (< MAX_SEQ + PORTS)
  localparam int OW = STW + 16;              // ... times a head's size
  // p * x for a constant p < 256 by shifts and adds (a constant multiply maps to a DSP).
  function automatic logic [STW-1:0] times(input int p, input logic [SW-1:0] x);
    times = '0;
    for (int b = 0; b < 8; b++) if (((p >> b) & 1) != 0) times = times + (STW'(x) << b);
  endfunction
  logic [SW-1:0]  keys_q;
  wire logic [SW-1:0] share_d = SW'((STW'(keys_q) + STW'(PORTS - 1)) / STW'(PORTS));
  logic [SW-1:0]  share_q;
  logic [STW-1:0] start_q     [PORTS];  // the range's first key: p * share
  logic [31:0]    range_len   [PORTS];
  logic [31:0]    range_codes [PORTS];  // range_len * groups: the range's code elements
  logic [63:0]    code_off    [PORTS];
  logic [63:0]    scale_off   [PORTS];
  logic [2:0]     range_wait_q;         // cycles until the ranges and q rows are the block's
  // ... from tok_q's change: the ranges' code counts are registered five cycles later (nb and
  // pos, keys_q, the share and first keys, the lengths, the code counts), a lane's first q row
  // four (row_addr's two stages, then the lane's rows on); one cycle of margin.
  localparam int RANGE_WAIT = 5;
  always_ff @(posedge clk_i) begin
    keys_q  <= SW'(pos + 32'(nb));  // the keys of the block's last query
    share_q <= share_d;
    for (int p = 0; p < PORTS; p++) begin
      logic [STW-1:0] len;
      logic [OW-1:0]  off;
      start_q[p] <= times(p, share_d);
      len = STW'(keys_q) > start_q[p] ? STW'(keys_q) - start_q[p] : '0;
      if (len > STW'(share_q)) len = STW'(share_q);
      range_len[p] <= 32'(len);
      off = OW'(start_q[p]) * OW'(hd_q);
      code_off[p]  <= 64'(off);
      scale_off[p] <= 64'(start_q[p]) * 4;
      range_codes[p] <= 32'(OW'(SW'(range_len[p])) * OW'(groups[15:0]));
    end
  end
  logic unused_off;  // port 0's range starts at the first key: its offsets are zero, never read
  assign unused_off = ^{code_off[0], scale_off[0]};

  // ---------------------------------------------------------------- reads
  // Q_CMD: the first block's q (one command per query). Then per head, queued together: the KV
  // head's key codes (all keys), key scales, value scales, the next (block, head)'s q (when
  // there is one), value codes.
  wire logic streaming = state_q == K_CODES || state_q == K_SCALES || state_q == V_SCALES || state_q == V_WAIT ||
                        state_q == V_CODES;
  wire logic [SLW-1:0] next_q_cmds = has_next ? q_on_port(next_nb, 0) : '0;  // on port 0
  wire logic [SLW-1:0] stream_cmds = SLW'(4) + next_q_cmds;
  logic        rcmd_valid, rcmd_ready, el_valid, el_ready;
  logic [63:0] rcmd_addr;
  logic [31:0] rcmd_count, el_data;
  logic [127:0] el_wide;
  logic [2:0]  rcmd_size;
  // The q vector a command reads: Q_CMD's issue_q-th query of port 0; a stream's
  // (issue_q-3)-th.
  always_comb begin
    rcmd_valid = (state_q == Q_CMD && issue_q < q_on_port(nb, 0)) || (streaming && issue_q < stream_cmds);
    rcmd_addr  = q_addr(q_blk_q, QJ'(issue_q));
    rcmd_count = 32'(hd_q) / QL;  // a head's q: four int32 per 16-byte element
    rcmd_size  = 3'd4;
    if (streaming) begin
      rcmd_count = range_len[0];  // scales: one binary32 per key of lane 0's range
      rcmd_size  = 3'd2;
      if (issue_q == SLW'(0)) begin
        rcmd_addr  = kc_base;
        rcmd_count = range_codes[0];
        rcmd_size  = 3'($clog2(LANES));
      end else if (issue_q == SLW'(1)) begin
        rcmd_addr = ks_base;
      end else if (issue_q == SLW'(2)) begin
        rcmd_addr = vs_base;
      end else if (issue_q < SLW'(3) + next_q_cmds) begin
        rcmd_addr  = q_addr(q_nxt_q, QJ'(issue_q - SLW'(3)));
        rcmd_count = 32'(hd_q) / QL;
        rcmd_size  = 3'd4;
      end else begin
        rcmd_addr  = vc_base;
        rcmd_count = range_codes[0];
        rcmd_size  = 3'($clog2(LANES));
      end
    end
  end
  elem_reader #(.DATA_W (DATA_W), .QUEUE (8)) u_rd (
    .clk_i, .rst_ni,
    .cmd_valid_i (rcmd_valid), .cmd_ready_o (rcmd_ready), .cmd_addr_i (rcmd_addr), .cmd_count_i (rcmd_count),
    .cmd_size_i (rcmd_size), .el_valid_o (el_valid), .el_ready_i (el_ready), .el_data_o (el_data), .el_wide_o (el_wide),
    .rd_cmd_valid_o, .rd_cmd_ready_i, .rd_cmd_addr_o, .rd_cmd_beats_o, .rd_valid_i, .rd_ready_o, .rd_data_i
  );

  // ---------------------------------------------------------------- queries
  // One quantizer per query of a block. Query i's q vector comes over port i % PORTS: the first
  // block's in Q_CMD / Q_QUANT, every later one's during the previous head's V_CODES (queued
  // before that port's value codes; its lane feeds the quantizer first).
  logic [PORTS-1:0]   lane_qwin;      // the lane's stream has q elements for a quantizer now
  logic [PORTS-1:0]   lane_qstarted;  // ... the quantizer of its current query started
  logic [PORTS-1:0]   lane_qcmds;     // Q_CMD: the lane's port has asked for its q vectors
  logic [QW-1:0]      lane_qidx [PORTS];  // the query the lane feeds
  logic [PORTS-1:0]   raw_valid;      // each port's element stream, before the lane's gate
  logic [127:0]       raw_wide [PORTS];
  logic [QB-1:0] q_start, q_ready, q_in_valid, q_in_ready, q_code_valid, q_done;
  logic [32*QB-1:0] q_scale;
  // Query i's codes at each lane's code group.
  logic [31:0]        lane_g [PORTS];
  logic [8*LANES-1:0] q_codes [QB][PORTS];
  for (genvar i = 0; i < QB; i++) begin : g_query
    logic [QL*16-1:0] code;
    localparam int PI = i % PORTS;  // the port carrying this query's q
    assign q_start[i]    = lane_qwin[PI] && lane_qidx[PI] == QW'(i) && !lane_qstarted[PI] && q_ready[i];
    assign q_in_valid[i] = lane_qwin[PI] && lane_qidx[PI] == QW'(i) && lane_qstarted[PI] && raw_valid[PI];
    if (i == 0) begin : g_shared
      assign sq_start_o       = q_start[i];
      assign q_ready[i]       = sq_ready_i;
      assign sq_n_o           = 32'(hd_q);
      assign sq_qmax_o        = 16'(ACT_QMAX);
      assign sq_in_valid_o    = q_in_valid[i];
      assign q_in_ready[i]    = sq_in_ready_i;
      assign sq_in_data_o     = raw_wide[PI];
      assign q_code_valid[i]  = sq_code_valid_i;
      assign sq_code_ready_o  = 1'b1;
      assign code             = sq_code_i;
      assign q_done[i]        = sq_done_i;
      assign q_scale[32*i +: 32] = sq_scale_i;
    end else begin : g_own
      vec_quant #(.DEPTH (MAX_HEAD_DIM), .LANES (QL), .NORM (1'b0)) u_quant (
        .clk_i, .rst_ni,
        .g_we_i (1'b0), .g_addr_i ('0), .g_data_i ('0),
        .start_i (q_start[i]), .ready_o (q_ready[i]), .n_i (32'(hd_q)), .ex_i (-32'sd16), .shift_i ('0), .norm_i (1'b0),
        .qmax_i (16'(ACT_QMAX)), .eps_i ('0),
        .in_valid_i (q_in_valid[i]), .in_ready_o (q_in_ready[i]), .in_data_i (raw_wide[PI]),
        .code_valid_o (q_code_valid[i]), .code_ready_i (1'b1), .code_o (code),
        .done_o (q_done[i]), .scale_o (q_scale[32*i +: 32])
      );
    end
    // The codes, QL at a time, gathered into rows (head_dim is a multiple of LANES).
    logic [8*LANES-1:0] qc [ROWS];
    logic [8*LANES-1:0] stage_q;  // the row being gathered
    logic [31:0]        qidx_q;   // code groups (QL codes) written
    logic [8*LANES-1:0] next_row;
    always_comb begin
      next_row = stage_q;
      // Constant slices, chosen by the position in the row (a computed part-select is a shifter).
      for (int s = 0; s < QPR; s++) begin
        if (qidx_q % QPR == 32'(s)) for (int l = 0; l < QL; l++) next_row[8*(QL*s + l) +: 8] = code[16*l +: 8];
      end
    end
    always_ff @(posedge clk_i) begin
      if (q_code_valid[i]) stage_q <= next_row;
      if (q_code_valid[i] && qidx_q % QPR == QPR - 1) qc[RW'(qidx_q / QPR)] <= next_row;
    end
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) qidx_q <= '0;
      else if (q_start[i]) qidx_q <= '0;
      else if (q_code_valid[i]) qidx_q <= qidx_q + 1;
    end
    for (genvar p = 0; p < PORTS; p++) begin : g_read
      assign q_codes[i][p] = qc[RW'(lane_g[p])];
    end
  end

  // The finisher's registers (below): the lanes' sums are read at its position.
  logic [47:0]   f_sum_q [QB];
  logic [15:0]   f_tok_q;
  logic [15:0]   f_head_q;
  logic [31:0]   f_el_q, f_nb_q;
  logic [QW-1:0] f_qi_q;     // the query being finished
  logic [31:0]   rcp_q;
  logic          f_sent_q, f_cmd_q;
  logic [PORTS-1:0] f_used_q [QB];  // per query, the lanes that had keys

  // ---------------------------------------------------------------- lanes
  // Every lane walks its own range once per phase: K_CODES (raw scores), K_SCALES (scores and
  // their maxima), V_SCALES (softmax numerators, their sums, value weights), V_CODES (value
  // sums). A code element serves every query of the block at once; a scale element is held for
  // nb cycles, one query each.
  wire logic lane_phase  = state_q == K_CODES || state_q == K_SCALES || state_q == V_SCALES || state_q == V_CODES;
  wire logic scale_phase = state_q == K_SCALES || state_q == V_SCALES;
  logic [PORTS-1:0]    lane_done;    // the lane has consumed its range in this phase
  logic [PORTS-1:0]    lane_ready;   // lane p takes its stream's element this cycle
  logic [PORTS-1:0]    lane_used [QB];  // per query: the lane had keys (its max, sums are valid)
  logic signed [31:0]  lane_max [PORTS][QB];
  logic [47:0]         lane_sum [PORTS][QB];
  logic [64*QL-1:0]    lane_out [PORTS];  // the finisher's QL sums of the lane
  logic [PORTS-1:0]    x_valid;
  logic [127:0]        x_wide [PORTS];
  // In V_CODES a lane's share of the next block's q comes first on its port: the lane waits until
  // the quantizers have it.
  assign raw_valid[0] = el_valid;
  assign raw_wide[0]  = el_wide;
  for (genvar p = 0; p < PORTS; p++) begin : g_gate
    assign x_valid[p] = raw_valid[p] && !(state_q == V_CODES && lane_qwin[p]);
    assign x_wide[p]  = raw_wide[p];
  end
  // The phase ends when every lane has its range and has committed its last scale result; the
  // lanes restart their walk with the next.
  logic [PORTS-1:0] lane_busy;  // the lane's scale stages hold a result
  wire logic phase_end = lane_phase && &lane_done && lane_busy == '0;
  for (genvar p = 0; p < PORTS; p++) begin : g_lane
    logic [31:0]        g_q, k_q;     // group within the key, key within the range
    logic [QW-1:0]      qi_q;         // scale phases: the query of this cycle
    logic signed [31:0] raw_q [QB];
    wire logic          last_group = g_q + 1 == groups;
    wire logic          last_query = 32'(qi_q) + 1 >= 32'(nb);
    assign lane_g[p]     = g_q;
    // Feeding the lane's queries (p, p + PORTS, ...) to their quantizers.
    logic [SLW-1:0] lq_left_q;    // q vectors still to feed
    logic [QW-1:0] lq_idx_q;      // the query being fed
    logic          lq_started_q;  // ... its quantizer started
    logic [31:0]   lq_el_q;       // ... its elements fed
    assign lane_qwin[p]     = (state_q == Q_CMD || state_q == Q_QUANT || state_q == V_CODES) && lq_left_q != '0;
    assign lane_qidx[p]     = lq_idx_q;
    assign lane_qstarted[p] = lq_started_q;
    // Only while the lane feeds: lq_idx_q of a lane without queries may alias another's query.
    wire logic lq_start = lane_qwin[p] && q_start[lq_idx_q];
    wire logic lq_fire  = lane_qwin[p] && q_in_valid[lq_idx_q] && q_in_ready[lq_idx_q];
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        lq_left_q    <= '0;
        lq_idx_q     <= '0;
        lq_started_q <= 1'b0;
        lq_el_q      <= '0;
      end else if ((state_q == GROUP && sub_q < 32'(kv_heads_q)) || (state_q == V_SCALES && phase_end)) begin
        // The block's queries (leaving GROUP for Q_CMD), or the next block's (V_SCALES -> V_WAIT).
        lq_left_q    <= state_q == GROUP ? q_on_port(nb, p) : has_next ? q_on_port(next_nb, p) : '0;
        lq_idx_q     <= QW'(p);
        lq_started_q <= 1'b0;
        lq_el_q      <= '0;
      end else begin
        if (lq_start) lq_started_q <= 1'b1;
        if (lq_fire) begin
          lq_el_q <= lq_el_q + 1;
          if (lq_el_q + 1 == 32'(hd_q) / QL) begin
            lq_el_q      <= '0;
            lq_idx_q     <= lq_idx_q + QW'(PORTS);
            lq_started_q <= 1'b0;
            lq_left_q    <= lq_left_q - 1;
          end
        end
      end
    end
    assign lane_done[p]  = k_q == range_len[p];
    assign lane_ready[p] = lane_phase && !lane_done[p] && (!scale_phase || last_query);
    wire logic step = lane_phase && !lane_done[p] && x_valid[p];  // work on the element
    wire logic fire = lane_ready[p] && x_valid[p];                // ... and take it
    wire logic [KW-1:0] ka = KW'(k_q);
    // k_q's next value: the score and weight memories are read at it, so that their registered
    // outputs hold key k_q's entries when it is worked on (block RAM reads are synchronous).
    wire logic [31:0] k_next = phase_end || !lane_phase ? 32'd0 :
                               step && (scale_phase ? last_query : last_group) ? k_q + 1 : k_q;
    wire logic [31:0]   key = 32'(start_q[p]) + k_q;  // the key's position
    // Query i has keys here when the range starts at or before its position (lane 0: key 0).
    // Registered: the ranges settle RANGE_WAIT cycles into a block and the flags are first read
    // when K_SCALES ends (the compare in front of the lanes' max was the engine's longest path).
    for (genvar i = 0; i < QB; i++) begin : g_used
      if (p == 0) begin : g_first
        always_ff @(posedge clk_i) lane_used[i][p] <= range_len[p] != '0;
      end else begin : g_later
        always_ff @(posedge clk_i) lane_used[i][p] <= range_len[p] != '0 && 32'(start_q[p]) <= pos + 32'(i);
      end
    end
    logic signed [31:0]      z_rd [QB];   // key k_q's raw score / score per query (registered read)
    logic [39:0]             w_rd [QB];   // key k_q's value weight per query (< 2^40, numerics §6)
    logic [AW*LANES-1:0]     acc_rd [QB]; // the value sums' row per query
    // Scale phases: query qi_q against this key (masked beyond its position), in nine stages so
    // that none holds more than one multiply or one binary32 rounding (numerics §6 steps 3 to 5;
    // a binary32 multiply is two: trit_num::fp32_mul_front, fp32_mul_back):
    //   both      1 the operands registered: sq, the key's element, its raw score or score
    //   K_SCALES  2,3 a = sq * sk    4,5 c = a * alpha    6,7 raw * significand(c)    8 round  9 z = sat
    //   V_SCALES  2 d = max - z    3,4,5 e = exp2_neg(d)    6,7 e * significand(sv)   8 round  9 w
    // (6,7: mul_pieces, the DSPs' pieces then their sum; 3,4,5: exp2_neg's table product, its
    // rounding, its shift (into stage 5's multiplicand); 8 then 9: the rounding and the
    // saturation with the commit's compare in one stage were the engine's longest path.) Stage
    // 9's results are committed: z or w into the query's memory at the key, the query's running
    // max or numerator sum. (Stage 1:
    // the element queue's read and the query's scale select into a multiply, and stage 6 in one
    // cycle, were the engine's longest paths.)
    localparam int NS = 9;
    wire logic               issue = step && scale_phase;
    wire logic [31:0]        sc    = x_wide[p][31:0];
    wire logic signed [31:0] z_key = z_rd[qi_q];
    logic [NS-1:0]      sv_q;        // stage s holds a result (bit s - 1)
    // What travels with a (key, query) through the stages, per stage: K_SCALES (else V_SCALES),
    // the key is at or before the query's position, it is the range's first key (it starts the
    // max / sum), the key within the range, the query.
    logic [NS:1]        st_k, st_valid, st_first;
    logic [KW-1:0]      st_ka [NS:1];
    logic [QW-1:0]      st_qi [NS:1];
    logic [31:0]        s1_sq_q, s1_sc_q;                // the query's scale, the key's element
    logic signed [31:0] s1_z_q;                          // the key's raw score or score
    logic [trit_num::FMUL_W-1:0] s2_a_q, s4_c_q;         // K: sq * sk, then the score factor c, unrounded
    logic [31:0]        s3_a_q, s5_c_q;                  // ... rounded
    logic signed [47:0] s2_d_q;                          // V: max - z
    logic [15:0]        s5_e_q, s6_e_q, s7_e_q, s8_e_q, s9_e_q;  // V: the numerator e
    logic [31:0]        s2_x_q, s3_x_q, s4_x_q;          // K: the raw score; V: the value scale
    logic signed [56:0] s7_p_q;                          // the exact product to round (32 x 25 bits)
    logic [7:0]         s6_sx_q;                         // its scale's exponent, beside stage 6
    logic signed [40:0] s8_r_q;                          // the product rounded
    logic signed [31:0] s9_z_q;                          // K: the score
    logic [39:0]        s9_w_q;                          // V: the value weight (masked: 0)
    logic [15:0]        e2;
    exp2_neg u_exp2 (.clk_i, .d_i (s2_d_q), .y_o (e2));  // stages 3, 4 and 5
    // One multiplier for both phases: the raw score times c's significand, or e times sv's.
    // Its operands selected a stage ahead where they can be (the multiplicand; the value scale's
    // significand), c's significand taken in stage 5 (the select and the significand in front
    // of the multiply, from a shift register's tap, were the engine's longest path).
    logic signed [31:0]      s5_m_q;     // the multiplicand: the raw score (K) or e (V)
    logic signed [24:0]      s5_xsig_q;  // V: the value scale's significand
    logic [7:0]              s5_xe_q;    // ... and exponent
    wire logic [7:0]         s5_sx  = st_k[5] ? s5_c_q[30:23] : s5_xe_q;  // its exponent
    wire logic signed [24:0] s5_sig = st_k[5] ? trit_num::significand(s5_c_q) : s5_xsig_q;
    mul_pieces #(.A_W (32), .B_W (25)) u_mul (
      .clk_i, .en1_i (1'b1), .en2_i (1'b1), .a_i (s5_m_q), .b_i (s5_sig), .p_o (s7_p_q)
    );
    // Stage 8's rounding at 41 bits: a weight is below 2^40 (numerics §6), a score saturates to
    // 32 bits after. Its shift and masks are decoded from the scale's exponent in stage 7, beside
    // the product's sum (decoding them in front of the rounding was the engine's longest path).
    logic signed [40:0] s7_r;
    requant_round #(.LANES (1), .P_W (57), .FRAC (16), .OUT_W (41), .DECODE_REG (1'b1)) u_round (
      .clk_i, .en_i (1'b1), .p_i (s7_p_q), .e_i (s6_sx_q), .y_o (s7_r)
    );
    always_ff @(posedge clk_i) begin
      st_valid <= {st_valid[NS-1:1], key <= pos + 32'(qi_q)};
      st_first <= {st_first[NS-1:1], k_q == '0};
      st_ka[1] <= ka;
      st_qi[1] <= qi_q;
      for (int t = 2; t <= NS; t++) begin
        st_ka[t] <= st_ka[t-1];
        st_qi[t] <= st_qi[t-1];
      end
      s1_sq_q <= sq_q[qi_q];
      s1_sc_q <= sc;
      s1_z_q  <= z_key;
      s2_a_q  <= trit_num::fp32_mul_front(s1_sq_q, s1_sc_q);
      s2_d_q  <= 48'(64'(zmax_q[st_qi[1]]) - 64'(s1_z_q));
      s2_x_q  <= st_k[1] ? 32'(s1_z_q) : s1_sc_q;
      s3_a_q  <= trit_num::fp32_mul_back(s2_a_q);
      s3_x_q  <= s2_x_q;
      s4_c_q  <= trit_num::fp32_mul_front(s3_a_q, score_q);
      s4_x_q  <= s3_x_q;
      s5_c_q  <= trit_num::fp32_mul_back(s4_c_q);
      s5_e_q  <= e2;
      s5_m_q  <= st_k[4] ? $signed(s4_x_q) : $signed({16'd0, e2});
      s5_xsig_q <= trit_num::significand(s4_x_q);
      s5_xe_q   <= s4_x_q[30:23];
      s6_sx_q <= s5_sx;
      s6_e_q  <= s5_e_q;
      s7_e_q  <= s6_e_q;
      s8_r_q  <= s7_r;
      s8_e_q  <= s7_e_q;
      s9_z_q  <= trit_num::sat32(96'(s8_r_q));
      s9_w_q  <= st_valid[8] ? s8_r_q[39:0] : 40'd0;
      s9_e_q  <= s8_e_q;
    end
    always_ff @(posedge clk_i or negedge rst_ni) begin
      // (st_k with a reset: flip-flops, not a shift register, so its tap in front of the
      // multiplier starts no path with a shift register's read)
      if (!rst_ni) begin
        sv_q <= '0;
        st_k <= '0;
      end else begin
        sv_q <= {sv_q[NS-2:0], issue};
        st_k <= {st_k[NS-1:1], state_q == K_SCALES};
      end
    end
    // Code phases in three stages: the element taken (with its key's value weights: w_rd moves
    // on with k_q) registered, their products (registered), then their sums -- K_CODES adds a
    // key group's dot products (summed in two more stages) into the raw scores, V_CODES adds
    // the value products into the sums' row, read, added and written in the same stage so that
    // consecutive groups of one row never race. (The element queue's read and port select in
    // front of the products, in one cycle with them, was the engine's longest path.)
    logic [127:0]       e_x_q;        // stage 1: the element
    logic [8*LANES-1:0] e_qc_q [QB];  // ... every query's codes at its group
    logic               e_v_q;        // ... it is a code element (K_CODES or V_CODES)
    logic               e_k_q, e_last_q, e_first_q;  // ... as c_* below, a stage earlier
    logic [KW-1:0]      e_ka_q;
    logic [RW-1:0]      e_g_q;
    logic          c_v_q;      // stage 2 holds a code element's products
    logic          c_k_q;      // ... of K_CODES (else V_CODES)
    logic          c_last_q;   // ... of the key's last group
    logic          c_first_q;  // ... of the range's first key (it starts the value sums)
    logic [KW-1:0] c_ka_q;     // ... the key
    logic [RW-1:0] c_g_q;      // ... the group
    // Stages 3 and 4, K_CODES only: the group's dot products summed in a two-stage tree
    // (tlmm_sum_tree) before they join the raw score (the sum of LANES products, the raw score's
    // add and the score memory's write multiplexer in one cycle: 5.35 ns in the delay model,
    // session 19).
    logic          h_v_q, d_v_q;        // stage 3 / 4 holds a K_CODES group's dot products
    logic          h_last_q, d_last_q;  // ... of the key's last group
    logic [KW-1:0] h_ka_q, d_ka_q;      // ... the key
    always_ff @(posedge clk_i) begin
      e_x_q     <= x_wide[p];
      for (int i = 0; i < QB; i++) e_qc_q[i] <= q_codes[i][p];
      e_k_q     <= state_q == K_CODES;
      e_last_q  <= last_group;
      e_first_q <= k_q == '0;
      e_ka_q    <= ka;
      e_g_q     <= RW'(g_q);
      c_k_q     <= e_k_q;
      c_last_q  <= e_last_q;
      c_first_q <= e_first_q;
      c_ka_q    <= e_ka_q;
      c_g_q     <= e_g_q;
      h_last_q  <= c_last_q;
      h_ka_q    <= c_ka_q;
      d_last_q  <= h_last_q;
      d_ka_q    <= h_ka_q;
    end
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        e_v_q <= 1'b0;
        c_v_q <= 1'b0;
        h_v_q <= 1'b0;
        d_v_q <= 1'b0;
      end else begin
        e_v_q <= fire && (state_q == K_CODES || state_q == V_CODES);
        c_v_q <= e_v_q;
        h_v_q <= c_v_q && c_k_q;
        d_v_q <= h_v_q;
      end
    end
    assign lane_busy[p] = sv_q != '0 || e_v_q || c_v_q || h_v_q || d_v_q;
    // The lane's value sums, a row per code group. One read port: V_CODES's last stage reads
    // the row it updates; outside it the finisher reads the row it outputs.
    wire logic [RW-1:0] acc_addr = c_v_q && !c_k_q ? c_g_q : RW'(f_el_q / LANES);
    // The key codes times every query's codes: queries in pairs, two products per multiply
    // (trit_num::mul_s8_pair), query m's LANES products at 16*LANES*m.
    logic [16*LANES*QB-1:0] qk_all, qk_q;
    always_ff @(posedge clk_i) qk_q <= qk_all;
    always_comb begin
      for (int m = 0; m < QB; m += 2) begin
        for (int j = 0; j < LANES; j++) begin
          if (m + 1 < QB) begin
            {qk_all[16*(LANES*m + j) +: 16], qk_all[16*(LANES*(m+1) + j) +: 16]} = trit_num::mul_s8_pair(
              $signed(e_qc_q[m][8*j +: 8]), $signed(e_qc_q[m+1][8*j +: 8]), $signed(e_x_q[8*j +: 8]));
          end else begin
            qk_all[16*(LANES*m + j) +: 16] = $signed(e_qc_q[m][8*j +: 8]) * $signed(e_x_q[8*j +: 8]);
          end
        end
      end
    end
    for (genvar i = 0; i < QB; i++) begin : g_lq
      logic signed [31:0]  zb  [SHARE];  // raw scores, then scores z
      logic [39:0]         wb  [SHARE];  // value weights w
      logic [AW*LANES-1:0] acc [ROWS];
      localparam int DOT_W = 16 + (LANES > 1 ? $clog2(LANES) : 0);
      logic [DOT_W-1:0]    dot_q;        // one code group's LANES products, exact (stage 4)
      // Value products at their real width (41x8 -> 49 bits): written at 64 bits, yosys builds
      // a full-width multiplier (a 48x64 product is eight DSP tiles plus adders).
      logic [39:0]         e_w_q;        // stage 1: the key's value weight
      logic signed [48:0]  wv   [LANES];
      logic signed [48:0]  wv_q [LANES];
      always_ff @(posedge clk_i) e_w_q <= w_rd[i];
      always_comb begin
        for (int j = 0; j < LANES; j++) wv[j] = $signed({1'b0, e_w_q}) * $signed(e_x_q[8*j +: 8]);
      end
      always_ff @(posedge clk_i) for (int j = 0; j < LANES; j++) wv_q[j] <= wv[j];
      tlmm_sum_tree #(.N (LANES), .IN_W (16), .STAGES (2)) u_dot (
        .clk_i, .en_i (1'b1), .vals_i (qk_q[16*LANES*i +: 16*LANES]), .sum_o (dot_q)
      );
      wire logic signed [31:0] dot = 32'($signed(dot_q));
      // Nothing writes key k_q's entries while it is worked on (K_CODES writes raw scores, the
      // scale phases commit keys already passed), so a read at k_next stays current.
      always_ff @(posedge clk_i) begin
        z_rd[i] <= zb[KW'(k_next)];
        w_rd[i] <= wb[KW'(k_next)];
      end
      assign acc_rd[i] = acc[acc_addr];
      logic [AW*LANES-1:0] acc_next;
      // The first key of the range starts the sums (no clearing pass).
      always_comb begin
        for (int j = 0; j < LANES; j++) begin
          acc_next[AW*j +: AW] = (c_first_q ? AW'(0) : $signed(acc_rd[i][AW*j +: AW])) + AW'(wv_q[j]);
        end
      end
      // One write port each (a raw score in K_CODES, then its score from the scale stages).
      wire logic               commit = sv_q[NS-1] && st_qi[NS] == QW'(i);
      wire logic               k_code = d_v_q;  // a K_CODES group in stage 4
      wire logic               zb_we  = (k_code && d_last_q) || (commit && st_k[NS]);
      wire logic [KW-1:0]      zb_wa  = k_code ? d_ka_q : st_ka[NS];
      wire logic signed [31:0] zb_wd  = k_code ? raw_q[i] + dot : s9_z_q;
      always_ff @(posedge clk_i) begin
        if (zb_we) zb[zb_wa] <= zb_wd;
        if (commit && !st_k[NS]) wb[st_ka[NS]] <= s9_w_q;
        if (c_v_q && !c_k_q) acc[acc_addr] <= acc_next;
      end
      always_ff @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) raw_q[i] <= '0;
        else if (phase_end || !lane_phase) raw_q[i] <= '0;
        else if (k_code) raw_q[i] <= d_last_q ? 32'sd0 : raw_q[i] + dot;
      end
      // The query's maximum and numerator sum over this lane's keys (constant indices: written
      // per query, not at its index). Its valid keys are a prefix of the range: the first key
      // starts them.
      always_ff @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) begin
          lane_max[p][i] <= '0;
          lane_sum[p][i] <= '0;
        end else if (commit && st_k[NS]) begin
          if (st_valid[NS] && (st_first[NS] || s9_z_q > lane_max[p][i])) lane_max[p][i] <= s9_z_q;
        end else if (commit) begin
          lane_sum[p][i] <= (st_first[NS] ? 48'd0 : lane_sum[p][i]) + (st_valid[NS] ? 48'(s9_e_q) : 48'd0);
        end
      end
    end
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        g_q  <= '0;
        k_q  <= '0;
        qi_q <= '0;
      end else begin
        // Scale phases: one query per cycle, the key's element taken with the last. K_CODES,
        // V_CODES: LANES codes per element, `groups` per key.
        k_q <= k_next;
        if (phase_end || !lane_phase) begin
          g_q  <= '0;
          qi_q <= '0;
        end else if (step) begin
          if (scale_phase) qi_q <= last_query ? '0 : qi_q + 1;
          else g_q <= last_group ? 32'd0 : g_q + 1;
        end
      end
    end
    // The finisher's query, QL sums of the row.
    wire logic [AW*LANES-1:0] f_row = acc_rd[f_qi_q];
    logic [AW*QL-1:0] f_sums;
    always_comb begin
      f_sums = f_row[AW*QL-1:0];
      for (int s = 1; s < QPR; s++) if ((f_el_q % LANES) / QL == 32'(s)) f_sums = f_row[AW*QL*s +: AW*QL];
      for (int j = 0; j < QL; j++) lane_out[p][64*j +: 64] = 64'($signed(f_sums[AW*j +: AW]));
    end
    if (p > 0) begin : g_port
      // This lane's own reader: in Q_CMD its share of the block's q vectors; then per head its
      // key codes, key scales, value scales, its share of the next block's q vectors and its value
      // codes (a lane without keys asks only for the q vectors).
      logic [SLW-1:0] pissue_q;  // command slots passed
      logic        c_ready;
      logic [31:0] unused_data;
      logic [63:0] c_addr;
      logic [31:0] c_count;
      logic [2:0]  c_size;
      wire logic [SLW-1:0] nq_first = q_on_port(nb, p);
      wire logic [SLW-1:0] nq_next  = has_next ? q_on_port(next_nb, p) : '0;
      wire logic        q_slot   = state_q == Q_CMD || (pissue_q >= SLW'(3) && pissue_q < SLW'(3) + nq_next);
      wire logic        live     = state_q == Q_CMD ? pissue_q < nq_first : streaming && pissue_q < SLW'(4) + nq_next;
      // The q vector a q slot reads: the lane's j-th query is p + j * PORTS, p rows after
      // port 0's.
      wire logic [QJ-1:0] q_j    = QJ'(state_q == Q_CMD ? pissue_q : pissue_q - SLW'(3));
      logic [63:0]      q_lane_blk_q, q_lane_nxt_q;  // this lane's first q row: port 0's plus p rows
      logic [63:0]      q_lane_off_q;                // ... p rows (registered: the multiply in
      always_ff @(posedge clk_i) begin               // front of the add was a long path; q_row
        q_lane_off_q <= 64'(p) * 64'(q_row);         // settles before q_blk_q does)
        q_lane_blk_q <= q_blk_q + q_lane_off_q;
        q_lane_nxt_q <= q_nxt_q + q_lane_off_q;
      end
      wire logic        skip     = live && !q_slot && range_len[p] == '0;  // no keys: no K/V reads
      wire logic        c_valid  = live && !skip;
      // The lane's range starts share * p keys into each region.
      always_comb begin
        c_size  = 3'($clog2(LANES));
        c_count = range_codes[p];
        c_addr  = vc_base + code_off[p];
        if (q_slot) begin
          c_addr  = q_addr(state_q == Q_CMD ? q_lane_blk_q : q_lane_nxt_q, q_j);
          c_count = 32'(hd_q) / QL;
          c_size  = 3'd4;
        end else if (pissue_q == SLW'(0)) begin
          c_addr = kc_base + code_off[p];
        end else if (pissue_q == SLW'(1)) begin
          c_addr  = ks_base + scale_off[p];
          c_count = range_len[p];
          c_size  = 3'd2;
        end else if (pissue_q == SLW'(2)) begin
          c_addr  = vs_base + scale_off[p];
          c_count = range_len[p];
          c_size  = 3'd2;
        end
      end
      elem_reader #(.DATA_W (DATA_W), .QUEUE (4)) u_rd (
        .clk_i, .rst_ni,
        .cmd_valid_i (c_valid), .cmd_ready_o (c_ready),
        .cmd_addr_i (c_addr), .cmd_count_i (c_count), .cmd_size_i (c_size),
        .el_valid_o (raw_valid[p]), .el_ready_i (lane_qwin[p] ? lane_qstarted[p] && q_in_ready[lane_qidx[p]] : lane_ready[p]),
        .el_data_o (unused_data), .el_wide_o (raw_wide[p]),
        .rd_cmd_valid_o (wrd_cmd_valid_o[p-1]), .rd_cmd_ready_i (wrd_cmd_ready_i[p-1]),
        .rd_cmd_addr_o (wrd_cmd_addr_o[64*(p-1) +: 64]), .rd_cmd_beats_o (wrd_cmd_beats_o[32*(p-1) +: 32]),
        .rd_valid_i (wrd_valid_i[p-1]), .rd_ready_o (wrd_ready_o[p-1]), .rd_data_i (wrd_data_i[DATA_W*(p-1) +: DATA_W])
      );
      assign lane_qcmds[p] = state_q == Q_CMD && pissue_q >= nq_first;
      always_ff @(posedge clk_i or negedge rst_ni) begin
        if (!rst_ni) pissue_q <= '0;
        else if (!streaming && state_q != Q_CMD) pissue_q <= '0;
        else if ((c_valid && c_ready) || skip) pissue_q <= pissue_q + 1;
      end
      logic unused_lane;
      assign unused_lane = ^unused_data;
    end else begin : g_port0
      assign lane_qcmds[p] = 1'b1;  // port 0's are the main machine's (issue_q)
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

  // Per query, the lanes' maximum score (K_SCALES) and numerator sum (V_SCALES), over the
  // lanes with keys for it.
  // As trees over the lanes (a chain of PORTS compares and adds was a long path): a lane
  // without keys counts as lane 0's max (lane 0 always has keys, key 0) and as a zero sum.
  localparam int NP  = PORTS > 1 ? 1 << $clog2(PORTS) : 1;
  localparam int PIW = PORTS > 1 ? $clog2(PORTS) : 1;  // a lane's index
  logic signed [31:0] max_all [QB];
  logic [47:0]        sum_all [QB];
  always_comb begin
    for (int i = 0; i < QB; i++) begin
      logic signed [31:0] mt [1:2*NP-1];
      logic [47:0]        st [1:2*NP-1];
      for (int p = 0; p < NP; p++) begin
        logic [PIW-1:0] q;  // p, within range (the tree's leaves past PORTS are neutral)
        q = PIW'(p < PORTS ? p : 0);
        mt[NP+p] = p < PORTS && lane_used[i][q] ? lane_max[q][i] : lane_max[0][i];
        st[NP+p] = p < PORTS && lane_used[i][q] ? lane_sum[q][i] : 48'd0;
      end
      for (int n = NP - 1; n >= 1; n--) begin
        mt[n] = mt[2*n] > mt[2*n+1] ? mt[2*n] : mt[2*n+1];
        st[n] = st[2*n] + st[2*n+1];
      end
      max_all[i] = mt[1];
      sum_all[i] = st[1];
    end
  end
  assign el_ready = lane_qwin[0] ? lane_qstarted[0] && q_in_ready[lane_qidx[0]] : lane_ready[0];

  // The finished query's output, QL values per cycle: the lanes' exact sums (registered in
  // F_OUT's stage 0) added up.
  logic [64*QL-1:0]   fo_out_q [PORTS];
  logic signed [63:0] acc_sum [QL];
  // (a tree over the lanes: a chain of PORTS adds was a long path)
  always_comb begin
    for (int i = 0; i < QL; i++) begin
      logic signed [63:0] at [1:2*NP-1];
      for (int p = 0; p < NP; p++) begin
        logic [PIW-1:0] q;  // p, within range
        q = PIW'(p < PORTS ? p : 0);
        at[NP+p] = p < PORTS && f_used_q[f_qi_q][q] ? $signed(fo_out_q[q][64*i +: 64]) : 64'sd0;
      end
      for (int n = NP - 1; n >= 1; n--) at[n] = at[2*n] + at[2*n+1];
      acc_sum[i] = at[1];
    end
  end

  // ---------------------------------------------------------------- finisher: 1 / S, output
  // Takes a (block, head) when its value codes are in (its sums, first token and head) and
  // writes each query's output while the main machine goes on with the next head; that head's
  // V_CODES waits for it (the lanes' sums are read here).
  typedef enum logic [2:0] {F_IDLE, F_LEAD, F_I2F, F_ROUND, F_DIV, F_OUT} fin_e;
  fin_e f_state_q;
  logic [95:0] f_x_q;  // S of the query in hand, and its leading one (f32(S) in three cycles)
  logic [7:0]  f_e_q;
  logic [trit_num::I2F_MID_W-1:0] f_mid_q;  // ... then shifted, with its round and sticky bits
  logic s_ready, s_valid;
  logic [31:0] s_res;
  fp32_scalar #(.INT_W (48)) u_fp (
    .clk_i, .rst_ni,
    .req_valid_i (f_state_q == F_DIV && !f_sent_q), .req_ready_o (s_ready),
    .op_i (DIV), .a_i (32'h3f80_0000), .b_i (rcp_q), .int_i (48'd0),
    .rsp_valid_o (s_valid), .rsp_ready_i (1'b1), .res_o (s_res)
  );

  logic        wcmd_ready, wel_ready, w_idle;
  logic [QL*32-1:0] o_d, o_d_q;  // F_OUT's rounded values; registered for the writer (stage 5)
  logic [15:0] f_out_tok;  // the finished query's token (registered: the add in front of
  always_ff @(posedge clk_i) f_out_tok <= f_tok_q + 16'(f_qi_q);  // row_addr's multiply was a long path)
  // The output row's address (row_addr, two cycles after f_out_tok). The finisher's token,
  // head and query settle on entering F_LEAD and F_OUT's command comes after F_LEAD, F_I2F,
  // F_ROUND and the divide.
  logic [63:0] f_dst_q;
  row_addr u_f_dst (
    .clk_i, .base_i (dst_q), .tok_i (f_out_tok), .head_i (f_head_q), .row_i (q_row), .hd_i (hd_q),
    .addr_o (f_dst_q)
  );
  // F_OUT in six stages: each lane's QL sums read; their sum over the lanes; its 17-bit pieces
  // times 1/S's significand (mul_pieces); the pieces' sum; the rounding's windows; rounded,
  // into the writer. The stages move together and hold while the writer is not ready. (The
  // 64 x 25-bit multiply in one stage, its DSPs' partial sums on a carry chain, was
  // op_attention's longest path; then the lanes' memory read and the sum over the lanes in one;
  // then two 32-bit halves' products, each two DSPs and their adder in one cycle; then the
  // rounding into the writer's packing; then the rounding after the pieces' sum.)
  localparam int      FO_S = 6;
  logic [FO_S-1:0]    fo_v_q;  // bit s: stage s holds QL values
  logic signed [63:0] fo_sum_q [QL];
  localparam int FO_W = 64 + 25;  // a 64-bit sum times a significand
  logic [FO_W*QL-1:0] fo_p;
  wire logic               fo_adv  = !fo_v_q[FO_S-1] || wel_ready;
  wire logic               fo_take = f_state_q == F_OUT && f_cmd_q && f_el_q < 32'(hd_q) && fo_adv;
  wire logic signed [24:0] rcp_sig = trit_num::significand(rcp_q);
  always_ff @(posedge clk_i) begin
    if (fo_adv) begin
      for (int p = 0; p < PORTS; p++) fo_out_q[p] <= lane_out[p];
      for (int i = 0; i < QL; i++) fo_sum_q[i] <= acc_sum[i];
      o_d_q <= o_d;
    end
  end
  for (genvar i = 0; i < QL; i++) begin : g_out
    wire logic signed [63:0] sum = fo_sum_q[i];  // a plain wire: yosys 0.23 rejects an array element on a signed port
    mul_pieces #(.A_W (64), .B_W (25)) u_fo_mul (
      .clk_i, .en1_i (fo_adv), .en2_i (fo_adv), .a_i (sum), .b_i (rcp_sig),
      .p_o (fo_p[FO_W*i +: FO_W])
    );
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      fo_v_q <= '0;
    end else if (fo_adv) begin
      fo_v_q <= {fo_v_q[FO_S-2:0], fo_take};
    end
  end
  // The four values share rcp: one shift decode, a window per value (requant_round). The decode
  // is registered (rcp_q settles before F_OUT's first value reaches stage 3; decoding it in
  // front of the windows was the engine's longest path with one attention port), and so are the
  // windows (stage 4: the shift, the rounding and the saturation after the products' sum were
  // the next).
  requant_round #(.LANES(QL), .P_W(FO_W), .FRAC(0), .DECODE_REG (1'b1), .APPLY_REG (1'b1)) u_fo_round (
    .clk_i, .en_i (fo_adv), .p_i (fo_p), .e_i (rcp_q[30:23]), .y_o (o_d)
  );
  elem_writer #(.DATA_W (DATA_W)) u_wr (
    .clk_i, .rst_ni,
    .cmd_valid_i (f_state_q == F_OUT && !f_cmd_q), .cmd_ready_o (wcmd_ready),
    .cmd_addr_i (f_dst_q),
    .cmd_count_i (32'(hd_q) / QL), .cmd_size_i (3'd4),
    .el_valid_i (fo_v_q[FO_S-1]), .el_ready_o (wel_ready), .el_data_i (o_d_q),
    .el_len_i (5'd16),
    .idle_o (w_idle),
    .wr_cmd_valid_o, .wr_cmd_ready_i, .wr_cmd_addr_o, .wr_cmd_beats_o, .wr_valid_o, .wr_ready_i, .wr_data_o,
    .wr_strb_o, .wr_done_i
  );
  wire logic v_done = state_q == V_CODES && phase_end;  // hands the block's head to the finisher
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      f_state_q <= F_IDLE;
      f_tok_q   <= '0;
      f_head_q  <= '0;
      f_el_q    <= '0;
      f_nb_q    <= '0;
      f_qi_q    <= '0;
      rcp_q     <= '0;
      f_x_q     <= '0;
      f_mid_q   <= '0;
      f_e_q     <= '0;
      f_sent_q  <= 1'b0;
      f_cmd_q   <= 1'b0;
      for (int i = 0; i < QB; i++) begin
        f_sum_q[i]  <= '0;
        f_used_q[i] <= '0;
      end
    end else begin
      unique case (f_state_q)
        F_IDLE: if (v_done) begin
          // The lanes' sums hold from V_SCALES until the next head's.
          for (int i = 0; i < QB; i++) begin
            f_sum_q[i]  <= sum_all[i];
            f_used_q[i] <= lane_used[i];
          end
          f_tok_q   <= tok_q;
          f_head_q  <= 16'(head_q);
          f_nb_q    <= 32'(nb);
          f_qi_q    <= '0;
          f_state_q <= F_LEAD;
        end
        // rcp = 1 / f32(S): the conversion in three cycles (leading one, shift, rounding: the
        // shift and the rounding in one cycle were the engine's longest path once the rest was
        // pipelined), the divide on fp32_scalar.
        F_LEAD: begin
          f_x_q     <= 96'(f_sum_q[f_qi_q]);
          f_e_q     <= trit_num::lead_one(96'(f_sum_q[f_qi_q]));
          f_state_q <= F_I2F;
        end
        F_I2F: begin
          f_mid_q   <= trit_num::i2f_front(f_x_q, f_e_q);
          f_state_q <= F_ROUND;
        end
        F_ROUND: begin
          rcp_q     <= trit_num::i2f_back(f_mid_q);
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
          if (fo_take) f_el_q <= f_el_q + QL;
          // Every value handed to the writer (which posts the write): the next query, or done.
          if (f_cmd_q && f_el_q == 32'(hd_q) && fo_v_q == '0) begin
            f_qi_q    <= f_qi_q + 1;
            f_state_q <= 32'(f_qi_q) + 1 < f_nb_q ? F_LEAD : F_IDLE;
          end
        end
        default: f_state_q <= F_IDLE;
      endcase
    end
  end

  assign busy_o = state_q != IDLE;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q      <= IDLE;
      range_wait_q <= '0;
      tokens_q     <= '0;
      tok_q        <= '0;
      heads_q      <= '0;
      kv_heads_q   <= '0;
      hd_q         <= '0;
      pos0_q       <= '0;
      max_seq_q    <= '0;
      score_q      <= '0;
      head_q       <= '0;
      kvh_q        <= '0;
      gcount_q     <= '0;
      group_q      <= '0;
      sub_q        <= '0;
      q_q          <= '0;
      kv_q         <= '0;
      dst_q        <= '0;
      issue_q      <= '0;
      q_have_q     <= '0;
      for (int i = 0; i < QB; i++) begin
        zmax_q[i] <= '0;
        sq_q[i]   <= '0;
      end
      done_o       <= 1'b0;
      err_o        <= 1'b0;
    end else begin
      done_o <= 1'b0;
      if (range_wait_q != '0) range_wait_q <= range_wait_q - 3'd1;
      if (rcmd_valid && rcmd_ready) issue_q <= issue_q + 1;
      // The query quantizers: codes into their rows, the scales into sq_q.
      for (int i = 0; i < QB; i++) begin
        if (q_start[i]) q_have_q[i] <= 1'b0;
        if (q_done[i]) begin
          sq_q[i]     <= q_scale[32*i +: 32];
          q_have_q[i] <= 1'b1;
        end
      end
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
          range_wait_q <= 3'(RANGE_WAIT);  // the block's geometry, ranges and q bases settle during GROUP
          err_o      <= 1'b0;
          if (32'(head_dim_i) > MAX_HEAD_DIM || head_dim_i == '0 || 32'(head_dim_i) % LANES != 0 || 32'(heads_i) > MAX_HEADS || kv_heads_i == '0 ||
              kv_heads_i > heads_i || 64'(pos0_i) + 64'(tokens_i) > 64'(max_seq_i) ||
              64'(pos0_i) + 64'(tokens_i) > 64'(MAX_SEQ) || max_seq_i > 32'(MAX_SEQ)) begin
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
        end else if (range_wait_q == '0) begin
          issue_q <= '0;
          state_q <= Q_CMD;  // the lanes' feeders take the block's queries
        end
        // Every port's q commands out (port 0's here, the others' in their lanes).
        Q_CMD: if (issue_q >= q_on_port(nb, 0) && &lane_qcmds) state_q <= Q_QUANT;
        // Until the block's q codes and scales are in (the first block's streamed here, every
        // later one's during the previous head's V_CODES).
        Q_QUANT: if (lane_qwin == '0 && &(q_have_q | ~q_need) && range_wait_q == '0) begin
          issue_q <= '0;
          state_q <= K_CODES;
        end
        // The code lanes run on their own; the phase ends when every lane has its range.
        K_CODES: if (phase_end) state_q <= K_SCALES;
        K_SCALES: if (phase_end) begin
          for (int i = 0; i < QB; i++) zmax_q[i] <= max_all[i];
          state_q <= V_SCALES;
        end
        // The lanes' sums are free once the finisher has written the previous head.
        V_SCALES: if (phase_end) state_q <= V_WAIT;  // the lanes' feeders take the next block's queries
        V_WAIT: if (f_state_q == F_IDLE) state_q <= V_CODES;
        // The finisher takes the block's head (v_done); then the next, or the end.
        V_CODES: if (v_done) begin
          if (!has_next) begin
            state_q <= FINISH;
          end else begin
            head_q       <= next_head;
            tok_q        <= next_tok;
            range_wait_q <= 3'(RANGE_WAIT);
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
  assign unused = ^{el_data, q_row_b[63:32]};

endmodule

`resetall
