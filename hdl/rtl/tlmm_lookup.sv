// SPDX-License-Identifier: Apache-2.0
//
// tlmm_lookup: the tables of table-lookup matrix multiplication, and the lookups into them.
//
// The trick. A ternary weight row dotted with int8 activations is a sum of +-a_i or 0. Cut the
// activations into groups of G. For one group there are only 3^G possible weight patterns, so
// instead of G multiply-adds per weight row we precompute, once per group and shared by every
// output row, the partial sum of each pattern: T[pattern] = sum_i w_i(pattern) * a_i. Each row
// then needs one table lookup per group instead of G operations.
//
// Symmetry. Encode a pattern as the balanced-ternary number m = sum_i w_i * 3^i, in
// -(3^G-1)/2 .. (3^G-1)/2. Negating the weights negates m and the partial sum, and m = 0 is the
// all-zero pattern. So only entries 0..ENTRIES = (3^G-1)/2 are stored (G=3: 14 of 27): a weight
// group is a sign bit plus |m| (a MAG_W-bit index), and a set sign negates the entry read.
//
// Storage: LUT-RAM, as TeLLMe. Every (output column, table) pair has its own small memory of
// two buffers x 2^MAG_W entries (G=3: 32 x ENTRY_W, one LUT-RAM per two bits), so a lookup is
// a LUT-RAM read at the weight code -- no multiplexer over registered entries. All COLS copies
// of a table are written together, one entry per cycle: filling a buffer takes FILL =
// ENTRIES + 1 cycles from one activation beat (TABLES groups of G int8 values), while lookups
// read the other buffer.
//
// Negation without a subtractor: -e = ~e + 1, so each lookup passes e ^ {sign} on and the +1s
// are counted once per column (a popcount of the signs, the last of the TABLES + 1 leaves per
// column). tlmm_sum_tree adds the leaves.

`default_nettype none

module tlmm_lookup #(
  parameter int G       = 3,   // activations per group (2..4)
  parameter int TABLES  = 4,   // groups per beat
  parameter int COLS    = 4,   // output rows per beat
  parameter int ENTRY_W = 10,  // bits of one table entry (signed)
  // Derived; do not override.
  parameter int ENTRIES = (3 ** G - 1) / 2,
  parameter int MAG_W   = $clog2(ENTRIES + 1),
  parameter int CODE_W  = MAG_W + 1,
  parameter int FILL    = ENTRIES + 1,
  parameter int LEAVES  = TABLES + 1
) (
  input  wire logic                                clk_i,
  input  wire logic                                rst_ni,
  // Fill: fill_i (while not busy) takes act_i and writes buffer fill_buf_i's tables, entry
  // 0..ENTRIES in the FILL cycles after. fill_done_o marks the cycle the last entry is written
  // (reads see it from the next cycle on).
  input  wire logic                                fill_i,
  input  wire logic                                fill_buf_i,
  input  wire logic [TABLES*G*8-1:0]               act_i,      // group j, element i at bits (j*G+i)*8
  output      logic                                fill_busy_o,
  output      logic                                fill_done_o,
  // Lookups, combinational: buffer rd_buf_i, row c's code for group j at (c*TABLES+j)*CODE_W.
  input  wire logic                                rd_buf_i,
  input  wire logic [COLS*TABLES*CODE_W-1:0]       codes_i,
  output      logic [COLS*LEAVES*ENTRY_W-1:0]      leaves_o    // row c, leaf l at (c*LEAVES+l)*ENTRY_W
);

  // Balanced-ternary digit `pos` of the non-negative integer m: -1, 0 or +1.
  function automatic int bt_digit(input int m, input int pos);
    int v;
    int d;
    v = m;
    d = 0;
    for (int k = 0; k <= pos; k++) begin
      d = v % 3;
      if (d == 2) d = -1;
      v = (v - d) / 3;
    end
    bt_digit = d;
  endfunction
  // Digit i of entry m: +1 (digit_pos[i][m]), -1 (digit_neg[i][m]) or 0. Constants.
  logic [FILL-1:0] digit_pos [G];
  logic [FILL-1:0] digit_neg [G];
  for (genvar i = 0; i < G; i++) begin : g_digit
    for (genvar m = 0; m < FILL; m++) begin : g_entry
      assign digit_pos[i][m] = bt_digit(m, i) == 1;
      assign digit_neg[i][m] = bt_digit(m, i) == -1;
    end
  end

  // ---------------------------------------------------------------- fill
  logic [TABLES*G*8-1:0] act_q;
  logic                  buf_q;
  logic [MAG_W-1:0]      m_q;      // entry being written
  logic                  busy_q;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      busy_q <= 1'b0;
      m_q    <= '0;
    end else if (fill_i && !busy_q) begin
      busy_q <= 1'b1;
      m_q    <= '0;
    end else if (busy_q) begin
      m_q <= m_q + 1;
      if (32'(m_q) == ENTRIES) busy_q <= 1'b0;
    end
  end
  always_ff @(posedge clk_i) begin
    if (fill_i && !busy_q) begin
      act_q <= act_i;
      buf_q <= fill_buf_i;
    end
  end
  assign fill_busy_o = busy_q;
  assign fill_done_o = busy_q && 32'(m_q) == ENTRIES;

  // Entry m_q of each table: the activations whose digit is +1 minus those whose digit is -1.
  logic [TABLES*ENTRY_W-1:0] wdata;
  for (genvar j = 0; j < TABLES; j++) begin : g_build
    always_comb begin
      logic signed [ENTRY_W-1:0] sum;
      logic signed [ENTRY_W-1:0] a;
      sum = '0;
      for (int i = 0; i < G; i++) begin
        a = ENTRY_W'($signed(act_q[(j*G+i)*8 +: 8]));
        if (digit_pos[i][m_q]) sum = sum + a;
        else if (digit_neg[i][m_q]) sum = sum - a;
      end
      wdata[j*ENTRY_W +: ENTRY_W] = sum;
    end
  end

  // ---------------------------------------------------------------- tables and lookups
  for (genvar c = 0; c < COLS; c++) begin : g_col
    logic [TABLES-1:0] signs;
    for (genvar j = 0; j < TABLES; j++) begin : g_table
      (* ram_style = "distributed" *) logic [ENTRY_W-1:0] mem [2 << MAG_W];
      always_ff @(posedge clk_i) begin
        if (busy_q) mem[{buf_q, m_q}] <= wdata[j*ENTRY_W +: ENTRY_W];
      end
      // Magnitudes above ENTRIES never occur in packed weights (model::pack).
      wire logic [CODE_W-1:0] code = codes_i[(c*TABLES+j)*CODE_W +: CODE_W];
      assign signs[j] = code[CODE_W-1];
      assign leaves_o[(c*LEAVES+j)*ENTRY_W +: ENTRY_W] = mem[{rd_buf_i, code[MAG_W-1:0]}] ^ {ENTRY_W{signs[j]}};
    end
    // The +1 of every negated entry: a popcount of the signs, as a (combinational) adder tree of
    // 2-bit values, not a chain.
    localparam int CNT_W = 2 + (TABLES > 1 ? $clog2(TABLES) : 0);
    logic [2*TABLES-1:0] sign_vals;
    logic [CNT_W-1:0]    count;
    for (genvar j = 0; j < TABLES; j++) begin : g_sign
      assign sign_vals[2*j +: 2] = {1'b0, signs[j]};
    end
    tlmm_sum_tree #(.N(TABLES), .IN_W(2), .STAGES(0)) u_count (
      .clk_i (clk_i), .en_i (1'b0), .vals_i (sign_vals), .sum_o (count)
    );
    assign leaves_o[(c*LEAVES+TABLES)*ENTRY_W +: ENTRY_W] = ENTRY_W'(count);
  end

endmodule

`resetall
