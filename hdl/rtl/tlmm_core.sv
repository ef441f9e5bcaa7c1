// SPDX-License-Identifier: Apache-2.0
//
// tlmm_core: ternary table-lookup matrix multiplication, Y[t][r] = sum_k W[r][k] * X[t][k], for
// up to MAX_TOKENS tokens that share the weights the unit holds (decode: 1 token; prefill:
// several, so each weight fetched from memory serves every token).
//
// The table trick is explained in tlmm_lookup.sv. This module is the schedule around it:
//
//   for token t in 0..tokens-1
//     for step s in 0..steps-1          (TABLES groups = TABLES*G activations of K per step)
//       tables[pass % 2] <- build(X[t][chunk s])   (act stream, one beat per pass (t, s):
//                                                   FILL cycles of table writes)
//       for block b in 0..blocks-1      (COLS output rows per block)
//         beat <- weight stream         (one beat per (t, s, b): COLS x TABLES codes)
//         acc[b] += sum_tree(lookups(tables[pass % 2], beat))  -> COLS x TABLES lookups/cycle
//     results: after token t's last step, acc[b] streams out in block order
//
// Tokens are the outer loop so that one token's tables are live at a time: the tables are small
// LUT-RAMs (two buffers deep), not a register file per token. The weight stream repeats the
// matrix once per token (tlmm_unit re-reads its on-chip buffer; memory traffic is unchanged).
// Tables are double-buffered: pass p+1's tables fill while pass p sweeps, so the lookups wait at a
// pass boundary only when a sweep (blocks cycles) is shorter than FILL. Accumulators live in a
// simple dual-port memory (one word per block: read when a block is issued, written PIPE+2
// cycles later); when a sweep is shorter than that distance (tiny shapes only) the next pass
// waits for the pipeline to drain.
//
// The sums of each row's TABLES lookups come from a balanced adder tree (tlmm_sum_tree) with PIPE
// register stages spread over its levels.
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
  parameter int MAX_TOKENS = 1,    // tokens sharing the weights
  parameter int MAX_BLOCKS = 16,   // largest N / COLS
  parameter int MAX_STEPS  = 16,   // largest ceil(K / (G*TABLES))
  parameter int PIPE       = 0,    // register stages in the lookup sums' adder trees
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
  // Activations: one beat per (token, step), token-major.
  input  wire logic                    act_valid_i,
  output      logic                    act_ready_o,
  input  wire logic [ACT_W-1:0]        act_data_i,
  // Weights: one beat per (token, step, block), in that order (the matrix once per token).
  input  wire logic                    wgt_valid_i,
  output      logic                    wgt_ready_o,
  input  wire logic [WGT_W-1:0]        wgt_data_i,
  // Results: one beat per (token, block), token-major; row c at bits c*ACC_W.
  output      logic                    out_valid_o,
  input  wire logic                    out_ready_i,
  output      logic [COLS*ACC_W-1:0]   out_data_o,
  // Performance counters, cleared by start: cycles busy, cycles issuing lookups.
  output      logic [31:0]             busy_cycles_o,
  output      logic [31:0]             issue_cycles_o
);

  localparam int LEAVES    = TABLES + 1;                       // lookups + the sign count
  localparam int SUM_W     = ENTRY_W + $clog2(LEAVES);         // one row's sum (tlmm_sum_tree)
  localparam int ADDR_W    = MAX_BLOCKS > 1 ? $clog2(MAX_BLOCKS) : 1;
  localparam int PASS_W    = $clog2(MAX_TOKENS * MAX_STEPS + 1);
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
  // An entry holds +-128*G, and the sign count (up to TABLES) travels as a leaf of ENTRY_W bits.
  if (ENTRY_W < $clog2(128 * G + 1) + 1 || ENTRY_W < $clog2(TABLES + 1) + 1) begin : g_bad_entry_w
`ifdef __ICARUS__
    tlmm_core_parameter_ENTRY_W_too_small u_fail ();
`else
    $error("tlmm_core: ENTRY_W = %0d cannot hold +-128*G = %0d or a count to TABLES = %0d", ENTRY_W, 128 * G, TABLES);
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
  logic [BLK_W-1:0]  blocks_q;
  logic [STEP_W-1:0] steps_q;
  logic [PASS_W-1:0] passes_q;  // tokens x steps: one table fill and one sweep each
  logic              small_q;   // sweep shorter than MIN_SWEEP: drain between passes

  // Fill side: passes whose fill has started, and whose tables are complete.
  logic [PASS_W-1:0] fill_pass_q;
  logic [PASS_W-1:0] filled_q;
  // Sweep side: the pass being swept (its step within the token), the block.
  logic [PASS_W-1:0] sweep_pass_q;
  logic [STEP_W-1:0] step_q;
  logic [BLK_W-1:0]  blk_q;
  logic              sweep_done_q;

  logic en;            // pipeline advances (no result waiting to be accepted)
  logic issue;         // a (pass, block) enters the pipeline this cycle
  logic pipe_empty;

  // Sizes are checked in full even where the port width makes a bound unreachable.
  /* verilator lint_off CMPCONST */
  wire logic bad_cfg = tokens_i == '0 || 32'(tokens_i) > MAX_TOKENS || blocks_i == '0 ||
                       32'(blocks_i) > MAX_BLOCKS || steps_i == '0 || 32'(steps_i) > MAX_STEPS;
  /* verilator lint_on CMPCONST */
  wire logic start = start_i && !run_q;

  // ---------------------------------------------------------------- tables (double-buffered)
  logic fill_busy, fill_done;
  logic s1_buf_q;
  logic [WGT_W-1:0] s1_wgt_q;
  logic [COLS*LEAVES*ENTRY_W-1:0] leaves;

  // A pass's fill waits for the buffer it writes: pass p-2 must have issued its last lookup.
  assign act_ready_o = run_q && !fill_busy && fill_pass_q < passes_q &&
                       32'(fill_pass_q) < 32'(sweep_pass_q) + 2;
  wire logic act_fire = act_valid_i && act_ready_o;

  tlmm_lookup #(.G(G), .TABLES(TABLES), .COLS(COLS), .ENTRY_W(ENTRY_W)) u_lookup (
    .clk_i, .rst_ni,
    .fill_i      (act_fire),
    .fill_buf_i  (fill_pass_q[0]),
    .act_i       (act_data_i),
    .fill_busy_o (fill_busy),
    .fill_done_o (fill_done),
    .rd_buf_i    (s1_buf_q),
    .codes_i     (s1_wgt_q),
    .leaves_o    (leaves)
  );

  // ---------------------------------------------------------------- issue
  // A pass may issue in its fill's last cycle: its lookups read the tables a cycle later.
  wire logic tables_ready = filled_q > sweep_pass_q || (fill_done && filled_q == sweep_pass_q);
  wire logic drain_wait   = small_q && blk_q == '0 && sweep_pass_q != '0 && !pipe_empty;

  assign issue       = run_q && !sweep_done_q && en && tables_ready && wgt_valid_i && !drain_wait;
  assign wgt_ready_o = issue;

  wire logic last_blk  = 32'(blk_q) == 32'(blocks_q) - 1;
  wire logic last_step = 32'(step_q) == 32'(steps_q) - 1;
  wire logic last_pass = 32'(sweep_pass_q) == 32'(passes_q) - 1;
  wire logic [ADDR_W-1:0] issue_addr = ADDR_W'(blk_q);

  // ---------------------------------------------------------------- stage 1: lookups
  logic              s1_valid_q, s1_first_q, s1_last_q;
  logic [ADDR_W-1:0] s1_addr_q;
  logic [COLS*ACC_W-1:0] acc_rd_q;  // accumulator memory read, aligned with stage 1

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      s1_valid_q <= 1'b0;
    end else if (en) begin
      s1_valid_q <= issue;
    end
  end

  always_ff @(posedge clk_i) begin
    if (en && issue) begin
      s1_wgt_q   <= wgt_data_i;
      s1_buf_q   <= sweep_pass_q[0];
      s1_first_q <= step_q == '0;
      s1_last_q  <= last_step;
      s1_addr_q  <= issue_addr;
    end
  end

  // Each row's lookups summed, PIPE cycles later.
  logic [COLS*SUM_W-1:0] d_sums;
  for (genvar c = 0; c < COLS; c++) begin : g_tree
    tlmm_sum_tree #(.N(LEAVES), .IN_W(ENTRY_W), .STAGES(PIPE)) u_tree (
      .clk_i, .en_i (en),
      .vals_i (leaves[c*LEAVES*ENTRY_W +: LEAVES*ENTRY_W]),
      .sum_o  (d_sums[c*SUM_W +: SUM_W])
    );
  end

  // ---------------------------------------------------------------- PIPE delay stages
  // The job's control and the accumulator read travel beside the adder trees' registers.
  localparam int CTL_W = 3 + ADDR_W;  // valid, first, last, addr
  localparam int DLY_W = CTL_W + COLS * ACC_W;
  logic [DLY_W-1:0] dly [PIPE+1];
  assign dly[0] = {s1_valid_q, s1_first_q, s1_last_q, s1_addr_q, acc_rd_q};
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
  logic [COLS*ACC_W-1:0] s2_sum_q;   // this pass's contribution, sign-extended
  logic [COLS*ACC_W-1:0] s2_old_q;   // previous partial sums (0 on a token's first step)
  logic [COLS*ACC_W-1:0] s2_new;

  wire logic                  d_valid = dly[PIPE][DLY_W-1];
  wire logic                  d_first = dly[PIPE][DLY_W-2];
  wire logic                  d_last  = dly[PIPE][DLY_W-3];
  wire logic [ADDR_W-1:0]     d_addr  = dly[PIPE][COLS*ACC_W +: ADDR_W];
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

  // Accumulator memory: simple dual port, registered read (block RAM). One token at a time.
  (* ram_style = "block" *) logic [COLS*ACC_W-1:0] acc_mem [MAX_BLOCKS];
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
      run_q          <= 1'b0;
      cfg_err_q      <= 1'b0;
      blocks_q       <= '0;
      steps_q        <= '0;
      passes_q       <= '0;
      small_q        <= 1'b0;
      fill_pass_q    <= '0;
      filled_q       <= '0;
      sweep_pass_q   <= '0;
      step_q         <= '0;
      blk_q          <= '0;
      sweep_done_q   <= 1'b0;
      done_o         <= 1'b0;
      busy_cycles_o  <= '0;
      issue_cycles_o <= '0;
    end else begin
      done_o <= 1'b0;
      if (start) begin
        cfg_err_q <= bad_cfg;
        if (!bad_cfg) begin
          run_q          <= 1'b1;
          blocks_q       <= blocks_i;
          steps_q        <= steps_i;
          passes_q       <= PASS_W'(32'(tokens_i) * 32'(steps_i));
          small_q        <= 32'(blocks_i) < MIN_SWEEP;
          fill_pass_q    <= '0;
          filled_q       <= '0;
          sweep_pass_q   <= '0;
          step_q         <= '0;
          blk_q          <= '0;
          sweep_done_q   <= 1'b0;
          busy_cycles_o  <= '0;
          issue_cycles_o <= '0;
        end
      end else if (run_q) begin
        busy_cycles_o <= busy_cycles_o + 1;
        if (act_fire) fill_pass_q <= fill_pass_q + 1;
        if (fill_done) filled_q <= filled_q + 1;
        if (issue) begin
          issue_cycles_o <= issue_cycles_o + 1;
          if (!last_blk) begin
            blk_q <= blk_q + 1;
          end else begin
            blk_q <= '0;
            step_q <= last_step ? '0 : step_q + 1;
            if (last_pass) sweep_done_q <= 1'b1;
            else sweep_pass_q <= sweep_pass_q + 1;
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
