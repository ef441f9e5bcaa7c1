// SPDX-License-Identifier: Apache-2.0
//
// tlmm_weight_buffer: the on-chip weight buffer, one packed weight beat per word. Simple dual
// port (one write, one registered read) so the loader can fill it while the engine reads; it is
// sized to hold a whole matrix (or a chunk of one) and marked for UltraRAM, which is where
// TeLLMe keeps its weights: URAM288 blocks are 72 x 4096, deep and wide, and the KV260 has 64.

`default_nettype none

module tlmm_weight_buffer #(
  parameter int WIDTH  = 72,    // bits per word (one weight beat)
  parameter int DEPTH  = 4096,  // words
  // Derived; do not override.
  parameter int ADDR_W = DEPTH > 1 ? $clog2(DEPTH) : 1
) (
  input  wire logic              clk_i,
  input  wire logic              we_i,
  input  wire logic [ADDR_W-1:0] waddr_i,
  input  wire logic [WIDTH-1:0]  wdata_i,
  input  wire logic              re_i,
  input  wire logic [ADDR_W-1:0] raddr_i,
  output      logic [WIDTH-1:0]  rdata_o   // valid the cycle after re_i
);

  (* ram_style = "ultra" *) logic [WIDTH-1:0] mem [DEPTH];

  always_ff @(posedge clk_i) begin
    if (we_i) mem[waddr_i] <= wdata_i;
    if (re_i) rdata_o <= mem[raddr_i];
  end

endmodule

`resetall
