// SPDX-License-Identifier: Apache-2.0
//
// exp2_neg: 2^(-d / 2^16) in Q.15 for d >= 0 in Q.16, model::numerics::Exp2Tables::exp2_neg
// (docs/numerics.md §6.1): the fraction's high and low bytes index two 256-entry ROMs (generated
// from the same tables as the reference, exp2_rom.sv), their product is rounded to Q.15, then
// shifted right by the integer part (round half to even); 0 beyond 16.
// In three parts around two registers (y_o is d_i's result two cycles after d_i): the ROMs and
// their product (one DSP), its rounding, then the shift. (All of it in one cycle was
// op_vector's longest path, then the product with its rounding.) Free-running, like the
// pipelines that use it.

`default_nettype none

module exp2_neg (
  input  wire logic        clk_i,
  input  wire logic [47:0] d_i,  // Q.16, non-negative
  output      logic [15:0] y_o   // Q.15, 0..32768, for the d_i of two cycles before
);

  logic [15:0] hi, lo;
  exp2_rom u_rom (.hi_idx_i (d_i[15:8]), .lo_idx_i (d_i[7:0]), .hi_o (hi), .lo_o (lo));

  // hi, lo <= 2^15 in Q.15: the rounded product is at most 2^15.
  logic [31:0] p_q;
  logic [7:0]  n_p_q, n_q;  // the integer part, if at most 16
  logic        zero_p_q, zero_q;  // ... else the result is 0
  wire logic signed [95:0] frac = trit_num::rne_shift(96'(p_q), 8'd15);
  logic [15:0] frac_q;
  always_ff @(posedge clk_i) begin
    p_q      <= 32'(hi) * 32'(lo);
    n_p_q    <= d_i[23:16];
    zero_p_q <= d_i[47:16] > 32'd16;
    frac_q   <= frac[15:0];
    n_q      <= n_p_q;
    zero_q   <= zero_p_q;
  end

  wire logic signed [95:0] y = trit_num::rne_shift(96'(frac_q), n_q);  // <= 32768
  assign y_o = zero_q ? 16'd0 : y[15:0];

  logic unused;
  assign unused = ^{y[95:16], frac[95:16]};

endmodule

`resetall
