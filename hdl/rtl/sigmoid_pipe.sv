// SPDX-License-Identifier: Apache-2.0
//
// sigmoid_pipe: trit_num::sigmoid_q15 -- RNE(2^30 / (2^15 + e)), the SiLU sigmoid of
// model::numerics::silu_fx -- as a pipelined restoring division: two quotient bits per stage,
// LATENCY cycles from e_i to y_o, a new e every cycle. The function divides in one cycle (a
// 31-bit divider, ~30 carry chains deep); here each stage is two compare-subtracts.
// No valid: the caller carries its own alongside.

`default_nettype none

module sigmoid_pipe #(
  parameter int LATENCY = 8  // stages (16 quotient bits, two per stage)
) (
  input  wire logic        clk_i,
  input  wire logic [15:0] e_i,  // Q.15, 0..32768
  output      logic [15:0] y_o   // sigmoid in Q.15, LATENCY cycles after its e_i
);

  if (LATENCY != 8) begin : g_bad_latency
`ifdef __ICARUS__
    sigmoid_pipe_LATENCY_must_be_8 u_fail ();
`else
    $error("sigmoid_pipe: LATENCY = %0d; the quotient has 16 bits, two per stage", LATENCY);
`endif
  end

  // Stage s's registers hold the divisor, the remainder and the quotient bits down to
  // 14 - 2s. The quotient is at most 2^15 (divisor >= 2^15), so bit 15 is the highest; the
  // remainder stays below divisor * 2^(16 - 2s), under 2^31.
  logic [17*LATENCY-1:0] den_v;
  logic [32*LATENCY-1:0] rem_v;
  logic [16*LATENCY-1:0] quo_v;
  for (genvar s = 0; s < LATENCY; s++) begin : g_stage
    localparam int HI = 15 - 2 * s;  // the stage's higher quotient bit
    logic [16:0] den_in;
    logic [31:0] rem_in;
    logic [15:0] quo_in;
    if (s == 0) begin : g_first
      assign den_in = 17'd32768 + 17'(e_i);
      assign rem_in = 32'h4000_0000;
      assign quo_in = '0;
    end else begin : g_next
      assign den_in = den_v[17*(s-1) +: 17];
      assign rem_in = rem_v[32*(s-1) +: 32];
      assign quo_in = quo_v[16*(s-1) +: 16];
    end
    wire logic [31:0] den = 32'(den_in);
    logic [31:0] r;
    logic [15:0] q;
    // Each compare-subtract is one subtraction whose borrow is the compare (written as a
    // compare and a subtract, yosys builds two carry chains).
    logic [32:0] d_hi, d_lo;
    always_comb begin
      r = rem_in;
      q = quo_in;
      d_hi = {1'b0, r} - {1'b0, den << HI};
      if (!d_hi[32]) begin
        r = d_hi[31:0];
        q[HI] = 1'b1;
      end
      d_lo = {1'b0, r} - {1'b0, den << (HI - 1)};
      if (!d_lo[32]) begin
        r = d_lo[31:0];
        q[HI-1] = 1'b1;
      end
    end
    always_ff @(posedge clk_i) begin
      den_v[17*s +: 17] <= den_in;
      rem_v[32*s +: 32] <= r;
      quo_v[16*s +: 16] <= q;
    end
  end

  // Round half to even on the last remainder.
  wire logic [16:0] den_l = den_v[17*(LATENCY-1) +: 17];
  wire logic [31:0] rem_l = rem_v[32*(LATENCY-1) +: 32];
  wire logic [15:0] quo_l = quo_v[16*(LATENCY-1) +: 16];
  wire logic [32:0] twice = {rem_l, 1'b0};
  wire logic        up    = twice > 33'(den_l) || (twice == 33'(den_l) && quo_l[0]);
  assign y_o = quo_l + 16'(up);

endmodule

`resetall
