// SPDX-License-Identifier: Apache-2.0
//
// tlmm_lookup: the "lookup" half of table-lookup matrix multiplication (see tlmm_table_build
// for the trick). One weight beat holds, for COLS output rows and TABLES groups, a CODE_W-bit
// code per (row, group): bit CODE_W-1 is the sign, the low MAG_W bits are |m|, the index of the
// weight pattern among the ENTRIES stored table entries (0 = all-zero pattern). Each code picks
// its group's entry and negates it if the sign is set; the TABLES results of each row are
// summed. Combinational; COLS * TABLES lookups per evaluation.

`default_nettype none

module tlmm_lookup #(
  parameter int G       = 3,   // activations per group (2..4)
  parameter int TABLES  = 4,   // groups per beat
  parameter int COLS    = 4,   // output rows per beat
  parameter int ENTRY_W = 10,  // bits of one table entry (signed)
  parameter int SUM_W   = 12,  // bits of one row's sum over TABLES lookups (signed)
  // Derived; do not override.
  parameter int ENTRIES = (3 ** G - 1) / 2,
  parameter int MAG_W   = $clog2(ENTRIES + 1),
  parameter int CODE_W  = MAG_W + 1
) (
  input  wire logic [TABLES*ENTRIES*ENTRY_W-1:0] entries_i,  // from tlmm_table_build
  input  wire logic [COLS*TABLES*CODE_W-1:0]     codes_i,    // row c, group j at (c*TABLES+j)*CODE_W
  output      logic [COLS*SUM_W-1:0]             sums_o      // row c at c*SUM_W
);

  for (genvar c = 0; c < COLS; c++) begin : g_col
    logic signed [SUM_W-1:0] sum;
    always_comb begin
      logic [CODE_W-1:0] code;
      logic [MAG_W-1:0] mag;
      logic signed [ENTRY_W-1:0] entry;
      sum = '0;
      for (int j = 0; j < TABLES; j++) begin
        code = codes_i[(c*TABLES+j)*CODE_W +: CODE_W];
        mag = code[MAG_W-1:0];
        entry = '0;
        // A mux over the stored entries; magnitudes above ENTRIES never occur in packed
        // weights and read as zero.
        for (int m = 1; m <= ENTRIES; m++) begin
          if (mag == MAG_W'(m)) entry = entries_i[(j*ENTRIES+m-1)*ENTRY_W +: ENTRY_W];
        end
        if (code[CODE_W-1]) sum = sum - SUM_W'(entry);
        else sum = sum + SUM_W'(entry);
      end
    end
    assign sums_o[c*SUM_W +: SUM_W] = sum;
  end

endmodule

`resetall
