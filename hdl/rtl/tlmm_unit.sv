// SPDX-License-Identifier: Apache-2.0
//
// tlmm_unit: the TLMM core fed from its on-chip weight buffer. The host (or op_linear's loader)
// writes packed weight beats into the buffer in (step, block) order; on start the unit streams
// steps*blocks beats from wbase on (wrapping at the buffer's end: op_linear uses it as a ring and
// loads the next chunks meanwhile) into the core while activations arrive on their own stream,
// once per token (tlmm_core sweeps the weights token by token).

`default_nettype none

module tlmm_unit #(
  parameter int G           = 3,     // activations per group (2..4)
  parameter int TABLES      = 4,     // groups (tables) per step
  parameter int COLS        = 4,     // output rows per cycle
  parameter int ENTRY_W     = 10,    // table entry bits
  parameter int ACC_W       = 24,    // accumulator bits
  parameter int MAX_TOKENS  = 1,     // tokens sharing one weight fetch
  parameter int MAX_BLOCKS  = 16,    // largest N / COLS
  parameter int MAX_STEPS   = 16,    // largest ceil(K / (G*TABLES))
  parameter int PIPE        = 0,     // extra register stages after the lookup sums
  parameter int WBUF_DEPTH  = 256,   // weight buffer words (beats)
  // Derived; do not override.
  parameter int ENTRIES     = (3 ** G - 1) / 2,
  parameter int CODE_W      = $clog2(ENTRIES + 1) + 1,
  parameter int ACT_W       = TABLES * G * 8,
  parameter int WGT_W       = COLS * TABLES * CODE_W,
  parameter int TOK_W       = $clog2(MAX_TOKENS + 1),
  parameter int BLK_W       = $clog2(MAX_BLOCKS + 1),
  parameter int STEP_W      = $clog2(MAX_STEPS + 1),
  parameter int WADDR_W     = WBUF_DEPTH > 1 ? $clog2(WBUF_DEPTH) : 1
) (
  input  wire logic                  clk_i,
  input  wire logic                  rst_ni,
  // Weight buffer write port.
  input  wire logic                  wbuf_we_i,
  input  wire logic [WADDR_W-1:0]    wbuf_addr_i,
  input  wire logic [WGT_W-1:0]      wbuf_data_i,
  // Job.
  input  wire logic                  start_i,
  input  wire logic [WADDR_W-1:0]    wbase_i,   // buffer address of the run's first beat
  input  wire logic [TOK_W-1:0]      tokens_i,
  input  wire logic [BLK_W-1:0]      blocks_i,
  input  wire logic [STEP_W-1:0]     steps_i,
  output      logic                  busy_o,
  output      logic                  done_o,
  output      logic                  cfg_err_o,
  // Activations and results, as tlmm_core.
  input  wire logic                  act_valid_i,
  output      logic                  act_ready_o,
  input  wire logic [ACT_W-1:0]      act_data_i,
  output      logic                  out_valid_o,
  input  wire logic                  out_ready_i,
  output      logic [COLS*ACC_W-1:0] out_data_o,
  output      logic [31:0]           busy_cycles_o,
  output      logic [31:0]           issue_cycles_o
);

  // A job is taken into registers first (its sizes and its beats, steps x blocks), and starts
  // the cycle after: the multiply and the size check in front of the start were op_linear's
  // longest path. A job whose weights do not fit the buffer is refused like any other
  // out-of-range size. The buffer is a ring: a job's beats may run past the end and continue at
  // address 0.
  logic core_busy, core_err;
  logic                    start;  // the job taken a cycle ago starts
  logic [TOK_W-1:0]        job_tokens_q;
  logic [BLK_W-1:0]        job_blocks_q;
  logic [STEP_W-1:0]       job_steps_q;
  logic [WADDR_W-1:0]      job_wbase_q;
  localparam int JB_W = STEP_W + BLK_W;
  logic [JB_W-1:0]         job_beats_q;
  wire logic take = start_i && !core_busy && !start;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) start <= 1'b0;
    else start <= take;
  end
  always_ff @(posedge clk_i) begin
    if (take) begin
      job_tokens_q <= tokens_i;
      job_blocks_q <= blocks_i;
      job_steps_q  <= steps_i;
      job_wbase_q  <= wbase_i;
      job_beats_q  <= JB_W'(steps_i) * JB_W'(blocks_i);
    end
  end
  wire logic too_big = 32'(job_beats_q) > WBUF_DEPTH;
  logic too_big_q;

  // ---------------------------------------------------------------- reader: buffer -> stream
  // The core takes the job's beats once per token (tlmm_core: tokens outer), so the reader
  // sweeps the buffer from wbase `tokens` times, through a read_ahead FIFO so the stream runs at
  // full rate behind the buffer's one-cycle read.
  localparam int SWEEP_W = WADDR_W + 1;
  logic [SWEEP_W-1:0] sweep_beats_q;  // steps x blocks
  logic [SWEEP_W-1:0] rd_left_q;      // beats still to read in this sweep
  logic [TOK_W-1:0]   rd_sweeps_q;    // sweeps still to start after this one
  logic [WADDR_W-1:0] rd_addr_q;
  logic [WADDR_W-1:0] wbase_q;
  logic [WGT_W-1:0] rdata, wgt_data;
  logic wgt_valid, wgt_ready, rd_room;
  wire logic re = rd_left_q != '0 && rd_room;

  tlmm_weight_buffer #(.WIDTH(WGT_W), .DEPTH(WBUF_DEPTH)) u_wbuf (
    .clk_i   (clk_i),
    .we_i    (wbuf_we_i),
    .waddr_i (wbuf_addr_i),
    .wdata_i (wbuf_data_i),
    .re_i    (re),
    .raddr_i (rd_addr_q),
    .rdata_o (rdata)
  );

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      sweep_beats_q <= '0;
      rd_left_q     <= '0;
      rd_sweeps_q   <= '0;
      rd_addr_q     <= '0;
      wbase_q       <= '0;
      too_big_q     <= 1'b0;
    end else begin
      if (start) begin
        too_big_q     <= too_big;
        sweep_beats_q <= SWEEP_W'(job_beats_q);
        rd_left_q     <= too_big ? '0 : SWEEP_W'(job_beats_q);
        rd_sweeps_q   <= job_tokens_q - 1;
        rd_addr_q     <= job_wbase_q;
        wbase_q       <= job_wbase_q;
      end else if (re) begin
        if (rd_left_q == 1 && rd_sweeps_q != '0) begin
          // The next token's sweep: from the chunk's first beat again.
          rd_left_q   <= sweep_beats_q;
          rd_sweeps_q <= rd_sweeps_q - 1;
          rd_addr_q   <= wbase_q;
        end else begin
          rd_left_q <= rd_left_q - 1;
          rd_addr_q <= 32'(rd_addr_q) + 1 == WBUF_DEPTH ? '0 : rd_addr_q + 1;
        end
      end
    end
  end

  // A job starts with an empty FIFO: beats a refused job left there (or in flight) are dropped.
  read_ahead #(.W(WGT_W)) u_ahead (
    .clk_i, .rst_ni, .clear_i (start), .issue_i (re), .rdata_i (rdata), .room_o (rd_room),
    .valid_o (wgt_valid), .ready_i (wgt_ready), .data_o (wgt_data)
  );

  tlmm_core #(
    .G(G), .TABLES(TABLES), .COLS(COLS), .ENTRY_W(ENTRY_W), .ACC_W(ACC_W),
    .MAX_TOKENS(MAX_TOKENS), .MAX_BLOCKS(MAX_BLOCKS), .MAX_STEPS(MAX_STEPS), .PIPE(PIPE)
  ) u_core (
    .clk_i, .rst_ni,
    .start_i        (start && !too_big),
    .tokens_i (job_tokens_q), .blocks_i (job_blocks_q), .steps_i (job_steps_q),
    .busy_o         (core_busy),
    .done_o,
    .cfg_err_o      (core_err),
    .act_valid_i, .act_ready_o, .act_data_i,
    .wgt_valid_i    (wgt_valid),
    .wgt_ready_o    (wgt_ready),
    .wgt_data_i     (wgt_data),
    .out_valid_o, .out_ready_i, .out_data_o,
    .busy_cycles_o, .issue_cycles_o
  );

  assign busy_o    = core_busy;
  assign cfg_err_o = core_err || too_big_q;

endmodule

`resetall
