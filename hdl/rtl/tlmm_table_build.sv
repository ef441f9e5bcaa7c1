// SPDX-License-Identifier: Apache-2.0
//
// tlmm_table_build: the "online precompute" half of table-lookup matrix multiplication.
//
// The trick. A ternary weight row dotted with int8 activations is a sum of +-a_i or 0. Cut the
// activations into groups of G. For one group there are only 3^G possible weight patterns, so
// instead of G multiply-adds per weight row we precompute, once per group and shared by every
// output row, the partial sum of each pattern: T[pattern] = sum_i w_i(pattern) * a_i. Each row
// then needs one table lookup per group instead of G operations.
//
// Symmetry. Encode a pattern as the balanced-ternary number m = sum_i w_i * 3^i, in
// -(3^G-1)/2 .. (3^G-1)/2. Negating the weights negates m and the partial sum, and m = 0 is the
// all-zero pattern. So only the ENTRIES = (3^G-1)/2 positive patterns are stored (G=3: 13 of 27,
// as TeLLMe): a weight group is a sign bit plus |m| (a MAG_W-bit index, 0 meaning "all zero"),
// and the lookup negates the stored entry when the sign bit is set.
//
// This module is combinational: one activation beat (TABLES groups of G int8 values) in, the
// TABLES x ENTRIES table entries out. Entry |m| is the sum of the activations whose balanced-
// ternary digit of |m| is +1 minus those whose digit is -1 (at most G-1 adders per entry).

`default_nettype none

module tlmm_table_build #(
  parameter int G       = 3,   // activations per group (2..4)
  parameter int TABLES  = 4,   // groups (tables) per beat
  parameter int ENTRY_W = 10,  // bits of one table entry (signed)
  // Derived; do not override.
  parameter int ENTRIES = (3 ** G - 1) / 2
) (
  input  wire logic [TABLES*G*8-1:0]             act_i,     // group j, element i at bits (j*G+i)*8
  output      logic [TABLES*ENTRIES*ENTRY_W-1:0] entries_o  // table j, entry m-1 at (j*ENTRIES+m-1)*ENTRY_W
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

  for (genvar j = 0; j < TABLES; j++) begin : g_table
    for (genvar m = 1; m <= ENTRIES; m++) begin : g_entry
      logic signed [ENTRY_W-1:0] sum;
      always_comb begin
        sum = '0;
        for (int i = 0; i < G; i++) begin
          if (bt_digit(m, i) == 1) begin
            sum = sum + ENTRY_W'($signed(act_i[(j*G+i)*8 +: 8]));
          end else if (bt_digit(m, i) == -1) begin
            sum = sum - ENTRY_W'($signed(act_i[(j*G+i)*8 +: 8]));
          end
        end
      end
      assign entries_o[(j*ENTRIES+m-1)*ENTRY_W +: ENTRY_W] = sum;
    end
  end

endmodule

`resetall
