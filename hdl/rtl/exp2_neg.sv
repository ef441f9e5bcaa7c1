// SPDX-License-Identifier: Apache-2.0
//
// exp2_neg: 2^(-d / 2^16) in Q.15 for d >= 0 in Q.16, model::numerics::Exp2Tables::exp2_neg
// (docs/numerics.md §6.1): the fraction's high and low bytes index two 256-entry ROMs (generated
// from the same tables as the reference, exp2_rom.sv), their product is rounded to Q.15, then
// shifted right by the integer part (round half to even); 0 beyond 16. Combinational.

`default_nettype none

module exp2_neg (
  input  wire logic [47:0] d_i,  // Q.16, non-negative
  output      logic [15:0] y_o   // Q.15, 0..32768
);

  logic [15:0] hi, lo;
  exp2_rom u_rom (.hi_idx_i (d_i[15:8]), .lo_idx_i (d_i[7:0]), .hi_o (hi), .lo_o (lo));

  wire logic [31:0]        n    = d_i[47:16];
  wire logic signed [95:0] frac = trit_num::rne_shift(96'(32'(hi) * 32'(lo)), 8'd15);
  wire logic signed [95:0] y    = trit_num::rne_shift(frac, n[7:0]);  // <= 32768
  assign y_o = n > 32'd16 ? 16'd0 : y[15:0];

  logic unused;
  assign unused = ^y[95:16];

endmodule

`resetall
