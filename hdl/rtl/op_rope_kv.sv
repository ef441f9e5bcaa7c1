// SPDX-License-Identifier: Apache-2.0
//
// op_rope_kv: the ROPE_KV op. For each token at position pos: RoPE on q (written back in place)
// and on k (docs/numerics.md §5: pairs (i, i + d/2), Q1.14 tables read from device memory), then
// k and v quantized per KV head (no norm, qmax = the SETUP's kv_qmax) into the layer's KV cache:
// one row of codes [kv_heads][head_dim] and one row of scales [kv_heads] per position
// (hdl::isa::KvLayout). Rows are read, rotated, quantized and written as codes four values per
// cycle (head_dim is a multiple of 16, so four consecutive values share a head and a half).
// k and v heads go through four quantizers in turn, and a drain writes each head's codes and
// scale while later heads are fed and the next row is read. The reads are issued ahead (up to
// the reader's queue) and the q heads' writes fill the writer's gaps between the drain's, so
// neither DRAM latency nor the quantizers' scalar steps sit between two tokens.

`default_nettype none

module op_rope_kv #(
  parameter int DATA_W       = 128,
  parameter int VEC_DEPTH    = 256,  // longest row (heads x head_dim)
  parameter int MAX_HEAD_DIM = 64,
  parameter int MAX_HEADS    = 4,
  parameter int MAX_SEQ      = 64    // the KV cache's largest max_seq (sizes its address terms)
) (
  input  wire logic                clk_i,
  input  wire logic                rst_ni,
  input  wire logic                start_i,
  input  wire logic [15:0]         tokens_i,
  input  wire logic [31:0]         pos0_i,
  input  wire logic [63:0]         q_i,
  input  wire logic [63:0]         k_i,
  input  wire logic [63:0]         v_i,
  input  wire logic [63:0]         rope_i,
  input  wire logic [63:0]         kv_i,
  input  wire logic [15:0]         heads_i,
  input  wire logic [15:0]         kv_heads_i,
  input  wire logic [15:0]         head_dim_i,
  input  wire logic [15:0]         kv_qmax_i,
  input  wire logic [31:0]         max_seq_i,
  output      logic                done_o,
  output      logic                err_o,
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
  // The last KV-head quantizer is outside, shared with ATTENTION (trit_kernel_core: the two
  // never run at once): vec_quant's ports, an instance with DEPTH MAX_HEAD_DIM, LANES 4, NORM 0.
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

  localparam int VL = 4;  // values per cycle (a 16-byte element of int32)
  // Quantizers working on consecutive KV heads in turn: one head takes ~head_dim/4 cycles to load
  // and as many to drain, but ~70 in the scalar unit (two divisions). Four kept the row moving;
  // two cost tellme-kv260 39 % more ROPE_KV cycles in prefill (12.3 k -> 17.0 k per 8 tokens,
  // 2 % of a layer; decode +0.3 %) and save two quantizers (~11 k LUTs), the scarcer resource.
  localparam int NQ = 2;

  typedef enum logic [3:0] {
    IDLE, COS_CMD, COS_DATA, SIN_CMD, SIN_DATA, ROW_CMD, Q_WRITE, FEED, FINISH
  } state_e;
  state_e state_q;
  logic [1:0] part_q;  // 0 q, 1 k, 2 v

  logic [15:0] tokens_q, tok_q, heads_q, kv_heads_q, hd_q, kv_qmax_q;
  logic [31:0] pos0_q, max_seq_q, head_q;
  // Element indices within a row (and the table rows' halves) at the widths the checks admit
  // (heads x head_dim <= VEC_DEPTH): at 32 bits their compares and sums in front of the row
  // buffer's read address were the engine's longest path.
  localparam int IW = $clog2(VEC_DEPTH + MAX_HEAD_DIM + 17);
  logic [IW-1:0] idx_q, j_q;
  logic [IW-1:0] ridx_q, hend_q;  // row elements read; end of the head being processed
  logic [63:0] q_q, k_q, v_q, rope_q, kv_q;
  logic        cmd_sent_q, fed_start_q;
  logic        q_open_q;  // Q_WRITE: the head's command is sent and its groups are still to produce

  wire logic [IW-1:0] hd_n  = IW'(hd_q);  // head_dim <= MAX_HEAD_DIM (checked)
  wire logic [IW-1:0] half  = hd_n >> 1;
  // Row lengths: registered (the op's sizes, settled a cycle after the start; the first use is
  // the issuer's first row command, six cycles later: after its three-cycle wait).
  logic [31:0] qd, kvd;
  always_ff @(posedge clk_i) begin
    qd  <= 32'(heads_q) * 32'(hd_q);
    kvd <= 32'(kv_heads_q) * 32'(hd_q);
  end
  wire logic [IW-1:0] qd_n = IW'(qd);  // <= VEC_DEPTH (checked)
  wire logic [IW-1:0] n_row = IW'(part_q == 2'd0 ? qd : kvd);  // <= VEC_DEPTH (checked)
  // Bytes from one q (k, v) row to the next: registered, the sizes are the op's (settled three
  // cycles after the start; the issuer first advances a row address six cycles after it).
  logic [63:0] q_stride, kv_stride;
  always_ff @(posedge clk_i) begin
    q_stride  <= trit_num::row_bytes(64'(qd) * 4);
    kv_stride <= trit_num::row_bytes(64'(kvd) * 4);
  end
  // The token's q row (the only part written back, in Q_WRITE), in three registered stages:
  // the offset in two (mul_pieces; q_stride < 2^32: heads x head_dim is checked against
  // VEC_DEPTH), then the sum. tok_q changes many cycles before the first write command (COS_CMD
  // .. ROW_CMD come between, and Q_WRITE waits for the head's row), and the multiply-add in
  // front of the write address, then the multiply's DSP tiles and their adder, were the
  // engine's longest path.
  logic signed [49:0] src_off;
  logic [63:0]        src_row;
  mul_pieces #(.A_W (33), .B_W (17)) u_src_off (
    .clk_i, .en1_i (1'b1), .en2_i (1'b1), .a_i ($signed({1'b0, q_stride[31:0]})), .b_i ($signed({1'b0, tok_q})),
    .p_o (src_off)
  );
  always_ff @(posedge clk_i) src_row <= q_q + 64'(src_off[47:0]);
  logic unused_src_off;
  assign unused_src_off = ^src_off[49:48];
  logic [16:0] rope_row;  // head_dim/2 i16 per table row (head_dim < 2^16: 17 bits padded)
  wire logic [63:0] rope_row_b = trit_num::row_bytes(64'(hd_q));
  always_ff @(posedge clk_i) rope_row <= rope_row_b[16:0];
  // Sizes beyond the engine's buffers, or positions beyond the cache: the op stops with err_o.
  // The model's sizes are the SETUP descriptor's, set many cycles before any ROPE_KV starts:
  // their product's test is registered (the multiply in front of the start's decision was the
  // engine's longest path once the rotation was pipelined).
  logic too_wide_q;
  always_ff @(posedge clk_i) too_wide_q <= 32'(heads_i) * 32'(head_dim_i) > VEC_DEPTH;
  wire logic bad_start = 32'(head_dim_i) > MAX_HEAD_DIM || head_dim_i[3:0] != '0 || head_dim_i == '0 ||
                         32'(heads_i) > MAX_HEADS || kv_heads_i == '0 || kv_heads_i > heads_i ||
                         too_wide_q || 64'(pos0_i) + 64'(tokens_i) > 64'(max_seq_i) ||
                         max_seq_i > 32'(MAX_SEQ);

  // ---------------------------------------------------------------- buffers
  // The row in groups of VL (what arrives per element and what the lanes take per cycle; ridx_q,
  // idx_q, j_q and half are multiples of VL): one memory with one write port, not VEC_DEPTH
  // registers with a VEC_DEPTH-way multiplexer per lane read.
  localparam int XR  = (VEC_DEPTH + VL - 1) / VL;
  localparam int XRW = XR > 1 ? $clog2(XR) : 1;
  logic [32*VL-1:0]   xbuf  [XR];
  // cos and sin table rows as they arrive, eight i16 per element: a group's four lanes read
  // consecutive entries in one element (j_q and half are multiples of VL, half of 8).
  localparam int TR  = (MAX_HEAD_DIM / 2 + 7) / 8;
  localparam int TRW = TR > 1 ? $clog2(TR) : 1;
  logic [127:0] cosb [TR];
  logic [127:0] sinb [TR];

  // ---------------------------------------------------------------- memory streams
  logic        rcmd_valid, rcmd_ready, el_valid, el_ready;
  logic [63:0] rcmd_addr;
  logic [31:0] rcmd_count, el_data;
  logic [127:0] el_wide;  // 16-byte elements: four int32 of a row, eight int16 of a table row
  elem_reader #(.DATA_W (DATA_W)) u_rd (
    .clk_i, .rst_ni,
    .cmd_valid_i (rcmd_valid), .cmd_ready_o (rcmd_ready), .cmd_addr_i (rcmd_addr), .cmd_count_i (rcmd_count),
    .cmd_size_i (3'd4), .el_valid_o (el_valid), .el_ready_i (el_ready),
    .el_data_o (el_data), .el_wide_o (el_wide),
    .rd_cmd_valid_o, .rd_cmd_ready_i, .rd_cmd_addr_o, .rd_cmd_beats_o, .rd_valid_i, .rd_ready_o, .rd_data_i
  );
  // The reads are issued ahead of the machine below, in its order -- per token the cos and sin
  // table rows, then the q, k and v rows -- as far as the reader's queue allows, so each read's
  // DRAM latency passes while earlier data is consumed.
  logic [15:0] i_tok_q;
  logic [2:0]  i_part_q;  // 0 cos, 1 sin, 2 q row, 3 k row, 4 v row
  logic        i_busy_q;  // reads left to issue
  // Each read's address is a register that advances by its stride per token (a multiply-add in
  // front of the command was the engine's longest path). The first table rows' need pos0 (and
  // max_seq) x the row size: products, then sums, while the issuer waits three cycles after the
  // start (i_wait_q; the row size settles in the first).
  logic [1:0]  i_wait_q;
  logic [63:0] i_cos_q, i_sin_q, i_q_q, i_k_q, i_v_q;
  logic [63:0] i_pos_off_q, i_seq_off_q;
  wire logic [31:0] i_n = i_part_q == 3'd2 ? qd : kvd;
  assign rcmd_valid = i_busy_q && i_wait_q == '0;
  always_comb begin
    unique case (i_part_q)
      3'd0:    rcmd_addr = i_cos_q;
      3'd1:    rcmd_addr = i_sin_q;
      3'd2:    rcmd_addr = i_q_q;
      3'd3:    rcmd_addr = i_k_q;
      default: rcmd_addr = i_v_q;
    endcase
  end
  always_ff @(posedge clk_i) begin
    if (i_wait_q != '0) begin
      i_pos_off_q <= 64'(49'(pos0_q) * 49'(rope_row));  // narrow: two DSPs, not a 64 x 64 product
      i_seq_off_q <= 64'(49'(max_seq_q) * 49'(rope_row));
      i_cos_q     <= rope_q + i_pos_off_q;
      i_sin_q     <= rope_q + i_pos_off_q + i_seq_off_q;
      i_q_q   <= q_q;
      i_k_q   <= k_q;
      i_v_q   <= v_q;
    end else if (rcmd_valid && rcmd_ready) begin
      if (i_part_q == 3'd2) i_q_q <= i_q_q + q_stride;
      if (i_part_q == 3'd3) i_k_q <= i_k_q + kv_stride;
      if (i_part_q == 3'd4) begin
        i_v_q   <= i_v_q + kv_stride;
        i_cos_q <= i_cos_q + 64'(rope_row);
        i_sin_q <= i_sin_q + 64'(rope_row);
      end
    end
  end
  // Table rows: head_dim/2 i16, eight per element (head_dim is a multiple of 16).
  wire logic [IW-1:0] table_els = half >> 3;  // 16-byte elements of a table row
  assign rcmd_count = i_part_q >= 3'd2 ? i_n / VL : 32'(table_els);
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      i_tok_q  <= '0;
      i_part_q <= '0;
      i_busy_q <= 1'b0;
      i_wait_q <= '0;
    end else if (state_q == IDLE) begin
      i_tok_q  <= '0;
      i_part_q <= '0;
      i_busy_q <= start_i && !bad_start && tokens_i != '0;
      i_wait_q <= 2'd3;
    end else if (i_wait_q != '0) begin
      i_wait_q <= i_wait_q - 2'd1;
    end else if (rcmd_valid && rcmd_ready) begin
      i_part_q <= i_part_q == 3'd4 ? 3'd0 : i_part_q + 3'd1;
      if (i_part_q == 3'd4) begin
        i_tok_q <= i_tok_q + 1;
        if (i_tok_q + 1 == tokens_q) i_busy_q <= 1'b0;
      end
    end
  end
  // A row streams in while its complete heads are already processed (written back for q, fed
  // to the quantizers for k and v): a head needs only its own elements.
  wire logic row_reading = (state_q == Q_WRITE || state_q == FEED) && ridx_q < n_row;
  wire logic loaded      = ridx_q >= hend_q;
  assign el_ready   = state_q == COS_DATA || state_q == SIN_DATA || row_reading;
  wire logic el_fire = el_valid && el_ready;

  always_ff @(posedge clk_i) begin
    if (el_fire && state_q == COS_DATA) cosb[TRW'(idx_q / IW'(8))] <= el_wide;
    if (el_fire && state_q == SIN_DATA) sinb[TRW'(idx_q / IW'(8))] <= el_wide;
    if (el_fire && row_reading) xbuf[XRW'(ridx_q / IW'(VL))] <= el_wide[32*VL-1:0];
  end

  // Elements idx_q + l of the row (j_q + l = their index within the head) and their partners
  // (the other half of the head, the group half elements away) are taken with the tables'
  // entries into stage O as the group is produced (below); `rotated` is S's group finished.
  logic [VL*32-1:0] rotated;  // lane l: S's element l after RoPE (or as read, for v)
  // Both groups are read a cycle ahead, at the idx_q and j_q of the next cycle (block RAM, not
  // LUT-RAM read twice per cycle). A group is produced only once its head is loaded, i.e. a
  // cycle after the head's last write at the earliest, and the first groups consumed then are
  // not that last one (nor is its partner: head_dim >= 16 is four groups or more).
  logic [IW-1:0]           idx_next, j_next;
  wire logic               next_first = j_next < half;
  logic [32*VL-1:0]        x_group, y_group;
  always_ff @(posedge clk_i) begin
    x_group <= xbuf[XRW'(idx_next / IW'(VL))];
    y_group <= xbuf[XRW'((next_first ? idx_next + half : idx_next - half) / IW'(VL))];
  end
  // The group's table entries: j_q (or j_q - half) and the three after it, half of a table row
  // (read a cycle ahead too, at j_next). Which half of the head, and which half of the table
  // row, are registered with the reads (a compare with half in front of the rotation was on the
  // engine's longest path).
  wire logic [IW-1:0] tab0_next = next_first ? j_next : j_next - half;
  logic [127:0]      cos_row, sin_row;
  logic              group_first;  // j_q < half
  logic              tab_upper;    // the group's entries are the table row's upper four
  always_ff @(posedge clk_i) begin
    cos_row     <= cosb[TRW'(tab0_next / IW'(8))];
    sin_row     <= sinb[TRW'(tab0_next / IW'(8))];
    group_first <= next_first;
    tab_upper   <= tab0_next[2];
  end
  // The rotation runs in four registered stages before its consumer, q's write-back or a
  // quantizer: O holds the group's operands (the buffers' reads), P their products (x cos,
  // y sin), S their sum or difference, R (rs_*) the rotated, rounded group, two deep. O, P and
  // S move together (`adv`: a group may be produced into O, one per cycle) while R has room
  // for what S holds; the consumer takes R's oldest. R's room is a register, so no consumer's
  // ready reaches the machine's next read address (stage by stage handshakes made that chain
  // the engine's longest path). (Before: the reads, the multiplies, the rounding and the
  // consumers' input multiplexers in one cycle; then a block RAM's read into a multiply, and
  // the sum with its rounding.)
  localparam int QW = $clog2(NQ);
  typedef struct packed {
    logic          write;  // of q, for the write-back (else for quantizer `quant`)
    logic          last;   // its head's last
    logic          first;  // in the first half of its head
    logic          pass;   // of v: passed through unrotated
    logic [QW-1:0] quant;
  } rot_tag_t;
  logic             o_v_q, p_v_q, s_v_q;  // the stage holds a group
  rot_tag_t         o_tag_q, p_tag_q, s_tag_q;
  logic             p_load;      // the machine produces a group into O
  logic             adv;         // O, P and S move on
  typedef struct packed {
    logic             write;
    logic             last;
    logic [QW-1:0]    quant;
    logic [32*VL-1:0] data;
  } rot_out_t;
  rot_out_t         r0_q, r1_q;  // R: the oldest group, the next
  logic [1:0]       r_cnt_q;     // ... groups held
  wire logic        rs_v_q     = r_cnt_q != '0;  // R's oldest, to the consumers
  wire logic        rs_write_q = r0_q.write;
  wire logic        rs_last_q  = r0_q.last;
  wire logic [QW-1:0]    rs_quant_q = r0_q.quant;
  wire logic [32*VL-1:0] rs_data_q  = r0_q.data;
  logic             unused_s_first;  // the sum has used it
  assign unused_s_first = s_tag_q.first;
  wire logic [63:0]  cos_four = tab_upper ? cos_row[127:64] : cos_row[63:0];
  wire logic [63:0]  sin_four = tab_upper ? sin_row[127:64] : sin_row[63:0];
  for (genvar l = 0; l < VL; l++) begin : g_rot
    // a' = a cos - b sin (first half, a = x, b = y); b' = b cos + a sin (second half, b = x, a = y).
    // |x c| + |y sn| <= 2^47: the sum fits 48 bits.
    logic signed [31:0] x_q, y_q;    // O
    logic signed [15:0] c_q, sn_q;
    logic signed [47:0] xc_q, ys_q;  // P
    logic        [31:0] xp_q;        // ... x as read (v)
    logic signed [47:0] sum_q;       // S
    logic        [31:0] xs_q;        // ... x as read
    always_ff @(posedge clk_i) begin
      if (p_load) begin
        x_q  <= $signed(x_group[32*l +: 32]);
        y_q  <= $signed(y_group[32*l +: 32]);
        c_q  <= $signed(cos_four[16*l +: 16]);
        sn_q <= $signed(sin_four[16*l +: 16]);
      end
      if (adv) begin
        xc_q  <= 48'(x_q) * 48'(c_q);
        ys_q  <= 48'(y_q) * 48'(sn_q);
        xp_q  <= x_q;
        sum_q <= p_tag_q.first ? xc_q - ys_q : xc_q + ys_q;
        xs_q  <= xp_q;
      end
    end
    // trit_num::sat32(trit_num::rne_shift(sum, 14)) at the width the sum has: the quotient,
    // the round bit, the bits below it.
    wire logic signed [33:0] rq   = sum_q[47:14];
    wire logic               up   = sum_q[13] && ((|sum_q[12:0]) || rq[0]);
    wire logic signed [34:0] rr   = 35'(rq) + 35'(up);
    wire logic signed [31:0] r    = rr > 35'sh7fff_ffff ? 32'sh7fff_ffff : rr < -35'sh8000_0000 ? 32'sh8000_0000 : 32'(rr);
    assign rotated[32*l +: 32] = s_tag_q.pass ? xs_q : r;
  end
  logic unused_tab;
  assign unused_tab = ^{tab0_next[IW-1:3], tab0_next[1:0]};  // tab0_next: a multiple of VL

  // ---------------------------------------------------------------- quantizers (k, v per head)
  // FEED hands KV head head_q to quantizer head_q % NQ once that one is free; the drain below
  // writes the heads' codes and scales in the same order, freeing each quantizer after its scale.
  logic [NQ-1:0]      q_busy_q;   // started, scale not yet written
  logic [NQ-1:0]      q_done_q;   // done_o seen: scale_o holds the head's scale
  logic [NQ-1:0]      q_done;
  logic [NQ-1:0]      q_start, q_in_valid, q_in_ready, q_code_valid, q_code_ready;
  logic [NQ*VL*16-1:0] q_code;
  logic [NQ*32-1:0]   q_scale;
  wire logic [QW-1:0] fq = QW'(head_q);
  for (genvar i = 0; i < NQ; i++) begin : g_quant
    assign q_start[i]    = state_q == FEED && !fed_start_q && fq == QW'(i) && !q_busy_q[i];
    assign q_in_valid[i] = rs_v_q && !rs_write_q && rs_quant_q == QW'(i);
    logic q_ready;  // q_busy_q covers it: a quantizer restarts only after its scale is written
    if (i == NQ - 1) begin : g_shared
      assign sq_start_o       = q_start[i];
      assign q_ready          = sq_ready_i;
      assign sq_n_o           = 32'(hd_q);
      assign sq_qmax_o        = kv_qmax_q;
      assign sq_in_valid_o    = q_in_valid[i];
      assign q_in_ready[i]    = sq_in_ready_i;
      assign sq_in_data_o     = rs_data_q;
      assign q_code_valid[i]  = sq_code_valid_i;
      assign sq_code_ready_o  = q_code_ready[i];
      assign q_code[VL*16*i +: VL*16] = sq_code_i;
      assign q_done[i]        = sq_done_i;
      assign q_scale[32*i +: 32] = sq_scale_i;
    end else begin : g_own
      vec_quant #(.DEPTH (MAX_HEAD_DIM), .LANES (VL), .NORM (1'b0)) u_quant (
        .clk_i, .rst_ni,
        .g_we_i (1'b0), .g_addr_i ('0), .g_data_i ('0),
        .start_i (q_start[i]), .ready_o (q_ready), .n_i (32'(hd_q)), .ex_i (-32'sd16), .shift_i ('0), .norm_i (1'b0),
        .qmax_i (kv_qmax_q), .eps_i ('0),
        .in_valid_i (q_in_valid[i]), .in_ready_o (q_in_ready[i]), .in_data_i (rs_data_q),
        .code_valid_o (q_code_valid[i]), .code_ready_i (q_code_ready[i]), .code_o (q_code[VL*16*i +: VL*16]),
        .done_o (q_done[i]), .scale_o (q_scale[32*i +: 32])
      );
    end
    logic unused_q;
    assign unused_q = q_ready;
  end
  wire logic q_in_fire = |(q_in_valid & q_in_ready);

  // ---------------------------------------------------------------- drain: codes, then scale, per head
  // Its own position in the (token, part, head) order, so the main machine goes on reading and
  // feeding while earlier heads are written.
  logic        d_v_q;       // part: 0 k, 1 v
  logic [31:0] d_head_q, d_el_q;
  logic [1:0]  d_step_q;    // 0 codes command, 1 codes, 2 scale command, 3 scale
  wire logic [QW-1:0] dq = QW'(d_head_q);
  wire logic          d_work = q_busy_q[dq];  // set exactly while head d_head_q is in its quantizer
  // KV cache layout (hdl::isa::KvLayout). Head-major: head h's codes at h * head_stride, position
  // pos at pos * head_dim within them; scales likewise after the codes; v after k.
  // The strides and sizes depend only on the op's sizes: registered (kv_layout, shared with
  // op_attention, at the widths the checks admit), they settle a few cycles after the start,
  // long before the drain's first write (a chain of multiplies was the engine's longest path,
  // then the same at 64 bits).
  localparam int HSW = trit_num::kv_stride_bits(MAX_SEQ, MAX_HEAD_DIM);  // a head's region
  localparam int KHW = $clog2(MAX_HEADS + 1);                             // a KV head count
  localparam int PSW = $clog2(MAX_SEQ + 1);                               // a position (pos0 < max_seq)
  logic [HSW-1:0]     head_stride, scale_stride, pos_codes;
  logic [HSW+KHW-1:0] codes_sz, scales_sz;
  logic [63:0] v_off;
  logic [63:0] first_codes, first_scales;  // token 0's k head 0
  kv_layout #(.MAX_SEQ (MAX_SEQ), .MAX_HEAD_DIM (MAX_HEAD_DIM), .MAX_HEADS (MAX_HEADS)) u_layout (
    .clk_i, .max_seq_i (max_seq_q), .head_dim_i (hd_q), .kv_heads_i (KHW'(kv_heads_q)),
    .head_stride_o (head_stride), .scale_stride_o (scale_stride), .codes_sz_o (codes_sz), .scales_sz_o (scales_sz)
  );
  always_ff @(posedge clk_i) begin
    v_off        <= 64'(codes_sz) + 64'(scales_sz);
    pos_codes    <= HSW'(PSW'(pos0_q) * hd_q);
    first_codes  <= kv_q + 64'(pos_codes);
    first_scales <= kv_q + 64'(codes_sz) + 64'({pos0_q, 2'b00});
  end
  // The drain's addresses are registers that step with it (head: + a stride; k -> v: + v_off
  // from the token's k head 0; next token: + a position), so no multiply sits in front of the
  // writer's command (the multiply-adds here were op_rope_kv's longest path). Until the drain's
  // first command they follow first_*.
  logic [63:0] d_codes_q, d_scales_q, t_codes_q, t_scales_q;  // the head's; the token's k head 0
  logic        d_fresh_q;
  wire logic [VL*16-1:0] d_codes = q_code[VL*16*dq +: VL*16];

  // ---------------------------------------------------------------- writes
  // q heads (main machine, Q_WRITE: one command per head) and the drain's codes and scales share
  // one writer, a command (and its elements) at a time. When both have a command ready the
  // drain goes first (it frees quantizers); the drain asks only once its codes or its scale are
  // there, so the writer never waits on a quantizer while q is ready.
  logic        wcmd_valid, wcmd_ready, wel_valid, wel_ready, w_idle;
  logic [63:0] wcmd_addr;
  logic [31:0]  wcmd_count;
  logic [127:0] wel_data;
  logic [4:0]   wel_len;
  logic [2:0]   wcmd_size;
  elem_writer #(.DATA_W (DATA_W)) u_wr (
    .clk_i, .rst_ni,
    .cmd_valid_i (wcmd_valid), .cmd_ready_o (wcmd_ready), .cmd_addr_i (wcmd_addr), .cmd_count_i (wcmd_count),
    .cmd_size_i (wcmd_size), .el_valid_i (wel_valid), .el_ready_o (wel_ready), .el_data_i (wel_data), .el_len_i (wel_len),
    .idle_o (w_idle),
    .wr_cmd_valid_o, .wr_cmd_ready_i, .wr_cmd_addr_o, .wr_cmd_beats_o, .wr_valid_o, .wr_ready_i, .wr_data_o,
    .wr_strb_o, .wr_done_i
  );
  wire logic d_el_phase = d_work && (d_step_q == 2'd1 || d_step_q == 2'd3);  // drain elements pending
  wire logic w_free     = !cmd_sent_q && !d_el_phase;
  wire logic d_cmd_want = d_work && ((d_step_q == 2'd0 && q_code_valid[dq]) || (d_step_q == 2'd2 && q_done_q[dq]));
  wire logic q_cmd_want = state_q == Q_WRITE && idx_q < qd_n && loaded;  // the head is in
  wire logic d_cmd_go   = w_free && d_cmd_want;
  wire logic q_cmd_go   = w_free && !d_cmd_want && q_cmd_want;
  wire logic q_writing  = q_cmd_go || cmd_sent_q;  // the writer is q's (cmd_sent_q: a head's elements)
  always_comb begin
    q_code_ready = '0;
    if (q_writing) begin
      // q: the head starting at idx_q, four rotated values per 16-byte element, in place.
      wcmd_valid = q_cmd_go;
      wcmd_addr  = src_row + 64'(idx_q) * 4;
      wcmd_count = 32'(hd_q) / VL;
      wcmd_size  = 3'd4;
      wel_valid  = rs_v_q && rs_write_q;
      wel_data   = rs_data_q;
      wel_len    = 5'd16;
    end else begin
      // Drain: head d_head_q's head_dim codes, four per 4-byte element, then its scale.
      wcmd_valid = d_cmd_go;
      wcmd_addr  = d_step_q[1] ? d_scales_q : d_codes_q;
      wcmd_count = d_step_q[1] ? 32'd1 : 32'(hd_q) / VL;
      wcmd_size  = 3'd2;
      wel_valid  = d_work && (d_step_q == 2'd1 ? q_code_valid[dq] : d_step_q == 2'd3 && q_done_q[dq]);
      wel_data   = '0;
      wel_len    = 5'd4;
      if (d_step_q == 2'd3) begin
        wel_data[31:0] = q_scale[32*dq +: 32];
      end else begin
        for (int b = 0; b < VL; b++) wel_data[8*b +: 8] = d_codes[16*b +: 8];
      end
      q_code_ready[dq] = d_work && d_step_q == 2'd1 && wel_ready;
    end
  end
  wire logic wcmd_fire = wcmd_valid && wcmd_ready;
  wire logic wel_fire  = wel_valid && wel_ready;

  // The stages: R emptied by its consumer; O, P and S moving together while R has room (it
  // holds two: room for S's group whatever the consumer does this cycle); the machine producing
  // into O (Q_WRITE: the open head's next group; FEED: the fed head's next group), each once the
  // group's head is loaded.
  wire logic rs_take    = (q_writing && wel_fire) || q_in_fire;
  assign     adv        = r_cnt_q != 2'd2;
  wire logic r_push     = adv && s_v_q;
  wire logic produce_q  = state_q == Q_WRITE && q_open_q && loaded && adv;
  wire logic produce_kv = state_q == FEED && fed_start_q && j_q < hd_n && loaded && adv;
  wire logic head_end   = j_q + IW'(VL) == hd_n;  // the group is its head's last
  assign p_load = produce_q || produce_kv;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      o_v_q   <= 1'b0;
      p_v_q   <= 1'b0;
      s_v_q   <= 1'b0;
      r_cnt_q <= '0;
    end else begin
      if (adv) begin
        o_v_q <= p_load;
        p_v_q <= o_v_q;
        s_v_q <= p_v_q;
      end
      r_cnt_q <= r_cnt_q + 2'(r_push) - 2'(rs_take);
    end
  end
  rot_out_t s_out;  // S's group, rounded: what lands in R
  assign s_out.write = s_tag_q.write;
  assign s_out.last  = s_tag_q.last;
  assign s_out.quant = s_tag_q.quant;
  assign s_out.data  = rotated;
  always_ff @(posedge clk_i) begin
    if (p_load) begin
      o_tag_q.write <= produce_q;
      o_tag_q.last  <= head_end;
      o_tag_q.first <= group_first;
      o_tag_q.pass  <= part_q == 2'd2;
      o_tag_q.quant <= fq;
    end
    if (adv) begin
      p_tag_q <= o_tag_q;
      s_tag_q <= p_tag_q;
    end
    // R: the taken group leaves (the next moves up), S's lands behind what stays.
    if (rs_take) r0_q <= r1_q;
    if (r_push) begin
      if (r_cnt_q == 2'd0 || (r_cnt_q == 2'd1 && rs_take)) r0_q <= s_out;
      else r1_q <= s_out;
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      d_fresh_q <= 1'b1;
      d_v_q     <= 1'b0;
      d_head_q  <= '0;
      d_el_q    <= '0;
      d_step_q  <= '0;
      q_busy_q  <= '0;
      q_done_q  <= '0;
    end else begin
      if (state_q == IDLE) begin
        d_fresh_q <= 1'b1;
        d_v_q     <= 1'b0;
        d_head_q  <= '0;
        d_step_q  <= '0;
      end else if (!q_writing) begin
        if (wcmd_fire) begin
          d_fresh_q <= 1'b0;
          d_el_q    <= '0;
          d_step_q  <= d_step_q + 2'd1;
        end
        if (wel_fire && d_step_q == 2'd1) begin
          d_el_q <= d_el_q + 1;
          if (d_el_q + 1 == 32'(hd_q) / VL) d_step_q <= 2'd2;
        end
        if (wel_fire && d_step_q == 2'd3) begin
          d_step_q <= 2'd0;
          if (d_head_q + 1 == 32'(kv_heads_q)) begin
            d_head_q <= '0;
            d_v_q    <= !d_v_q;
          end else begin
            d_head_q <= d_head_q + 1;
          end
        end
      end
      // A quantizer is busy from its start until the drain has taken its scale, which is final
      // from its done_o (the scalar steps may outlast the codes).
      for (int i = 0; i < NQ; i++) begin
        if (q_start[i]) q_done_q[i] <= 1'b0;
        else if (q_done[i]) q_done_q[i] <= 1'b1;
        if (q_start[i]) q_busy_q[i] <= 1'b1;
        else if (!q_writing && wel_fire && d_step_q == 2'd3 && dq == QW'(i)) q_busy_q[i] <= 1'b0;
      end
    end
  end

  wire logic d_head_done = !q_writing && wel_fire && d_step_q == 2'd3;
  always_ff @(posedge clk_i) begin
    if (d_fresh_q) begin
      t_codes_q  <= first_codes;
      t_scales_q <= first_scales;
      d_codes_q  <= first_codes;
      d_scales_q <= first_scales;
    end else if (d_head_done) begin
      if (d_head_q + 1 != 32'(kv_heads_q)) begin
        d_codes_q  <= d_codes_q + 64'(head_stride);
        d_scales_q <= d_scales_q + 64'(scale_stride);
      end else if (!d_v_q) begin
        d_codes_q  <= t_codes_q + v_off;
        d_scales_q <= t_scales_q + v_off;
      end else begin
        t_codes_q  <= t_codes_q + 64'(hd_q);
        t_scales_q <= t_scales_q + 4;
        d_codes_q  <= t_codes_q + 64'(hd_q);
        d_scales_q <= t_scales_q + 4;
      end
    end
  end

  // idx_q and j_q of the next cycle (the row buffer is read there, a cycle ahead). A group
  // produced into the stage moves to the next.
  always_comb begin
    idx_next = idx_q;
    j_next   = j_q;
    if (p_load) begin
      idx_next = idx_q + IW'(VL);
      j_next   = j_q + IW'(VL) == hd_n ? '0 : j_q + IW'(VL);
    end
    case (state_q)
      COS_CMD, SIN_CMD: idx_next = '0;
      COS_DATA, SIN_DATA: if (el_fire) idx_next = idx_q + IW'(8);
      ROW_CMD: begin
        idx_next = '0;
        j_next   = '0;
      end
      Q_WRITE: if (!cmd_sent_q && idx_q == qd_n) idx_next = '0;
      default: ;
    endcase
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q     <= IDLE;
      part_q      <= '0;
      tokens_q    <= '0;
      tok_q       <= '0;
      heads_q     <= '0;
      kv_heads_q  <= '0;
      hd_q        <= '0;
      kv_qmax_q   <= '0;
      pos0_q      <= '0;
      max_seq_q   <= '0;
      idx_q       <= '0;
      ridx_q      <= '0;
      hend_q      <= '0;
      head_q      <= '0;
      j_q         <= '0;
      q_q         <= '0;
      k_q         <= '0;
      v_q         <= '0;
      rope_q      <= '0;
      kv_q        <= '0;
      cmd_sent_q  <= 1'b0;
      q_open_q    <= 1'b0;
      fed_start_q <= 1'b0;
      done_o      <= 1'b0;
      err_o       <= 1'b0;
    end else begin
      done_o <= 1'b0;
      idx_q  <= idx_next;
      j_q    <= j_next;
      unique case (state_q)
        IDLE: if (start_i) begin
          tokens_q   <= tokens_i;
          pos0_q     <= pos0_i;
          q_q        <= q_i;
          k_q        <= k_i;
          v_q        <= v_i;
          rope_q     <= rope_i;
          kv_q       <= kv_i;
          heads_q    <= heads_i;
          kv_heads_q <= kv_heads_i;
          hd_q       <= head_dim_i;
          kv_qmax_q  <= kv_qmax_i;
          max_seq_q  <= max_seq_i;
          tok_q      <= '0;
          err_o      <= 1'b0;
          if (bad_start) begin
            err_o   <= 1'b1;
            state_q <= FINISH;
          end else begin
            state_q <= tokens_i == '0 ? FINISH : COS_CMD;
          end
        end
        // The reads are in flight already (the issuer above): these states only set up.
        COS_CMD: state_q <= COS_DATA;
        COS_DATA: if (el_fire) begin
          if (idx_q + IW'(8) == half) state_q <= SIN_CMD;
        end
        SIN_CMD: state_q <= SIN_DATA;
        SIN_DATA: if (el_fire) begin
          if (idx_q + IW'(8) == half) begin
            part_q  <= 2'd0;
            state_q <= ROW_CMD;
          end
        end
        ROW_CMD: begin
          ridx_q      <= '0;
          hend_q      <= hd_n;
          head_q      <= '0;
          cmd_sent_q  <= 1'b0;
          q_open_q    <= 1'b0;
          fed_start_q <= 1'b0;
          state_q     <= part_q == 2'd0 ? Q_WRITE : FEED;
        end
        Q_WRITE: begin
          if (el_fire && row_reading) ridx_q <= ridx_q + IW'(VL);
          // The head's command opens it for the producer (up to its last group) and gives the
          // writer to q until that last group is written.
          if (q_writing && wcmd_fire) begin
            cmd_sent_q <= 1'b1;
            q_open_q   <= 1'b1;
          end
          if (produce_q && head_end) begin
            hend_q   <= hend_q + hd_n;
            q_open_q <= 1'b0;
          end
          if (q_writing && wel_fire && rs_last_q) cmd_sent_q <= 1'b0;
          if (!cmd_sent_q && idx_q == qd_n) begin
            part_q  <= 2'd1;
            state_q <= ROW_CMD;
          end
        end
        FEED: begin
          if (el_fire && row_reading) ridx_q <= ridx_q + IW'(VL);
          if (|q_start) fed_start_q <= 1'b1;
          if (produce_kv) begin
            if (head_end) begin
              fed_start_q <= 1'b0;
              head_q      <= head_q + 1;
              hend_q      <= hend_q + hd_n;
              if (head_q + 1 == 32'(kv_heads_q)) begin
                if (part_q == 2'd1) begin
                  part_q  <= 2'd2;
                  state_q <= ROW_CMD;
                end else if (tok_q + 1 == tokens_q) begin
                  state_q <= FINISH;
                end else begin
                  tok_q   <= tok_q + 1;
                  state_q <= COS_CMD;
                end
              end
            end
          end
        end
        FINISH: if (w_idle && q_busy_q == '0 && !rs_v_q && !s_v_q && !p_v_q && !o_v_q) begin
          done_o  <= 1'b1;
          state_q <= IDLE;
        end
        default: state_q <= IDLE;
      endcase
    end
  end

  logic unused;
  assign unused = ^{el_data, q_code, rope_row_b[63:17]};

endmodule

`resetall
