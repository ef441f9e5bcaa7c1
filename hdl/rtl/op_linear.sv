// SPDX-License-Identifier: Apache-2.0
//
// op_linear: the LINEAR op (docs/isa.md): dst[t] (+)= requant(W x[t], scale[t] * w_scale) for
// up to MAX_TOKENS tokens, W an n x k ternary matrix in the TLMM weight image. Phases:
//   0. the job's steps and blocks, one multiply per cycle, and its size check (three cycles)
//   1. scales row -> s[t];  c[t] = s[t] * w_scale on the scalar float unit (fp32_scalar) while
//      phases 2 and 3 read the rows
//   2. each token's int8 code row, re-cut into TLMM activation beats (stream_repack), into xmem
//   3. (accumulate) each dst row, re-cut into COLS-lane words, into ymem
//   4. MATMUL: per chunk of row blocks, the TLMM unit runs over xmem; each result lane is
//      requantized with c[t] and written (or saturating-added) into ymem
//   5. as each chunk's run ends, its part of every ymem row, re-cut into bus words, is written to
//      dst while the next chunk runs (when a chunk's part starts on a bus word: COLS * 4 bytes a
//      multiple of the bus width; else every row at the end)
// A LINEAR with the same codes, scales, k and tokens as the previous one, with no other engine
// started in between (`inval_i`; nor the kernel restarted), finds its rows still in xmem and s[t]
// and skips phases 1 and 2 (k_proj and v_proj after q_proj, up_proj after gate_proj). A LINEAR
// whose dst overlaps the rows it holds forgets them.
//
// The weight loader is a separate machine with its own job context, so loads overlap
// everything else:
// - It streams a matrix chunk by chunk into the TLMM unit's weight buffer, one contiguous share
//   of each chunk per AXI master (one assembler per port, the buffer's write port shared). The
//   buffer is a ring: a chunk loads wherever the ring has room for it (one beat after the last),
//   and the unit runs the loaded chunks in load order (a queue of up to CHUNK_Q), freeing each
//   chunk's beats when its run ends. A matrix larger than a quarter of the buffer is cut into
//   chunks of at most a quarter, so chunks load while others wait and run; the first and the
//   last chunk are small ("edge" chunks, an eighth of a full one, at least a table fill's
//   cycles in blocks): the unit starts early, the
//   next matrix's prefetch soon uses all ports, and the run after the last load is short.
//   `model::pack::Tlmm::chunks` is the same rule; the weight image follows it.
// - It starts once the op's sizes are checked (during phases 1-3; port 0 joins in MATMUL).
// - A program's SETUP may name its first LINEAR's matrix (`pf_go_i`): the loader starts on it at
//   once, as a prefetch, so the ops before that LINEAR (EMBED, NORM_QUANT) hide its first chunks.
// - Prefetch: a LINEAR descriptor may name the next matrix (`prefetch_*`, docs/isa.md). When
//   this matrix is loaded, the loader goes on with the next one into the room this op frees,
//   over the weight-only ports 1..PORTS-1 (port 0 belongs to whichever engine runs next), also
//   after this op is done. The next LINEAR with the same (weights, k, n) finds its first chunks
//   loaded; any other LINEAR waits for a load in flight and drops them. The kernel holds weight
//   ports (`hold_i`, one bit each) while another engine owns them (ATTENTION and LM_HEAD all, a
//   prefill FFN_ACT port 1), and waits for their `ports_busy_o` to fall before handing them over;
//   `flush_i` (kernel start) forgets any prefetch.
// - Each port reads its share of a chunk in commands of at most SUB_WORDS bus words, and a hold
//   stops the port between two commands (its share resumes when the hold ends): the engine that
//   takes a port over waits for at most SUB_WORDS words in flight, not for a whole chunk (up to a
//   quarter of the buffer, thousands of cycles). Chunks that start while a port is held leave
//   it out.

`default_nettype none

module op_linear #(
  parameter int DATA_W     = 128,  // bus bits
  parameter int G          = 3,    // TLMM group
  parameter int TABLES     = 4,    // TLMM tables per step
  parameter int COLS       = 4,    // TLMM rows per cycle
  parameter int ENTRY_W    = 10,   // TLMM table entry bits
  parameter int ACC_W      = 24,   // TLMM accumulator bits
  parameter int MAX_TOKENS = 4,    // tokens per op
  parameter int MAX_BLOCKS = 40,   // largest n / COLS
  parameter int MAX_STEPS  = 14,   // largest steps of k
  parameter int PIPE       = 1,    // TLMM pipeline stages
  parameter int WBUF_DEPTH = 256,  // TLMM weight buffer beats
  parameter int PORTS      = 1,    // read masters for the weights: the rd_* bundle and PORTS-1 wrd_*
  parameter int XP         = PORTS > 1 ? PORTS - 1 : 1  // derived: wrd_* slots
) (
  input  wire logic              clk_i,
  input  wire logic              rst_ni,
  input  wire logic              start_i,
  input  wire logic [15:0]       tokens_i,
  input  wire logic [31:0]       k_i,
  input  wire logic [31:0]       n_i,
  input  wire logic [31:0]       w_scale_i,
  input  wire logic [63:0]       codes_i,
  input  wire logic [63:0]       scales_i,
  input  wire logic [63:0]       weights_i,
  input  wire logic [63:0]       dst_i,
  input  wire logic              accumulate_i,
  input  wire logic [63:0]       pf_weights_i,  // next matrix to prefetch (0: none), its k and n
  input  wire logic              pf_go_i,       // no job: prefetch pf_* now (a program's SETUP hint)
  input  wire logic [31:0]       pf_k_i,
  input  wire logic [31:0]       pf_n_i,
  input  wire logic [XP-1:0]     hold_i,        // per port 1..: request nothing (another engine needs it)
  input  wire logic              flush_i,       // forget prefetched weights (loader idle)
  input  wire logic              inval_i,       // another engine starts: forget the held activation rows
  output      logic [XP-1:0]     ports_busy_o,  // per port 1..: words requested are still to come
  output      logic              done_o,
  output      logic              err_o,       // sizes beyond the engine's maxima (op skipped)
  output      logic              busy_o,      // the TLMM unit computes (performance counter)
  output      logic              stall_o,     // the op runs but the TLMM unit waits (loads, write-back)
  // Read master.
  output      logic              rd_cmd_valid_o,
  input  wire logic              rd_cmd_ready_i,
  output      logic [63:0]       rd_cmd_addr_o,
  output      logic [31:0]       rd_cmd_beats_o,
  input  wire logic              rd_valid_i,
  output      logic              rd_ready_o,
  input  wire logic [DATA_W-1:0] rd_data_i,
  // Write master.
  output      logic              wr_cmd_valid_o,
  input  wire logic              wr_cmd_ready_i,
  output      logic [63:0]       wr_cmd_addr_o,
  output      logic [31:0]       wr_cmd_beats_o,
  output      logic              wr_valid_o,
  input  wire logic              wr_ready_i,
  output      logic [DATA_W-1:0] wr_data_o,
  input  wire logic              wr_done_i,
  // Weight-only read masters 1..PORTS-1 (flattened, master 1 in the low bits).
  output      logic [XP-1:0]        wrd_cmd_valid_o,
  input  wire logic [XP-1:0]        wrd_cmd_ready_i,
  output      logic [XP*64-1:0]     wrd_cmd_addr_o,
  output      logic [XP*32-1:0]     wrd_cmd_beats_o,
  input  wire logic [XP-1:0]        wrd_valid_i,
  output      logic [XP-1:0]        wrd_ready_o,
  input  wire logic [XP*DATA_W-1:0] wrd_data_i
);

  localparam int BYTES   = DATA_W / 8;
  localparam int ENTRIES = (3 ** G - 1) / 2;
  localparam int CODE_W  = $clog2(ENTRIES + 1) + 1;
  localparam int ACT_B   = TABLES * G;                  // activation beat bytes
  localparam int WGT_W   = COLS * TABLES * CODE_W;      // weight beat bits
  localparam int WPB     = (WGT_W + DATA_W - 1) / DATA_W;  // bus words per weight beat
  localparam int LANE_B  = COLS * 4;                    // bytes of one ymem word (COLS int32)
  localparam int TW      = MAX_TOKENS > 1 ? $clog2(MAX_TOKENS) : 1;
  // Address widths that index exactly the buffers' depths (a width one too wide is a lint error).
  localparam int XA_W    = MAX_TOKENS * MAX_STEPS > 1 ? $clog2(MAX_TOKENS * MAX_STEPS) : 1;
  localparam int YA_W    = MAX_TOKENS * MAX_BLOCKS > 1 ? $clog2(MAX_TOKENS * MAX_BLOCKS) : 1;
  localparam int WA_W    = WBUF_DEPTH > 1 ? $clog2(WBUF_DEPTH) : 1;

  function automatic logic [31:0] row_bytes(input logic [31:0] b);
    row_bytes = ((b + 32'd63) >> 6) << 6;
  endfunction
  // The sizes the checks admit fit DW bits: a longer row (k) or more outputs (n) than the
  // buffers hold is rejected, and a chunk is at most the buffer. The divisions below take only
  // DW bits of their operands: one DSP each (a 14 x 24-bit product at full size) instead of a
  // 32 x 33-bit product and its adders, which was op_linear's longest path.
  localparam int DW_K = $clog2(MAX_STEPS * G * TABLES + 1);
  localparam int DW_N = $clog2(MAX_BLOCKS * COLS + 1);
  localparam int DW_C = $clog2(WBUF_DEPTH + 1);
  localparam int DW   = DW_K > DW_N ? (DW_K > DW_C ? DW_K : DW_C) : (DW_N > DW_C ? DW_N : DW_C);
  // ceil(x / d) for a constant 1 <= d <= 512 and x < 2^DW, as a multiply by m = ceil(2^S / d),
  // S = DW + 10, and a shift -- yosys builds a 32-deep array divider even for a constant
  // divisor. With b = x + d - 1 = q d + r (0 <= r < d) and m d = 2^S + e (0 <= e < d),
  // b m / 2^S = q + (r + b e / 2^S) / d: exact while b e < 2^S, as b < 2^(DW+1) and e < 512.
  // Operands of DW or more bits must be rejected by the caller (sizes_ok).
  // [proof: div_ceil begin]
  localparam int S = DW + 10;
  function automatic logic [31:0] div_ceil(input logic [DW-1:0] x, input int d);
    logic [S:0]       m;
    logic [DW:0]      b;
    /* verilator lint_off UNUSEDSIGNAL */  // prod: its low S bits are the fraction
    logic [DW+S+1:0]  prod;
    /* verilator lint_on UNUSEDSIGNAL */
    m    = (S+1)'(((64'd1 << S) + 64'(d) - 64'd1) / 64'(d));
    b    = (DW+1)'(x) + (DW+1)'(d - 1);
    prod = (DW+S+2)'(b) * (DW+S+2)'(m);
    div_ceil = 32'(prod[DW+S+1:S]);
  endfunction
  // [proof: div_ceil end]
  if (G > 512 || TABLES > 512 || COLS > 512 || PORTS > 512) begin : g_bad_divisor
`ifdef __ICARUS__
    op_linear_divisor_over_512 u_fail ();
`else
    $error("op_linear: G = %0d, TABLES = %0d, COLS = %0d, PORTS = %0d: div_ceil is exact for divisors up to 512",
           G, TABLES, COLS, PORTS);
`endif
  end
  function automatic logic sizes_ok(input logic [31:0] k, input logic [31:0] n);
    sizes_ok = (k >> DW) == '0 && (n >> DW) == '0;
  endfunction
  function automatic logic [31:0] blocks_of(input logic [DW-1:0] n);
    blocks_of = div_ceil(n, COLS);
  endfunction
  function automatic logic fits(input logic [31:0] steps, input logic [31:0] blocks);
    fits = steps != '0 && steps <= 32'(MAX_STEPS) && blocks != '0 && blocks <= 32'(MAX_BLOCKS);
  endfunction

  // ---------------------------------------------------------------- job registers
  typedef enum logic [3:0] {
    IDLE, J_SIZE, J_STEPS, J_CHECK, WAIT_LD, S_CMD, S_DATA, X_CMD, X_DATA, X_GO, Y_CMD, Y_DATA, Y_GO, C_WAIT,
    MATMUL
  } state_e;
  state_e state_q;

  localparam int QUARTER = WBUF_DEPTH / 4;  // largest chunk of a matrix that needs several
  logic [15:0] tokens_q;
  logic [31:0] k_q, n_q, w_scale_q, steps_q, blocks_q, tok_q;
  logic        next_sent_q;  // X/Y: the next token's row is already requested (its latency hidden)
  // Row addresses as registers stepped per token (X: the codes rows, Y: the destination rows;
  // the write-back's likewise): no token x pitch multiply in front of a command (those
  // multiply-adds were op_linear's longest path). The pitches are registered: k and n settle
  // at the job's start, three sizing states before the first row command.
  logic [63:0] x_pitch_q, y_pitch_q;   // a codes row's bytes, a destination row's
  logic [63:0] row_q, row_next_q;      // X/Y: token tok_q's row and the next one's
  logic [63:0] wb_addr_q;              // the write-back's command: token wb_tok_q's part
  always_ff @(posedge clk_i) begin
    x_pitch_q <= 64'(row_bytes(k_q));
    y_pitch_q <= 64'(row_bytes(n_q * 4));
  end
  logic [63:0] codes_q, scales_q, weights_q, dst_q;
  logic        acc_q;
  logic [31:0] s_q [MAX_TOKENS];
  logic [31:0] c_q [MAX_TOKENS];
  logic [63:0] nx_w_q;    // the job's prefetch hint: next matrix (0: none), its k and n
  logic [31:0] nx_k_q, nx_n_q;
  logic [31:0] nx_cb_q;   // ... its full chunk, worked out while the job runs
  logic        nx_sizing_q;
  // Sizing first settles the matrix's steps and blocks (two cycles: each div_ceil is a
  // multiply), then grows the chunk with a running product of its beats.
  logic [1:0]  nx_settle_q;
  logic [DW-1:0] nx_kg_q;
  logic [31:0] nx_steps_q, nx_blocks_q, nx_cb_beats_q;

  // The activation rows xmem and s_q hold (phases 1-2 of an earlier job), valid while no other
  // engine has started and no LINEAR has written over them.
  logic        xv_valid_q;
  logic [63:0] xv_codes_q, xv_scales_q;
  logic [31:0] xv_k_q;
  logic [15:0] xv_tokens_q;
  logic        reuse_q;    // this job skips phases 1-2
  logic [63:0] xv_codes_end_q, xv_scales_end_q;  // ... the held rows' ends
  // A job's results (dst, its tokens x n int32) end at dst_end_q, worked out in J_CHECK from the
  // destination pitch the sizing states settled (a tokens x row multiply-add from the start's
  // inputs into this compare was op_linear's longest path).
  logic [47:0] y_bytes_q;  // tokens x the destination pitch
  logic [63:0] dst_end_q;
  always_ff @(posedge clk_i) y_bytes_q <= tokens_q * y_pitch_q[31:0];
  wire logic [63:0] dst_end = dst_q + 64'(y_bytes_q);
  // Whether [a, a_end) and [b, b_end) share a byte.
  function automatic logic overlap(input logic [63:0] a, input logic [63:0] a_end, input logic [63:0] b,
                                   input logic [63:0] b_end);
    overlap = a < b_end && b < a_end;
  endfunction
  wire logic dst_hits_rows = overlap(dst_q, dst_end, xv_codes_q, xv_codes_end_q) ||
                             overlap(dst_q, dst_end, xv_scales_q, xv_scales_end_q);
  wire logic reuse_hit = xv_valid_q && codes_i == xv_codes_q && scales_i == xv_scales_q && k_i == xv_k_q &&
                         tokens_i == xv_tokens_q;
  // A job's steps and blocks are worked out after its start, one div_ceil (a multiply) per
  // cycle (J_SIZE, J_STEPS), and checked in J_CHECK: multiplies from the start to the decision
  // were the engine's longest path.
  logic [DW-1:0] kg_q;     // ceil(k / G) (k < 2^DW when sizes_ok)
  logic        tag_hit_q;  // the job's matrix was the prefetched one at its start
  wire logic bad = tokens_q == '0 || 32'(tokens_q) > MAX_TOKENS || !sizes_ok(k_q, n_q) || !fits(steps_q, blocks_q);

  // ---------------------------------------------------------------- loader job context
  typedef enum logic [2:0] {L_IDLE, L_SIZE, L_DIV, L_SHARE, L_FIRST, L_LEN, L_CMD, L_DATA} lstate_e;
  lstate_e     l_state_q;
  logic        ld_valid_q;       // the context holds a matrix
  logic        ld_claimed_q;     // ... the running (or last) LINEAR's; else a prefetch
  logic [63:0] ld_w_q;
  logic [31:0] ld_k_q, ld_n_q, ld_steps_q, ld_blocks_q;
  logic [31:0] ld_cb_q;          // blocks of a full chunk (worked out in L_SIZE)
  logic [31:0] ld_cb_beats_q;    // ... times ld_steps_q, kept as a running sum
  logic        ld_split_q;      // one block's steps fit a quarter of the buffer (the chunk rule)
  logic        flush_q;          // forget the context once the load in flight is done
  logic [31:0] l_b0_q;           // next block to load
  logic [31:0] l_beat0_q;        // ... its first beat in the matrix (l_b0_q x ld_steps_q)
  logic [PORTS-1:0] l_use_q;     // ports taking part in the chunk being loaded
  logic [WA_W-1:0] l_base_q;     // ring address of the chunk being loaded
  // The ring: the next chunk goes at wp_q; free_q beats are neither loaded, loading nor running.
  logic [WA_W-1:0] wp_q;
  logic [31:0]     free_q;
  // Loaded chunks not yet run, in load order: first block, blocks, ring address.
  localparam int CHUNK_Q = 4;
  logic [31:0]     cq_b0_q   [CHUNK_Q];
  logic [31:0]     cq_nb_q   [CHUNK_Q];
  logic [WA_W-1:0] cq_base_q [CHUNK_Q];
  logic [31:0]     cq_beats_q [CHUNK_Q];
  logic [1:0]      cq_head_q, cq_tail_q;
  logic [2:0]      cq_cnt_q;
  // Runner: the TLMM unit over the loaded chunks, in load order.
  logic        r_running_q;
  logic [31:0] b0_q, nb_q;       // the chunk being run
  logic [31:0] r_beats_q;        // ... its beats (given back to the ring when it ends)
  logic [WA_W-1:0] r_base_q;

  // Chunk sizes (model::pack::Tlmm::chunks): full chunks of ld_cb blocks, except that a
  // double-buffered matrix starts and ends with an edge chunk of ld_cb / 8 blocks (rounded up)
  // but at least a table fill's cycles (ENTRIES + 1: shorter sweeps wait for the fill) and at
  // most ld_cb (Tlmm::edge_blocks).
  // Block counts are BW bits (the checks admit at most MAX_BLOCKS), and the edge is registered
  // (ld_cb_q changes only while a context is sized; l_sized waits for it to settle): the edge,
  // the remainder and its compares as one 32-bit chain were op_linear's longest path.
  localparam int FILL = ENTRIES + 1;
  localparam int BW = $clog2((MAX_BLOCKS > FILL ? MAX_BLOCKS : FILL) + 1);
  logic [BW-1:0] ld_edge_q;
  always_ff @(posedge clk_i) begin
    logic [BW-1:0] eighth, edge_min;
    eighth    = BW'(({1'b0, BW'(ld_cb_q)} + (BW+1)'(7)) >> 3);  // ceil(cb / 8)
    edge_min  = eighth > BW'(FILL) ? eighth : BW'(FILL);
    ld_edge_q <= edge_min < BW'(ld_cb_q) ? edge_min : BW'(ld_cb_q);
  end
  // The next chunk's blocks in two registered steps (the remainder, then the choice: the
  // subtractions and compares in one cycle were op_linear's longest path), then its beats (the
  // multiply off the ring's path). They are valid while what they were worked out from has not
  // changed for three cycles: a registered count of unchanged cycles (stable_q), not a copy of
  // every input per stage compared in front of the chunk's start.
  logic [BW-1:0] rem_q;  // blocks left from l_b0_q
  always_ff @(posedge clk_i) rem_q <= BW'(ld_blocks_q) - BW'(l_b0_q);
  logic [31:0] l_nb;
  always_comb begin
    logic [BW-1:0] cb, eb, nb;
    cb   = BW'(ld_cb_q);
    eb   = ld_edge_q;
    if (!ld_split_q || BW'(ld_blocks_q) <= cb) nb = rem_q < cb ? rem_q : cb;
    else if (BW'(l_b0_q) == '0 || rem_q <= eb) nb = rem_q < eb ? rem_q : eb;
    // A middle remainder shorter than a fill takes what it lacks from the chunk before it.
    else if (cb >= BW'(FILL) && rem_q - eb > cb && rem_q - eb - cb < BW'(FILL)) nb = rem_q - eb - BW'(FILL);
    else nb = rem_q - eb < cb ? rem_q - eb : cb;
    l_nb = 32'(nb);
  end
  // Ring addresses wrap at the buffer's depth.
  function automatic logic [WA_W-1:0] wrap(input logic [31:0] a);
    wrap = a >= 32'(WBUF_DEPTH) ? WA_W'(a - 32'(WBUF_DEPTH)) : WA_W'(a);
  endfunction
  // Port 0 loads the running job's chunks in MATMUL only (before, it reads scales, codes and
  // rows; a prefetch leaves it to the engine that runs next).
  wire logic p0_free = ld_claimed_q && state_q == MATMUL;
  // The loader's moves from L_IDLE wait while the job context is being replaced.
  wire logic l_go = state_q != WAIT_LD && !(state_q == IDLE && start_i) && state_q != J_SIZE &&
                    state_q != J_STEPS && state_q != J_CHECK && !flush_i;
  // The ports a chunk starting now would use: port 0 when free, every weight port not held.
  logic [PORTS-1:0] l_use;
  always_comb begin
    l_use = '0;
    l_use[0] = p0_free;
    for (int p = 1; p < PORTS; p++) l_use[p] = !hold_i[p-1];
  end
  logic [31:0] l_nb_q, l_beats_q;
  logic [31:0] sz_b0_q, sz_cb_q, sz_blocks_q, sz_steps_q;  // the sizing's inputs a cycle ago
  logic        sz_split_q;
  logic [1:0]  stable_q;  // cycles (up to 3) they had not changed before this one
  wire logic sz_changed = sz_b0_q != l_b0_q || sz_cb_q != ld_cb_q || sz_blocks_q != ld_blocks_q ||
                          sz_steps_q != ld_steps_q || sz_split_q != ld_split_q;
  always_ff @(posedge clk_i) begin
    l_nb_q      <= l_nb;
    l_beats_q   <= l_nb_q * ld_steps_q;
    sz_b0_q     <= l_b0_q;
    sz_cb_q     <= ld_cb_q;
    sz_blocks_q <= ld_blocks_q;
    sz_steps_q  <= ld_steps_q;
    sz_split_q  <= ld_split_q;
  end
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) stable_q <= '0;
    else stable_q <= sz_changed ? 2'd0 : stable_q == 2'd3 ? 2'd3 : stable_q + 2'd1;
  end
  // The edge (ld_edge_q, from ld_cb_q a cycle before) is settled when ld_cb_q is: l_nb reads it
  // a cycle after rem_q's inputs, l_beats_q two.
  wire logic l_sized = !sz_changed && stable_q >= 2'd2;
  wire logic l_start_chunk = l_go && ld_valid_q && !flush_q && l_b0_q < ld_blocks_q && 32'(cq_cnt_q) < CHUNK_Q &&
                             l_sized && l_beats_q <= free_q && l_use != '0;
  // The next matrix: after this job's (its hint), or with no context at all (SETUP's, pf_solo_q).
  logic pf_solo_q;
  wire logic l_next = l_go && nx_w_q != '0 && !nx_sizing_q && PORTS > 1 &&
                      ((ld_valid_q && ld_claimed_q && l_b0_q >= ld_blocks_q) || (pf_solo_q && !ld_valid_q && !flush_q)) &&
                      sizes_ok(nx_k_q, nx_n_q) && fits(nx_steps_q, nx_blocks_q) && 4 * nx_steps_q <= 32'(WBUF_DEPTH);
  wire logic tag_hit = ld_valid_q && !ld_claimed_q && !flush_q && ld_w_q == weights_i && ld_k_q == k_i &&
                       ld_n_q == n_i;

  // ---------------------------------------------------------------- scalar unit: c = s * w_scale
  logic fp_req_valid, fp_req_ready, fp_rsp_valid;
  logic [31:0] fp_res;
  fp32_scalar #(.INT_W(32)) u_fp (
    .clk_i, .rst_ni,
    .req_valid_i (fp_req_valid), .req_ready_o (fp_req_ready), .op_i (3'd0),
    .a_i (s_q[TW'(cm_tok_q)]), .b_i (w_scale_q), .int_i (32'd0),
    .rsp_valid_o (fp_rsp_valid), .rsp_ready_i (1'b1), .res_o (fp_res)
  );
  // c[t] = s[t] * w_scale, one token after the other, while the activation (and residual) rows
  // are read: MATMUL waits for it (its results are requantized with c).
  logic        fp_sent_q, cm_busy_q;
  logic [31:0] cm_tok_q;
  assign fp_req_valid = cm_busy_q && !fp_sent_q;

  // ---------------------------------------------------------------- re-cutters
  // Codes rows -> activation beats.
  logic xr_start, xr_busy, xr_in_ready, xr_out_valid;
  logic [8*ACT_B-1:0] xr_out;
  stream_repack #(.IN_BYTES(BYTES), .OUT_BYTES(ACT_B)) u_xr (
    .clk_i, .rst_ni, .start_i (xr_start), .len_i (k_q), .in_words_i (row_bytes(k_q) / BYTES),
    .out_words_i (steps_q), .busy_o (xr_busy),
    .in_valid_i (rd_valid_i && state_q == X_DATA), .in_ready_o (xr_in_ready), .in_data_i (rd_data_i),
    .out_valid_o (xr_out_valid), .out_ready_i (1'b1), .out_data_o (xr_out)
  );
  // dst rows -> COLS-lane words (accumulate).
  logic yr_start, yr_busy, yr_in_ready, yr_out_valid;
  logic [8*LANE_B-1:0] yr_out;
  stream_repack #(.IN_BYTES(BYTES), .OUT_BYTES(LANE_B)) u_yr (
    .clk_i, .rst_ni, .start_i (yr_start), .len_i (n_q * 4), .in_words_i (row_bytes(n_q * 4) / BYTES),
    .out_words_i (blocks_q), .busy_o (yr_busy),
    .in_valid_i (rd_valid_i && state_q == Y_DATA), .in_ready_o (yr_in_ready), .in_data_i (rd_data_i),
    .out_valid_o (yr_out_valid), .out_ready_i (1'b1), .out_data_o (yr_out)
  );
  // ymem rows -> bus words.
  // Write-back of result rows, chunk by chunk (or whole rows at the end, see phase 5).
  localparam bit CHUNK_WB = LANE_B % BYTES == 0;
  typedef enum logic [1:0] {WB_IDLE, WB_CMD, WB_DATA, WB_WAIT} wbstate_e;
  wbstate_e    wb_state_q;
  logic [31:0] wb_b0_q, wb_nb_q, wb_tok_q;  // the part being written: blocks, token
  logic [31:0] wq_b0_q [2];                  // parts waiting: the chunks run, not yet written
  logic [31:0] wq_nb_q [2];
  logic        wq_head_q;
  logic [1:0]  wq_cnt_q;
  logic        runs_done_q;                  // every chunk of the job has run
  // The part's bytes and bus words per row, in two registered steps after the part is taken
  // (wb_wait_q holds its first command until they settle; the chain from the part's blocks
  // into the command's beats was op_linear's longest path).
  logic [31:0] seg_left_q, seg_part_q;  // the row's bytes from the part on; the part's own
  logic [31:0] seg_len, seg_words;
  logic [1:0]  wb_wait_q;
  always_ff @(posedge clk_i) begin
    logic [31:0] len;
    seg_left_q <= n_q * 4 - wb_b0_q * 32'(LANE_B);
    seg_part_q <= wb_nb_q * 32'(LANE_B);
    len        = CHUNK_WB && seg_part_q < seg_left_q ? seg_part_q : seg_left_q;
    seg_len    <= len;
    seg_words  <= CHUNK_WB ? (len + 32'(BYTES) - 1) / 32'(BYTES) : row_bytes(n_q * 4) / BYTES;
  end
  wire logic wb_cmd = wb_state_q == WB_CMD && wb_wait_q == '0;
  logic or_start, or_busy, or_in_valid, or_in_ready, or_out_valid;
  logic [8*LANE_B-1:0] or_in;
  stream_repack #(.IN_BYTES(LANE_B), .OUT_BYTES(BYTES)) u_or (
    .clk_i, .rst_ni, .start_i (or_start), .len_i (seg_len), .in_words_i (wb_nb_q),
    .out_words_i (seg_words), .busy_o (or_busy),
    .in_valid_i (or_in_valid), .in_ready_o (or_in_ready), .in_data_i (or_in),
    .out_valid_o (or_out_valid), .out_ready_i (wr_ready_i && wb_state_q == WB_DATA), .out_data_o (wr_data_o)
  );
  assign wr_valid_o = or_out_valid && wb_state_q == WB_DATA;

  // ---------------------------------------------------------------- on-chip buffers
  // Both are read synchronously (block RAM): xmem one port each way; ymem one write port and
  // one read port, which the residual read (requant pipeline) and the write-back share.
  (* ram_style = "block" *) logic [8*ACT_B-1:0]  xmem [MAX_TOKENS * MAX_STEPS];
  (* ram_style = "block" *) logic [8*LANE_B-1:0] ymem [MAX_TOKENS * MAX_BLOCKS];
  logic [XA_W-1:0]     x_wa_q;   // next xmem write address (token-major)
  logic [YA_W-1:0]     y_wa_q;

  always_ff @(posedge clk_i) begin
    if (xr_out_valid && state_q == X_DATA) xmem[x_wa_q] <= xr_out;
  end

  // ---------------------------------------------------------------- TLMM unit
  logic              u_start, u_busy, u_done, u_err, u_act_valid, u_act_ready, u_out_valid;
  logic [WA_W-1:0]   u_waddr_q;  // (combinational: the granted port's beat address)
  logic              u_we;
  logic [WGT_W-1:0]  u_wdata;
  logic [8*ACT_B-1:0] u_act;
  logic [COLS*ACC_W-1:0] u_out;
  logic [31:0]       u_busy_cycles, u_issue_cycles;
  localparam int TOKW = $clog2(MAX_TOKENS + 1);
  localparam int BLKW = $clog2(MAX_BLOCKS + 1);
  localparam int STPW = $clog2(MAX_STEPS + 1);
  logic [TOKW-1:0] u_tokens;
  logic [BLKW-1:0] u_blocks;
  logic [STPW-1:0] u_steps;
  assign u_tokens = TOKW'(tokens_q);
  assign u_blocks = BLKW'(nb_q);
  logic [WA_W-1:0] u_wbase;
  assign u_wbase = r_base_q;
  assign u_steps  = STPW'(steps_q);

  tlmm_unit #(
    .G (G), .TABLES (TABLES), .COLS (COLS), .ENTRY_W (ENTRY_W), .ACC_W (ACC_W), .MAX_TOKENS (MAX_TOKENS),
    .MAX_BLOCKS (MAX_BLOCKS), .MAX_STEPS (MAX_STEPS), .PIPE (PIPE), .WBUF_DEPTH (WBUF_DEPTH)
  ) u_tlmm (
    .clk_i, .rst_ni,
    .wbuf_we_i (u_we), .wbuf_addr_i (u_waddr_q), .wbuf_data_i (u_wdata),
    .start_i (u_start), .wbase_i (u_wbase), .tokens_i (u_tokens), .blocks_i (u_blocks), .steps_i (u_steps),
    .busy_o (u_busy), .done_o (u_done), .cfg_err_o (u_err),
    .act_valid_i (u_act_valid), .act_ready_o (u_act_ready), .act_data_i (u_act),
    .out_valid_o (u_out_valid), .out_ready_i (1'b1), .out_data_o (u_out),
    .busy_cycles_o (u_busy_cycles), .issue_cycles_o (u_issue_cycles)
  );

  // Weight beats: WPB bus words each, the first WGT_W bits used. The chunk's ports take slots
  // 0, 1, ... (port 0 only when it takes part); the port in slot i reads beats
  // [i * share, i * share + len) of the chunk and assembles them in its own register; the
  // lowest port holding a complete beat writes it into the buffer.
  localparam int SUB_WORDS = 256;     // bus words per command (4 KiB at 128 bits)
  logic [31:0]           share_q;     // beats per port (the last port may get fewer)
  logic [31:0]           chunk_q;     // beats of the chunk being loaded
  logic [31:0]           p_req_q   [PORTS];  // words still to request
  logic [63:0]           p_raddr_q [PORTS];  // address of the next request
  logic [31:0]           p_sub     [PORTS];  // words of the next request
  logic [PORTS-1:0]      p_flight;           // requested words still to come
  logic [PORTS-1:0]      p_full_q;    // a complete beat waits for the buffer's write port
  logic [31:0]           p_len   [PORTS];
  logic [31:0]           p_first [PORTS];    // the port's first beat within the chunk
  logic [31:0]           p_len_q   [PORTS];  // L_LEN: the port's beats of the chunk (from p_first_q)
  logic [31:0]           p_first_q [PORTS];  // ... and its first beat within the chunk
  logic [63:0]           p_off_q   [PORTS];  // L_LEN: the first beat's byte offset in the chunk
  logic [63:0]           l_off_q;            // L_LEN: the chunk's byte offset in the matrix
  logic [31:0]           p_words_q [PORTS];  // words still to receive
  logic [31:0]           p_word_q  [PORTS];  // word within the beat being assembled
  logic [WA_W-1:0]       p_addr_q  [PORTS];  // buffer address of the beat being assembled / held
  logic [WPB*DATA_W-1:0] p_beat_q  [PORTS];
  logic [PORTS-1:0]      p_valid, p_ready, p_grant;
  logic [DATA_W-1:0]     p_data  [PORTS];
  logic [31:0]           written_q;   // beats written into the buffer
  wire logic loading = l_state_q == L_DATA;
  // Beats per port: the chunk over the ports taking part. The chunk registered when its load
  // started is divided by every port count in L_DIV (constant divisors, a multiply each, into
  // registers) and the count taking part picks one in L_SHARE (the multiply into the pick was
  // op_linear's longest path).
  logic [31:0] n_use, share;
  logic [31:0] quot_q [2:PORTS > 1 ? PORTS : 2];  // quot_q[k] = ceil(chunk_q / k), chunk_q <= WBUF_DEPTH
  always_ff @(posedge clk_i) for (int k = 2; k <= PORTS; k++) quot_q[k] <= div_ceil(DW'(chunk_q), k);
  always_comb begin
    n_use = '0;
    for (int p = 0; p < PORTS; p++) n_use = n_use + 32'(l_use_q[p]);
    share = chunk_q;
    for (int k = 2; k <= PORTS; k++) if (n_use == 32'(k)) share = quot_q[k];
  end
  // A chunk's load is under way (its context must stay).
  wire logic l_busy = l_state_q == L_DIV || l_state_q == L_SHARE || l_state_q == L_FIRST || l_state_q == L_LEN || l_state_q == L_CMD ||
                      l_state_q == L_DATA;
  // Slots in port order over the ports taking part.
  always_comb begin
    for (int p = 0; p < PORTS; p++) begin
      // The port's first beat: a share per port before it that takes part (sums, no multiply).
      p_first[p] = '0;
      for (int q = 0; q < p; q++) if (l_use_q[q]) p_first[p] = p_first[p] + share_q;
      p_len[p]   = chunk_q > p_first_q[p] ? chunk_q - p_first_q[p] : 32'd0;
      if (p_len[p] > share_q) p_len[p] = share_q;
      if (!l_use_q[p]) p_len[p] = '0;
    end
  end
  always_comb begin
    p_valid[0] = rd_valid_i;
    p_data[0]  = rd_data_i;
    for (int p = 1; p < PORTS; p++) begin
      p_valid[p] = wrd_valid_i[p-1];
      p_data[p]  = wrd_data_i[DATA_W*(p-1) +: DATA_W];
    end
  end
  // Fixed priority: the lowest full port gets the write port.
  always_comb begin
    p_grant = '0;
    for (int p = PORTS - 1; p >= 0; p--) if (p_full_q[p]) p_grant = PORTS'(1) << p;
  end
  for (genvar p = 0; p < PORTS; p++) begin : g_wready
    assign p_sub[p]    = p_req_q[p] < SUB_WORDS ? p_req_q[p] : SUB_WORDS;
    assign p_flight[p] = p_words_q[p] != p_req_q[p];
    // Only words this loader requested: after a hold, the port carries another engine's data.
    assign p_ready[p]  = loading && p_flight[p] && (!p_full_q[p] || p_grant[p]);
  end
  always_comb begin
    ports_busy_o = '0;
    for (int p = 1; p < PORTS; p++) ports_busy_o[p-1] = loading && p_flight[p];
  end
  for (genvar p = 1; p < XP + 1; p++) begin : g_wcmd
    if (p < PORTS) begin : g_on
      assign wrd_cmd_valid_o[p-1]              = loading && p_req_q[p] != '0 && !hold_i[p-1];
      assign wrd_cmd_addr_o[64*(p-1) +: 64]    = p_raddr_q[p];
      assign wrd_cmd_beats_o[32*(p-1) +: 32]   = p_sub[p];
      assign wrd_ready_o[p-1]                  = p_ready[p];
    end else begin : g_off
      assign wrd_cmd_valid_o[p-1]            = 1'b0;
      assign wrd_cmd_addr_o[64*(p-1) +: 64]  = '0;
      assign wrd_cmd_beats_o[32*(p-1) +: 32] = '0;
      assign wrd_ready_o[p-1]                = 1'b0;
    end
  end
  wire logic [PORTS-1:0] p_cmd_fire;
  assign p_cmd_fire[0] = state_q == MATMUL && loading && p_req_q[0] != '0 && rd_cmd_ready_i;
  for (genvar p = 1; p < PORTS; p++) begin : g_cmd_fire
    assign p_cmd_fire[p] = wrd_cmd_valid_o[p-1] && wrd_cmd_ready_i[p-1];
  end
  localparam int PW = PORTS > 1 ? $clog2(PORTS) : 1;
  logic [PW-1:0] g_idx;
  always_comb begin
    g_idx = '0;
    for (int p = PORTS - 1; p >= 0; p--) if (p_full_q[p]) g_idx = PW'(p);
  end
  wire logic [PORTS-1:0] p_completes;  // a beat's last word arrives
  for (genvar p = 0; p < PORTS; p++) begin : g_beat
    assign p_completes[p] = p_valid[p] && p_ready[p] && p_word_q[p] == 32'(WPB - 1);
    // One constant-position write per word: a computed part-select became a 2304-bit barrel
    // shifter for the data and another for the mask, per port (~35 k LUTs at tellme-kv260's size).
    for (genvar w = 0; w < WPB; w++) begin : g_word
      always_ff @(posedge clk_i) begin
        if (p_valid[p] && p_ready[p] && p_word_q[p] == 32'(w)) p_beat_q[p][DATA_W*w +: DATA_W] <= p_data[p];
      end
    end
  end
  assign u_we      = |p_grant;
  assign u_waddr_q = p_addr_q[g_idx];
  assign u_wdata   = p_beat_q[g_idx][WGT_W-1:0];

  // Activation feed: beats in (token, step) order from xmem (token-major storage). The read
  // address moves with the feed (x_ra_next: the beat after one taken, or a run's first), so the
  // registered read always holds the beat at (ft_q, fs_q).
  logic [31:0] fs_q, ft_q;  // next step / token to feed
  logic        feeding_q;
  logic [XA_W-1:0] x_ra_q;  // xmem address of (ft_q, fs_q)
  logic [XA_W-1:0] x_ra_next;
  logic [8*ACT_B-1:0] u_act_q;
  // The runner takes the next loaded chunk (it leaves the chunk queue).
  wire logic run_begin = state_q == MATMUL && !r_running_q && cq_cnt_q != '0 && !runs_done_q && wq_cnt_q != 2'd2;
  wire logic act_take  = u_act_valid && u_act_ready;
  always_comb begin
    x_ra_next = x_ra_q;
    if (run_begin) x_ra_next = '0;
    else if (act_take) x_ra_next = fs_q + 1 == steps_q ? XA_W'((ft_q + 1) * 32'(MAX_STEPS)) : x_ra_q + 1;
  end
  always_ff @(posedge clk_i) begin
    x_ra_q  <= x_ra_next;
    u_act_q <= xmem[x_ra_next];
  end
  assign u_act_valid = state_q == MATMUL && feeding_q;
  assign u_act       = u_act_q;

  // Results: (token, block) order; requantize every lane with c[token], then write ymem.
  logic [31:0] ob_q, ot_q;   // block within chunk, token of the next result
  logic [31:0] c_now;
  // c[ot_q], registered: read at the token the next cycle has (the scale's select in front of
  // requant's multiply was op_linear's longest path). c_q is complete before MATMUL.
  wire logic [TW-1:0] ot_next = state_q == MATMUL && u_out_valid && ob_q + 1 == nb_q ? TW'(ot_q + 1) :
                                run_begin ? '0 : TW'(ot_q);
  always_ff @(posedge clk_i) c_now <= c_q[ot_next];
  logic rq_valid;
  logic [32*COLS-1:0] rq_y;
  requant #(.LANES(COLS), .IN_W(ACC_W), .FRAC(16)) u_rq (
    .clk_i, .rst_ni, .valid_i (u_out_valid && state_q == MATMUL), .x_i (u_out), .scale_i (c_now),
    .valid_o (rq_valid), .y_o (rq_y)
  );
  // The ymem address travels with the requant pipeline (four stages); the old value
  // (accumulate) is read in the third and used in the fourth. That read has ymem's read port
  // first; the write-back reads in the other cycles.
  logic [YA_W-1:0] ya_d1_q, ya_d2_q, ya_d3_q, ya_d4_q;
  logic            rq_d1_q, rq_d2_q, rq_d3_q;  // a result is in the requant pipeline's stage 1 / 2 / 3
  logic [8*LANE_B-1:0] y_rd_q;  // ymem's read port
  logic [8*LANE_B-1:0] yold_q;
  wire logic [YA_W-1:0] y_res_addr = YA_W'(ot_q * 32'(MAX_BLOCKS) + b0_q + ob_q);
  wire logic y_old_rd = rq_d3_q && acc_q;
  logic [YA_W-1:0] y_wb_ra;   // the write-back's next word
  logic            y_wb_re;   // ... read this cycle
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      rq_d1_q <= 1'b0;
      rq_d2_q <= 1'b0;
      rq_d3_q <= 1'b0;
    end else begin
      rq_d1_q <= u_out_valid && state_q == MATMUL;
      rq_d2_q <= rq_d1_q;
      rq_d3_q <= rq_d2_q;
    end
  end
  always_ff @(posedge clk_i) begin
    ya_d1_q <= y_res_addr;
    ya_d2_q <= ya_d1_q;
    ya_d3_q <= ya_d2_q;
    ya_d4_q <= ya_d3_q;
    y_rd_q  <= ymem[y_old_rd ? ya_d3_q : y_wb_ra];
  end
  assign yold_q = y_rd_q;
  logic [8*LANE_B-1:0] ynew;
  always_comb begin
    for (int l = 0; l < COLS; l++) begin
      logic signed [32:0] sum;
      sum = 33'($signed(yold_q[32*l +: 32])) + 33'($signed(rq_y[32*l +: 32]));
      if (!acc_q) ynew[32*l +: 32] = rq_y[32*l +: 32];
      else if (sum > 33'sd2147483647) ynew[32*l +: 32] = 32'h7fff_ffff;
      else if (sum < -33'sd2147483648) ynew[32*l +: 32] = 32'h8000_0000;
      else ynew[32*l +: 32] = sum[31:0];
    end
  end
  // The dst rows' words (accumulate) are written a cycle after the repacker makes them (its
  // byte masks in front of ymem's write multiplexer were op_linear's longest path); the last
  // lands in C_WAIT or the next row's Y_CMD / Y_GO, long before MATMUL's first result.
  logic                yw_v_q;
  logic [YA_W-1:0]     yw_a_q;
  logic [8*LANE_B-1:0] yw_d_q;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) yw_v_q <= 1'b0;
    else yw_v_q <= yr_out_valid && state_q == Y_DATA;
  end
  always_ff @(posedge clk_i) begin
    yw_a_q <= y_wa_q;
    yw_d_q <= yr_out;
    if (rq_valid) ymem[ya_d4_q] <= ynew;
    else if (yw_v_q) ymem[yw_a_q] <= yw_d_q;
  end
  // Output rows: ymem words of the part's token, in block order, read ahead whenever the read
  // port is free.
  logic [31:0] ob_read_q;     // words of the part read
  logic        wb_room, wb_valid;
  assign y_wb_ra = YA_W'(wb_tok_q * 32'(MAX_BLOCKS) + wb_b0_q + ob_read_q);
  assign y_wb_re = wb_state_q == WB_DATA && ob_read_q < wb_nb_q && !y_old_rd && wb_room;
  read_ahead #(.W(8 * LANE_B)) u_wb_ahead (
    .clk_i, .rst_ni, .clear_i (1'b0), .issue_i (y_wb_re), .rdata_i (y_rd_q), .room_o (wb_room),
    .valid_o (wb_valid), .ready_i (or_in_ready && wb_state_q == WB_DATA), .data_o (or_in)
  );
  assign or_in_valid = wb_state_q == WB_DATA && wb_valid;

  // ---------------------------------------------------------------- memory commands
  always_comb begin
    rd_cmd_valid_o = 1'b0;
    rd_cmd_addr_o  = '0;
    rd_cmd_beats_o = '0;
    unique case (state_q)
      S_CMD: begin
        rd_cmd_valid_o = !reuse_q;
        rd_cmd_addr_o  = scales_q;
        rd_cmd_beats_o = (32'(tokens_q) * 4 + BYTES - 1) / BYTES;
      end
      X_CMD: begin
        rd_cmd_valid_o = 1'b1;
        rd_cmd_addr_o  = row_q;
        rd_cmd_beats_o = 32'(x_pitch_q / 64'(BYTES));
      end
      // While a row streams in, the next token's row is requested.
      X_DATA: begin
        rd_cmd_valid_o = !next_sent_q && tok_q + 1 < 32'(tokens_q);
        rd_cmd_addr_o  = row_next_q;
        rd_cmd_beats_o = 32'(x_pitch_q / 64'(BYTES));
      end
      Y_CMD: begin
        rd_cmd_valid_o = 1'b1;
        rd_cmd_addr_o  = row_q;
        rd_cmd_beats_o = 32'(y_pitch_q / 64'(BYTES));
      end
      Y_DATA: begin
        rd_cmd_valid_o = !next_sent_q && tok_q + 1 < 32'(tokens_q);
        rd_cmd_addr_o  = row_next_q;
        rd_cmd_beats_o = 32'(y_pitch_q / 64'(BYTES));
      end
      MATMUL: begin
        rd_cmd_valid_o = loading && p_req_q[0] != '0;
        rd_cmd_addr_o  = p_raddr_q[0];
        rd_cmd_beats_o = p_sub[0];
      end
      default: ;
    endcase
  end
  assign rd_ready_o = (state_q == S_DATA) || (state_q == X_DATA && xr_in_ready) ||
                      (state_q == Y_DATA && yr_in_ready) || p_ready[0];
  assign wr_cmd_valid_o = wb_cmd;
  assign wr_cmd_addr_o  = wb_addr_q;
  assign wr_cmd_beats_o = seg_words;

  assign xr_start = (state_q == X_CMD && rd_cmd_ready_i) || state_q == X_GO;
  assign yr_start = (state_q == Y_CMD && rd_cmd_ready_i) || state_q == Y_GO;
  assign or_start = wb_cmd && wr_cmd_ready_i;
  logic ustart_q;
  assign u_start  = ustart_q;  // one cycle after the chunk's weights are in the buffer

  // ---------------------------------------------------------------- control
  logic [31:0] sidx_q;  // scales words received
  wire logic ring_take = l_state_q == L_IDLE && l_start_chunk;
  wire logic ring_give = state_q == MATMUL && u_done;
  wire logic cq_push   = l_state_q == L_DATA && u_we && written_q + 1 == chunk_q;
  wire logic cq_pop    = run_begin;
  // A run's end queues its part for write-back (every chunk, or only the last: CHUNK_WB).
  wire logic wq_push   = state_q == MATMUL && u_done && (CHUNK_WB || b0_q + nb_q >= blocks_q);
  wire logic wq_pop    = wb_state_q == WB_IDLE && wq_cnt_q != '0;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q   <= IDLE;
      done_o    <= 1'b0;
      err_o     <= 1'b0;
      tokens_q  <= '0;
      k_q       <= '0;
      n_q       <= '0;
      w_scale_q <= '0;
      steps_q   <= '0;
      blocks_q  <= '0;
      kg_q      <= '0;
      tag_hit_q <= 1'b0;
      nx_w_q    <= '0;
      nx_k_q    <= '0;
      nx_n_q    <= '0;
      nx_cb_q   <= '0;
      nx_sizing_q <= 1'b0;
      nx_settle_q <= '0;
      nx_kg_q     <= '0;
      nx_steps_q  <= '0;
      nx_blocks_q <= '0;
      nx_cb_beats_q <= '0;
      b0_q      <= '0;
      nb_q      <= '0;
      r_beats_q <= '0;
      l_state_q <= L_IDLE;
      ld_valid_q   <= 1'b0;
      ld_claimed_q <= 1'b0;
      ld_w_q       <= '0;
      ld_k_q       <= '0;
      ld_n_q       <= '0;
      ld_steps_q   <= '0;
      ld_blocks_q  <= '0;
      ld_cb_q      <= '0;
      ld_cb_beats_q <= '0;
      ld_split_q  <= 1'b0;
      flush_q      <= 1'b0;
      l_b0_q    <= '0;
      l_beat0_q <= '0;
      l_base_q  <= '0;
      wp_q      <= '0;
      free_q    <= 32'(WBUF_DEPTH);
      cq_head_q <= '0;
      cq_tail_q <= '0;
      cq_cnt_q  <= '0;
      r_base_q  <= '0;
      for (int i = 0; i < CHUNK_Q; i++) begin
        cq_b0_q[i]   <= '0;
        cq_nb_q[i]   <= '0;
        cq_base_q[i] <= '0;
        cq_beats_q[i] <= '0;
      end
      l_use_q     <= '0;
      chunk_q     <= '0;
      share_q     <= '0;
      r_running_q <= 1'b0;
      pf_solo_q   <= 1'b0;
      xv_valid_q  <= 1'b0;
      xv_codes_q  <= '0;
      xv_scales_q <= '0;
      xv_codes_end_q  <= '0;
      xv_scales_end_q <= '0;
      dst_end_q   <= '0;
      xv_k_q      <= '0;
      xv_tokens_q <= '0;
      reuse_q     <= 1'b0;
      tok_q       <= '0;
      row_q       <= '0;
      row_next_q  <= '0;
      codes_q     <= '0;
      scales_q    <= '0;
      weights_q   <= '0;
      dst_q       <= '0;
      acc_q       <= 1'b0;
      next_sent_q <= 1'b0;
      fp_sent_q   <= 1'b0;
      cm_busy_q   <= 1'b0;
      cm_tok_q    <= '0;
      x_wa_q      <= '0;
      y_wa_q      <= '0;
      p_full_q    <= '0;
      written_q   <= '0;
      for (int p = 0; p < PORTS; p++) begin
        p_words_q[p] <= '0;
        p_word_q[p]  <= '0;
        p_addr_q[p]  <= '0;
        p_req_q[p]   <= '0;
        p_raddr_q[p] <= '0;
        p_len_q[p]   <= '0;
        p_first_q[p] <= '0;
        p_off_q[p]   <= '0;
      end
      l_off_q     <= '0;
      fs_q        <= '0;
      ft_q        <= '0;
      feeding_q   <= 1'b0;
      ob_q        <= '0;
      ot_q        <= '0;
      ob_read_q   <= '0;
      wb_state_q  <= WB_IDLE;
      wb_b0_q     <= '0;
      wb_nb_q     <= '0;
      wb_tok_q    <= '0;
      wb_addr_q   <= '0;
      wb_wait_q   <= '0;
      wq_b0_q[0]  <= '0;
      wq_b0_q[1]  <= '0;
      wq_nb_q[0]  <= '0;
      wq_nb_q[1]  <= '0;
      wq_head_q   <= 1'b0;
      wq_cnt_q    <= '0;
      runs_done_q <= 1'b0;
      ustart_q    <= 1'b0;
      sidx_q      <= '0;
    end else begin
      done_o <= 1'b0;

      // ---- loader: the context's chunks, in order, into the ring as room frees up.
      unique case (l_state_q)
        L_IDLE: begin
          if (l_start_chunk) begin
            l_state_q <= L_DIV;
            l_use_q   <= l_use;
            l_base_q  <= wp_q;
            chunk_q   <= l_beats_q;
            wp_q      <= wrap(32'(wp_q) + l_beats_q);
          end else if (l_next) begin
            // This job's matrix is loaded (or there is none): go on with the next one (a prefetch).
            pf_solo_q       <= 1'b0;
            ld_valid_q      <= 1'b1;
            ld_claimed_q    <= 1'b0;
            ld_w_q          <= nx_w_q;
            ld_k_q          <= nx_k_q;
            ld_n_q          <= nx_n_q;
            ld_steps_q      <= nx_steps_q;
            ld_blocks_q     <= nx_blocks_q;
            ld_split_q     <= 1'b1;
            ld_cb_q         <= nx_cb_q;
            ld_cb_beats_q   <= nx_cb_beats_q;
            l_b0_q          <= '0;
            l_beat0_q       <= '0;
            nx_w_q          <= '0;
          end
        end
        L_SIZE: begin
          // Grow a full chunk one block at a time while all its steps fit: a quarter of the buffer
          // when the matrix is split (see ld_split_q), else the whole buffer.
          if (ld_cb_beats_q + ld_steps_q <= (ld_split_q ? 32'(QUARTER) : 32'(WBUF_DEPTH)) && ld_cb_q < ld_blocks_q) begin
            ld_cb_q       <= ld_cb_q + 1;
            ld_cb_beats_q <= ld_cb_beats_q + ld_steps_q;
          end else begin
            l_state_q <= L_IDLE;
          end
        end
        L_DIV: l_state_q <= L_SHARE;
        L_SHARE: begin
          share_q   <= share;
          l_state_q <= L_FIRST;
        end
        // Each port's first beat of the chunk, its beats (and the first beat's offset), then
        // (L_CMD) its words and where they start, requested in L_DATA: a state each, since the
        // slot times share into the length into the words (and then the first beat into the
        // length, then the first beat's offset into its address) was op_linear's longest path.
        L_FIRST: begin
          l_state_q <= L_LEN;
          for (int p = 0; p < PORTS; p++) p_first_q[p] <= p_first[p];
        end
        // The first beats' byte offsets as two products (the chunk's, the port's), added in
        // L_CMD: their sum times the beat's bytes in one cycle was a long path.
        L_LEN: begin
          l_state_q <= L_CMD;
          l_off_q   <= 64'(l_beat0_q) * 64'(WPB * BYTES);
          for (int p = 0; p < PORTS; p++) begin
            p_len_q[p] <= p_len[p];
            p_off_q[p] <= 64'(p_first_q[p]) * 64'(WPB * BYTES);
          end
        end
        L_CMD: begin
          l_state_q <= L_DATA;
          written_q <= '0;
          for (int p = 0; p < PORTS; p++) begin
            p_words_q[p] <= p_len_q[p] * 32'(WPB);
            p_req_q[p]   <= p_len_q[p] * 32'(WPB);
            p_raddr_q[p] <= ld_w_q + l_off_q + p_off_q[p];
            p_word_q[p]  <= '0;
            p_addr_q[p]  <= wrap(32'(l_base_q) + p_first_q[p]);
          end
        end
        L_DATA: begin
          for (int p = 0; p < PORTS; p++) begin
            if (p_cmd_fire[p]) begin
              p_req_q[p]   <= p_req_q[p] - p_sub[p];
              p_raddr_q[p] <= p_raddr_q[p] + 64'(p_sub[p]) * 64'(BYTES);
            end
            if (p_grant[p]) p_addr_q[p] <= wrap(32'(p_addr_q[p]) + 1);
            if (p_valid[p] && p_ready[p]) begin
              p_words_q[p] <= p_words_q[p] - 1;
              if (p_word_q[p] == 32'(WPB - 1)) p_word_q[p] <= '0;
              else p_word_q[p] <= p_word_q[p] + 1;
            end
          end
          p_full_q <= (p_full_q & ~p_grant) | p_completes;
          if (u_we) begin
            written_q <= written_q + 1;
            if (written_q + 1 == chunk_q) begin
              cq_b0_q[cq_tail_q]   <= l_b0_q;
              cq_nb_q[cq_tail_q]   <= l_nb_q;
              cq_base_q[cq_tail_q] <= l_base_q;
              cq_beats_q[cq_tail_q] <= chunk_q;
              cq_tail_q <= cq_tail_q + 1;
              l_b0_q    <= l_b0_q + l_nb_q;
              l_beat0_q <= l_beat0_q + chunk_q;
              l_state_q <= L_IDLE;
            end
          end
        end
        default: ;
      endcase
      // The ring's room and queue: a chunk's beats are taken when its load starts and given back
      // when its run ends; it joins the queue when loaded and leaves it when its run starts.
      free_q   <= free_q - (ring_take ? l_beats_q : 32'd0) + (ring_give ? r_beats_q : 32'd0);
      cq_cnt_q <= cq_cnt_q + 3'(cq_push) - 3'(cq_pop);
      // Forget prefetched weights (a new program): at once, or when the load in flight is done.
      if (flush_i || flush_q) begin
        if (!l_busy) begin
          ld_valid_q <= 1'b0;
          flush_q    <= 1'b0;
          wp_q       <= '0;
          free_q     <= 32'(WBUF_DEPTH);
          cq_head_q  <= '0;
          cq_tail_q  <= '0;
          cq_cnt_q   <= '0;
        end else begin
          flush_q <= 1'b1;
        end
      end
      // The next matrix's full chunk (as L_SIZE, for a quarter of the buffer), so the switch is at once.
      if (nx_sizing_q) begin
        if (nx_settle_q == 2'd2) begin
          nx_kg_q     <= DW'(div_ceil(DW'(nx_k_q), G));
          nx_blocks_q <= blocks_of(DW'(nx_n_q));
          nx_settle_q <= 2'd1;
        end else if (nx_settle_q == 2'd1) begin
          nx_steps_q    <= div_ceil(nx_kg_q, TABLES);
          nx_cb_beats_q <= div_ceil(nx_kg_q, TABLES);  // nx_cb_q = 1
          nx_settle_q   <= 2'd0;
        end else if (nx_cb_beats_q + nx_steps_q <= 32'(QUARTER) && nx_cb_q < nx_blocks_q) begin
          nx_cb_q       <= nx_cb_q + 1;
          nx_cb_beats_q <= nx_cb_beats_q + nx_steps_q;
        end else begin
          nx_sizing_q <= 1'b0;
        end
      end

      // ---- write-back: each run chunk's part of every row (or, see CHUNK_WB, whole rows at the end).
      if (wq_push) begin
        wq_b0_q[wq_head_q ^ wq_cnt_q[0]] <= CHUNK_WB ? b0_q : '0;
        wq_nb_q[wq_head_q ^ wq_cnt_q[0]] <= CHUNK_WB ? nb_q : blocks_q;
      end
      wq_cnt_q <= wq_cnt_q + 2'(wq_push) - 2'(wq_pop);
      if (wq_pop) wq_head_q <= !wq_head_q;
      unique case (wb_state_q)
        WB_IDLE: if (wq_pop) begin
          wb_b0_q    <= wq_b0_q[wq_head_q];
          wb_nb_q    <= wq_nb_q[wq_head_q];
          wb_tok_q   <= '0;
          wb_addr_q  <= dst_q + 64'(wq_b0_q[wq_head_q] * 32'(LANE_B));  // token 0's part
          wb_wait_q  <= 2'd2;
          wb_state_q <= WB_CMD;
        end
        WB_CMD: if (wb_wait_q != '0) wb_wait_q <= wb_wait_q - 1;
        else if (wr_cmd_ready_i) begin
          ob_read_q  <= '0;
          wb_state_q <= WB_DATA;
        end
        WB_DATA: begin
          if (y_wb_re) ob_read_q <= ob_read_q + 1;
          if (!or_busy && !or_start) wb_state_q <= WB_WAIT;
        end
        WB_WAIT: if (wr_done_i) begin
          if (wb_tok_q + 1 == 32'(tokens_q)) begin
            wb_state_q <= WB_IDLE;
          end else begin
            wb_tok_q   <= wb_tok_q + 1;
            wb_addr_q  <= wb_addr_q + y_pitch_q;
            wb_state_q <= WB_CMD;
          end
        end
        default: wb_state_q <= WB_IDLE;
      endcase

      // ---- c[t] = s[t] * w_scale on the scalar unit, beside the row reads.
      if (cm_busy_q) begin
        if (fp_req_valid && fp_req_ready) fp_sent_q <= 1'b1;
        if (fp_rsp_valid) begin
          c_q[TW'(cm_tok_q)] <= fp_res;
          fp_sent_q <= 1'b0;
          cm_tok_q  <= cm_tok_q + 1;
          if (cm_tok_q + 1 == 32'(tokens_q)) cm_busy_q <= 1'b0;
        end
      end

      // Another engine may write the rows; a new program may have new ones.
      if (inval_i || flush_i) xv_valid_q <= 1'b0;
      // SETUP's hint (no job runs): size the matrix's chunks, then l_next starts its load.
      if (pf_go_i && state_q == IDLE && !start_i && pf_weights_i != '0) begin
        nx_w_q      <= pf_weights_i;
        nx_k_q      <= pf_k_i;
        nx_n_q      <= pf_n_i;
        nx_cb_q     <= 32'd1;
        nx_sizing_q <= 1'b1;
        nx_settle_q <= 2'd2;
        pf_solo_q   <= 1'b1;
      end

      // ---- the job.
      unique case (state_q)
        IDLE: if (start_i) begin
          tokens_q  <= tokens_i;
          k_q       <= k_i;
          n_q       <= n_i;
          w_scale_q <= w_scale_i;
          codes_q   <= codes_i;
          scales_q  <= scales_i;
          weights_q <= weights_i;
          dst_q     <= dst_i;
          acc_q     <= accumulate_i;
          nx_w_q    <= pf_weights_i;
          nx_k_q    <= pf_k_i;
          nx_n_q    <= pf_n_i;
          nx_cb_q   <= 32'd1;
          nx_sizing_q <= pf_weights_i != '0;
          nx_settle_q <= 2'd2;
          pf_solo_q <= 1'b0;  // a job's own context and hint replace SETUP's
          sidx_q    <= '0;
          r_running_q <= 1'b0;
          reuse_q   <= reuse_hit;
          tag_hit_q <= tag_hit;
          state_q   <= J_SIZE;
        end
        J_SIZE: begin
          kg_q     <= DW'(div_ceil(DW'(k_q), G));
          blocks_q <= blocks_of(DW'(n_q));
          state_q  <= J_STEPS;
        end
        J_STEPS: begin
          steps_q <= div_ceil(kg_q, TABLES);
          state_q <= J_CHECK;
        end
        J_CHECK: begin
          err_o <= bad;
          // This job's results would overwrite the held rows: later jobs must read them again
          // (this one has them in xmem already if it reuses them).
          dst_end_q <= dst_end;
          if (dst_hits_rows) xv_valid_q <= 1'b0;
          if (bad) begin
            reuse_q <= 1'b0;
            done_o  <= 1'b1;
            state_q <= IDLE;
          end else if (tag_hit_q) begin
            // Prefetched: its first chunks are loaded or loading.
            ld_claimed_q <= 1'b1;
            state_q      <= S_CMD;
          end else begin
            state_q <= WAIT_LD;
          end
        end
        WAIT_LD: if (!l_busy) begin
          // Drop whatever the buffer holds; load this job's matrix from its first chunk.
          wp_q            <= '0;
          free_q          <= 32'(WBUF_DEPTH);
          cq_head_q       <= '0;
          cq_tail_q       <= '0;
          cq_cnt_q        <= '0;
          flush_q         <= 1'b0;
          ld_valid_q      <= 1'b1;
          ld_claimed_q    <= 1'b1;
          ld_w_q          <= weights_q;
          ld_k_q          <= k_q;
          ld_n_q          <= n_q;
          ld_steps_q      <= steps_q;
          ld_blocks_q     <= blocks_q;
          ld_split_q     <= 4 * steps_q <= 32'(WBUF_DEPTH);
          ld_cb_q         <= 32'd1;
          ld_cb_beats_q   <= steps_q;
          l_b0_q          <= '0;
          l_beat0_q       <= '0;
          l_state_q       <= L_SIZE;
          state_q         <= S_CMD;
        end
        S_CMD: if (reuse_q) begin
          // The rows and s[t] are the previous job's: only c[t] (a new w_scale) is worked out.
          state_q    <= acc_q ? Y_CMD : C_WAIT;
          tok_q      <= '0;
          row_q      <= dst_q;
          row_next_q <= dst_q + y_pitch_q;
          cm_busy_q  <= 1'b1;
          cm_tok_q   <= '0;
          fp_sent_q  <= 1'b0;
        end else if (rd_cmd_ready_i) begin
          state_q <= S_DATA;
        end
        S_DATA: if (rd_valid_i) begin
          for (int l = 0; l < BYTES / 4; l++) begin
            if (sidx_q + 32'(l) < MAX_TOKENS) s_q[TW'(sidx_q + 32'(l))] <= rd_data_i[32*l +: 32];
          end
          sidx_q <= sidx_q + BYTES / 4;
          if (sidx_q + BYTES / 4 >= 32'(tokens_q)) begin
            state_q    <= X_CMD;
            tok_q      <= '0;
            row_q      <= codes_q;
            row_next_q <= codes_q + x_pitch_q;
            cm_busy_q  <= 1'b1;
            cm_tok_q   <= '0;
            fp_sent_q  <= 1'b0;
          end
        end
        X_CMD: if (rd_cmd_ready_i) begin
          state_q     <= X_DATA;
          next_sent_q <= 1'b0;
          x_wa_q      <= XA_W'(tok_q * 32'(MAX_STEPS));
        end
        X_DATA: begin
          if (xr_out_valid) x_wa_q <= x_wa_q + 1;
          if (rd_cmd_valid_o && rd_cmd_ready_i) next_sent_q <= 1'b1;
          if (!xr_busy && !xr_start) begin
            if (tok_q + 1 == 32'(tokens_q)) begin
              tok_q      <= '0;
              row_q      <= dst_q;
              row_next_q <= dst_q + y_pitch_q;
              state_q    <= acc_q ? Y_CMD : C_WAIT;
              // Held for the next jobs, unless this one's results land on them (row_next_q is
              // the row after the last: the codes rows' end).
              xv_valid_q  <= !overlap(dst_q, dst_end_q, codes_q, row_next_q) &&
                             !overlap(dst_q, dst_end_q, scales_q, scales_q + 64'({tokens_q, 2'b00}));
              xv_codes_q  <= codes_q;
              xv_codes_end_q  <= row_next_q;
              xv_scales_q <= scales_q;
              xv_scales_end_q <= scales_q + 64'({tokens_q, 2'b00});
              xv_k_q      <= k_q;
              xv_tokens_q <= tokens_q;
            end else begin
              tok_q      <= tok_q + 1;
              row_q      <= row_next_q;
              row_next_q <= row_next_q + x_pitch_q;
              // The next row's command is out (or goes out now): start its re-cut at once.
              state_q <= next_sent_q || (rd_cmd_valid_o && rd_cmd_ready_i) ? X_GO : X_CMD;
            end
          end
        end
        X_GO: begin
          state_q     <= X_DATA;
          next_sent_q <= 1'b0;
          x_wa_q      <= XA_W'(tok_q * 32'(MAX_STEPS));
        end
        Y_CMD: if (rd_cmd_ready_i) begin
          state_q     <= Y_DATA;
          next_sent_q <= 1'b0;
          y_wa_q      <= YA_W'(tok_q * 32'(MAX_BLOCKS));
        end
        Y_DATA: begin
          if (yr_out_valid) y_wa_q <= y_wa_q + 1;
          if (rd_cmd_valid_o && rd_cmd_ready_i) next_sent_q <= 1'b1;
          if (!yr_busy && !yr_start) begin
            if (tok_q + 1 == 32'(tokens_q)) begin
              tok_q   <= '0;
              state_q <= C_WAIT;
            end else begin
              tok_q      <= tok_q + 1;
              row_q      <= row_next_q;
              row_next_q <= row_next_q + y_pitch_q;
              state_q    <= next_sent_q || (rd_cmd_valid_o && rd_cmd_ready_i) ? Y_GO : Y_CMD;
            end
          end
        end
        Y_GO: begin
          state_q     <= Y_DATA;
          next_sent_q <= 1'b0;
          y_wa_q      <= YA_W'(tok_q * 32'(MAX_BLOCKS));
        end
        C_WAIT: if (!cm_busy_q) state_q <= MATMUL;
        MATMUL: begin
          // ---- runner: the TLMM unit over the next loaded chunk.
          ustart_q <= 1'b0;
          if (run_begin) begin
            r_running_q <= 1'b1;
            b0_q        <= cq_b0_q[cq_head_q];
            nb_q        <= cq_nb_q[cq_head_q];
            r_beats_q   <= cq_beats_q[cq_head_q];
            r_base_q    <= cq_base_q[cq_head_q];
            cq_head_q   <= cq_head_q + 1;
            fs_q        <= '0;
            ft_q        <= '0;
            feeding_q   <= 1'b1;
            ob_q        <= '0;
            ot_q        <= '0;
            ustart_q    <= 1'b1;
          end
          if (u_act_valid && u_act_ready) begin
            if (fs_q + 1 == steps_q) begin
              fs_q <= '0;
              if (ft_q + 1 == 32'(tokens_q)) feeding_q <= 1'b0;
              else ft_q <= ft_q + 1;
            end else begin
              fs_q <= fs_q + 1;
            end
          end
          if (u_out_valid) begin
            if (ob_q + 1 == nb_q) begin
              ob_q <= '0;
              ot_q <= ot_q + 1;
            end else begin
              ob_q <= ob_q + 1;
            end
          end
          if (u_done) begin
            r_running_q <= 1'b0;
            if (b0_q + nb_q >= blocks_q) runs_done_q <= 1'b1;
          end
          // Done when every chunk has run and every part is written.
          if (runs_done_q && wq_cnt_q == '0 && wb_state_q == WB_IDLE && !wq_push) begin
            runs_done_q <= 1'b0;
            state_q     <= IDLE;
            done_o      <= 1'b1;
          end
        end
        default: state_q <= IDLE;
      endcase
    end
  end

  assign busy_o  = u_busy;
  assign stall_o = state_q != IDLE && !u_busy;

  logic unused;
  assign unused = ^{u_busy, u_err, u_busy_cycles, u_issue_cycles};

endmodule

`resetall
