// SPDX-License-Identifier: Apache-2.0
//
// tlmm_core: ternary table-lookup matrix multiplication, Y[t][r] = sum_k W[r][k] * X[t][k], for
// up to MAX_TOKENS tokens that share every weight fetch (decode: 1 token; prefill: several).
//
// The table trick is explained in tlmm_table_build.sv (building) and tlmm_lookup.sv (using).
// This module is the schedule around it:
//
//   for step s in 0..steps-1            (TABLES groups = TABLES*G activations of K per step)
//     tables[s % 2][t] <- build(X[t][chunk s])   for each token t   (act stream, one beat each)
//     for block b in 0..blocks-1        (COLS output rows per block)
//       beat <- weight stream           (one beat per (s, b): COLS x TABLES codes)
//       for token t in 0..tokens-1      (the weight beat is reused: one fetch, `tokens` cycles)
//         acc[t][b] += lookup_and_sum(tables[s % 2][t], beat)   -> COLS x TABLES lookups/cycle
//   results: after the last step, acc[t][b] streams out, block-major, token-minor
//
// Tables are double-buffered: the tables of step s+1 are built while step s sweeps, so the
// lookup lanes never wait at a step boundary. Accumulators live in a simple dual-port memory
// (read when a (token, block) is issued, written PIPE+2 cycles later); when a step's sweep is
// shorter than that distance (tiny shapes only) the next step waits for the pipeline to drain.
//
// Streams are valid/ready; a result that is not accepted stalls the whole pipeline. Accumulation
// is exact as long as ACC_W holds sum |w x| (the generator checks this from the config).

`default_nettype none

module tlmm_core #(
  parameter int G          = 3,    // activations per group (2..4)
  parameter int TABLES     = 4,    // groups (tables) per step
  parameter int COLS       = 4,    // output rows per cycle
  parameter int ENTRY_W    = 10,   // table entry bits (signed); >= bits of 128*G
  parameter int ACC_W      = 24,   // accumulator bits (signed)
  parameter int MAX_TOKENS = 1,    // tokens sharing one weight fetch
  parameter int MAX_BLOCKS = 16,   // largest N / COLS
  parameter int MAX_STEPS  = 16,   // largest ceil(K / (G*TABLES))
  parameter int PIPE       = 0,    // extra register stages after the lookup sums
  // Derived; do not override.
  parameter int ENTRIES    = (3 ** G - 1) / 2,
  parameter int MAG_W      = $clog2(ENTRIES + 1),
  parameter int CODE_W     = MAG_W + 1,
  parameter int ACT_W      = TABLES * G * 8,        // activation beat bits
  parameter int WGT_W      = COLS * TABLES * CODE_W, // weight beat bits
  parameter int TOK_W      = $clog2(MAX_TOKENS + 1),
  parameter int BLK_W      = $clog2(MAX_BLOCKS + 1),
  parameter int STEP_W     = $clog2(MAX_STEPS + 1)
) (
  input  wire logic                    clk_i,
  input  wire logic                    rst_ni,
  // Job: sampled on start_i while idle.
  input  wire logic                    start_i,
  input  wire logic [TOK_W-1:0]        tokens_i,   // 1..MAX_TOKENS
  input  wire logic [BLK_W-1:0]        blocks_i,   // 1..MAX_BLOCKS
  input  wire logic [STEP_W-1:0]       steps_i,    // 1..MAX_STEPS
  output      logic                    busy_o,
  output      logic                    done_o,     // one-cycle pulse after the last result
  output      logic                    cfg_err_o,  // last start had out-of-range sizes (ignored)
  // Activations: one beat per (step, token), step-major.
  input  wire logic                    act_valid_i,
  output      logic                    act_ready_o,
  input  wire logic [ACT_W-1:0]        act_data_i,
  // Weights: one beat per (step, block), step-major.
  input  wire logic                    wgt_valid_i,
  output      logic                    wgt_ready_o,
  input  wire logic [WGT_W-1:0]        wgt_data_i,
  // Results: one beat per (block, token), block-major; row c at bits c*ACC_W.
  output      logic                    out_valid_o,
  input  wire logic                    out_ready_i,
  output      logic [COLS*ACC_W-1:0]   out_data_o,
  // Performance counters, cleared by start: cycles busy, cycles issuing lookups.
  output      logic [31:0]             busy_cycles_o,
  output      logic [31:0]             issue_cycles_o
);

  localparam int TBL_W     = TABLES * ENTRIES * ENTRY_W;  // one token's tables
  localparam int SUM_W     = ENTRY_W + $clog2(TABLES) + 1;
  localparam int ACC_DEPTH = MAX_TOKENS * MAX_BLOCKS;
  localparam int ADDR_W    = ACC_DEPTH > 1 ? $clog2(ACC_DEPTH) : 1;
  localparam int MIN_SWEEP = PIPE + 3;  // issue distance for an accumulator RMW

  // ---------------------------------------------------------------- parameter checks
  // Elaboration-time: a bad parameter stops Verilator and yosys with the message. Icarus has
  // no elaboration-time $error, so there the check instantiates a module that does not exist,
  // whose name says what is wrong.
  if (G < 2 || G > 4) begin : g_bad_g
`ifdef __ICARUS__
    tlmm_core_parameter_G_must_be_2_to_4 u_fail ();
`else
    $error("tlmm_core: G = %0d, must be 2..4", G);
`endif
  end
  if (TABLES < 1 || COLS < 1 || MAX_TOKENS < 1 || MAX_BLOCKS < 1 || MAX_STEPS < 1) begin : g_bad_size
`ifdef __ICARUS__
    tlmm_core_parameter_sizes_must_be_positive u_fail ();
`else
    $error("tlmm_core: TABLES = %0d, COLS = %0d, MAX_TOKENS/BLOCKS/STEPS = %0d/%0d/%0d must all be >= 1",
           TABLES, COLS, MAX_TOKENS, MAX_BLOCKS, MAX_STEPS);
`endif
  end
  if (ENTRY_W < $clog2(128 * G + 1) + 1) begin : g_bad_entry_w
`ifdef __ICARUS__
    tlmm_core_parameter_ENTRY_W_too_small u_fail ();
`else
    $error("tlmm_core: ENTRY_W = %0d cannot hold +-128*G = %0d", ENTRY_W, 128 * G);
`endif
  end
  if (ACC_W < SUM_W) begin : g_bad_acc_w
`ifdef __ICARUS__
    tlmm_core_parameter_ACC_W_too_small u_fail ();
`else
    $error("tlmm_core: ACC_W = %0d is narrower than one step's sum (%0d bits)", ACC_W, SUM_W);
`endif
  end

  // ---------------------------------------------------------------- job registers
  logic              run_q;
  logic              cfg_err_q;
  logic [TOK_W-1:0]  tokens_q;
  logic [BLK_W-1:0]  blocks_q;
  logic [STEP_W-1:0] steps_q;
  logic              small_q;  // sweep shorter than MIN_SWEEP: drain between steps

  // Fill side: steps whose tables are complete, and the token being filled.
  logic [STEP_W:0]   fill_steps_q;
  logic [TOK_W-1:0]  fill_tok_q;
  // Sweep side.
  logic [STEP_W:0]   sweep_step_q;
  logic [BLK_W-1:0]  blk_q;
  logic [TOK_W-1:0]  tok_q;
  logic              sweep_done_q;

  logic en;            // pipeline advances (no result waiting to be accepted)
  logic issue;         // a (step, block, token) enters the pipeline this cycle
  logic pipe_empty;

  // Sizes are checked in full even where the port width makes a bound unreachable.
  /* verilator lint_off CMPCONST */
  wire logic bad_cfg = tokens_i == '0 || 32'(tokens_i) > MAX_TOKENS || blocks_i == '0 ||
                       32'(blocks_i) > MAX_BLOCKS || steps_i == '0 || 32'(steps_i) > MAX_STEPS;
  /* verilator lint_on CMPCONST */
  wire logic start = start_i && !run_q;

  // ---------------------------------------------------------------- tables (double-buffered)
  logic [TBL_W-1:0] built;
  logic [TBL_W-1:0] tbl_q [2*MAX_TOKENS];

  tlmm_table_build #(.G(G), .TABLES(TABLES), .ENTRY_W(ENTRY_W)) u_build (
    .act_i     (act_data_i),
    .entries_o (built)
  );

  assign act_ready_o = run_q && fill_steps_q < {1'b0, steps_q} && fill_steps_q < sweep_step_q + 2;
  wire logic act_fire = act_valid_i && act_ready_o;

  always_ff @(posedge clk_i) begin
    if (act_fire) tbl_q[32'(fill_steps_q[0]) * MAX_TOKENS + 32'(fill_tok_q)] <= built;
  end

  // ---------------------------------------------------------------- issue
  wire logic tables_ready = fill_steps_q > sweep_step_q;
  wire logic need_wgt     = tok_q == '0;
  wire logic drain_wait   = small_q && tok_q == '0 && blk_q == '0 && sweep_step_q != '0 && !pipe_empty;

  assign issue       = run_q && !sweep_done_q && en && tables_ready && (!need_wgt || wgt_valid_i) && !drain_wait;
  assign wgt_ready_o = issue && need_wgt;

  wire logic last_tok  = 32'(tok_q) == 32'(tokens_q) - 1;
  wire logic last_blk  = 32'(blk_q) == 32'(blocks_q) - 1;
  wire logic last_step = 32'(sweep_step_q) == 32'(steps_q) - 1;
  wire logic [ADDR_W-1:0] issue_addr = ADDR_W'(32'(tok_q) * MAX_BLOCKS + 32'(blk_q));

  // ---------------------------------------------------------------- stage 1: lookups
  logic              s1_valid_q, s1_first_q, s1_last_q;
  logic [ADDR_W-1:0] s1_addr_q;
  logic [WGT_W-1:0]  s1_wgt_q;
  logic [TBL_W-1:0]  s1_tbl_q;
  logic [COLS*ACC_W-1:0] acc_rd_q;  // accumulator memory read, aligned with stage 1
  logic [COLS*SUM_W-1:0] s1_sums;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      s1_valid_q <= 1'b0;
    end else if (en) begin
      s1_valid_q <= issue;
    end
  end

  always_ff @(posedge clk_i) begin
    if (en && issue) begin
      if (need_wgt) s1_wgt_q <= wgt_data_i;
      s1_tbl_q   <= tbl_q[32'(sweep_step_q[0]) * MAX_TOKENS + 32'(tok_q)];
      s1_first_q <= sweep_step_q == '0;
      s1_last_q  <= last_step;
      s1_addr_q  <= issue_addr;
    end
  end

  tlmm_lookup #(.G(G), .TABLES(TABLES), .COLS(COLS), .ENTRY_W(ENTRY_W), .SUM_W(SUM_W)) u_lookup (
    .entries_i (s1_tbl_q),
    .codes_i   (s1_wgt_q),
    .sums_o    (s1_sums)
  );

  // ---------------------------------------------------------------- PIPE delay stages
  // Plain registers after the lookup sums; synthesis retimes them into the adder trees.
  localparam int CTL_W = 3 + ADDR_W;  // valid, first, last, addr
  localparam int DLY_W = CTL_W + COLS * SUM_W + COLS * ACC_W;
  logic [DLY_W-1:0] dly [PIPE+1];
  assign dly[0] = {s1_valid_q, s1_first_q, s1_last_q, s1_addr_q, s1_sums, acc_rd_q};
  for (genvar p = 1; p <= PIPE; p++) begin : g_pipe
    logic [DLY_W-1:0] q;
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) q <= '0;
      else if (en) q <= dly[p-1];
    end
    assign dly[p] = q;
  end

  // ---------------------------------------------------------------- stage 2: accumulate
  logic                  s2_valid_q, s2_last_q;
  logic [ADDR_W-1:0]     s2_addr_q;
  logic [COLS*ACC_W-1:0] s2_sum_q;   // this step's contribution, sign-extended
  logic [COLS*ACC_W-1:0] s2_old_q;   // previous partial sums (0 on the first step)
  logic [COLS*ACC_W-1:0] s2_new;

  wire logic                  d_valid = dly[PIPE][DLY_W-1];
  wire logic                  d_first = dly[PIPE][DLY_W-2];
  wire logic                  d_last  = dly[PIPE][DLY_W-3];
  wire logic [ADDR_W-1:0]     d_addr  = dly[PIPE][COLS*SUM_W + COLS*ACC_W +: ADDR_W];
  wire logic [COLS*SUM_W-1:0] d_sums  = dly[PIPE][COLS*ACC_W +: COLS*SUM_W];
  wire logic [COLS*ACC_W-1:0] d_acc   = dly[PIPE][0 +: COLS*ACC_W];

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      s2_valid_q <= 1'b0;
    end else if (en) begin
      s2_valid_q <= d_valid;
    end
  end

  always_ff @(posedge clk_i) begin
    if (en && d_valid) begin
      s2_last_q <= d_last;
      s2_addr_q <= d_addr;
      s2_old_q  <= d_first ? '0 : d_acc;
      for (int c = 0; c < COLS; c++) begin
        s2_sum_q[c*ACC_W +: ACC_W] <= ACC_W'($signed(d_sums[c*SUM_W +: SUM_W]));
      end
    end
  end

  always_comb begin
    for (int c = 0; c < COLS; c++) begin
      s2_new[c*ACC_W +: ACC_W] = s2_old_q[c*ACC_W +: ACC_W] + s2_sum_q[c*ACC_W +: ACC_W];
    end
  end

  // Accumulator memory: simple dual port, registered read (block RAM).
  (* ram_style = "block" *) logic [COLS*ACC_W-1:0] acc_mem [ACC_DEPTH];
  always_ff @(posedge clk_i) begin
    if (en && s2_valid_q) acc_mem[s2_addr_q] <= s2_new;
    if (en) acc_rd_q <= acc_mem[issue_addr];
  end

  // ---------------------------------------------------------------- results
  logic                  out_valid_q;
  logic [COLS*ACC_W-1:0] out_data_q;

  assign en = !(out_valid_q && !out_ready_i);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      out_valid_q <= 1'b0;
    end else if (en) begin
      out_valid_q <= s2_valid_q && s2_last_q;
    end
  end

  always_ff @(posedge clk_i) begin
    if (en && s2_valid_q && s2_last_q) out_data_q <= s2_new;
  end

  assign out_valid_o = out_valid_q;
  assign out_data_o  = out_data_q;

  // ---------------------------------------------------------------- pipeline occupancy
  always_comb begin
    pipe_empty = !s1_valid_q && !s2_valid_q;
    for (int p = 1; p <= PIPE; p++) begin
      if (dly[p][DLY_W-1]) pipe_empty = 1'b0;
    end
  end

  // ---------------------------------------------------------------- control
  wire logic finished = run_q && sweep_done_q && pipe_empty && !out_valid_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      run_q         <= 1'b0;
      cfg_err_q     <= 1'b0;
      tokens_q      <= '0;
      blocks_q      <= '0;
      steps_q       <= '0;
      small_q       <= 1'b0;
      fill_steps_q  <= '0;
      fill_tok_q    <= '0;
      sweep_step_q  <= '0;
      blk_q         <= '0;
      tok_q         <= '0;
      sweep_done_q  <= 1'b0;
      done_o        <= 1'b0;
      busy_cycles_o  <= '0;
      issue_cycles_o <= '0;
    end else begin
      done_o <= 1'b0;
      if (start) begin
        cfg_err_q <= bad_cfg;
        if (!bad_cfg) begin
          run_q          <= 1'b1;
          tokens_q       <= tokens_i;
          blocks_q       <= blocks_i;
          steps_q        <= steps_i;
          small_q        <= 32'(tokens_i) * 32'(blocks_i) < MIN_SWEEP;
          fill_steps_q   <= '0;
          fill_tok_q     <= '0;
          sweep_step_q   <= '0;
          blk_q          <= '0;
          tok_q          <= '0;
          sweep_done_q   <= 1'b0;
          busy_cycles_o  <= '0;
          issue_cycles_o <= '0;
        end
      end else if (run_q) begin
        busy_cycles_o <= busy_cycles_o + 1;
        if (act_fire) begin
          if (32'(fill_tok_q) == 32'(tokens_q) - 1) begin
            fill_tok_q   <= '0;
            fill_steps_q <= fill_steps_q + 1;
          end else begin
            fill_tok_q <= fill_tok_q + 1;
          end
        end
        if (issue) begin
          issue_cycles_o <= issue_cycles_o + 1;
          if (!last_tok) begin
            tok_q <= tok_q + 1;
          end else begin
            tok_q <= '0;
            if (!last_blk) begin
              blk_q <= blk_q + 1;
            end else begin
              blk_q <= '0;
              if (last_step) sweep_done_q <= 1'b1;
              else sweep_step_q <= sweep_step_q + 1;
            end
          end
        end
        if (finished) begin
          run_q  <= 1'b0;
          done_o <= 1'b1;
        end
      end
    end
  end

  assign busy_o    = run_q;
  assign cfg_err_o = cfg_err_q;

endmodule

`resetall
