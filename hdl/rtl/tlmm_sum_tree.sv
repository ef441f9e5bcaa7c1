// SPDX-License-Identifier: Apache-2.0
//
// tlmm_sum_tree: the sum of N signed IN_W-bit values as a balanced binary adder tree, with
// STAGES register stages spread over its levels so a deep tree still meets the clock. Each
// level's adders are one bit wider than their operands (no wider), so the tree costs what its
// values need: the sum is exact in IN_W + LEVELS bits.
//
// Where the registers go: the tree's work is cut into UNITS = LEVELS + 1 equal units (unit 0 is
// whatever comes before the tree -- in tlmm_core the table read; unit l the adders of level l),
// and register k of STAGES sits after unit ceil(k * UNITS / (STAGES + 1)) - 1, so every
// combinational segment spans about UNITS / (STAGES + 1) units. Registers beyond the last level
// (more STAGES than levels) delay the sum. All registers advance with en_i.

`default_nettype none

module tlmm_sum_tree #(
  parameter int N      = 4,   // values to add (>= 1)
  parameter int IN_W   = 10,  // bits of each value (signed)
  parameter int STAGES = 0,   // register stages (latency in cycles)
  // Derived; do not override.
  parameter int LEVELS = N > 1 ? $clog2(N) : 0,
  parameter int OUT_W  = IN_W + LEVELS
) (
  input  wire logic              clk_i,
  input  wire logic              en_i,
  input  wire logic [N*IN_W-1:0] vals_i,  // value i at bits i*IN_W
  output      logic [OUT_W-1:0]  sum_o    // signed, STAGES cycles after vals_i
);

  localparam int UNITS = LEVELS + 1;

  // Registers after unit u (0..LEVELS): how many of the STAGES land there.
  function automatic int regs_after(input int u);
    int n;
    n = 0;
    for (int k = 1; k <= STAGES; k++) begin
      int at;
      at = (k * UNITS + STAGES) / (STAGES + 1) - 1;  // ceil(k * UNITS / (STAGES + 1)) - 1
      if (at > LEVELS) at = LEVELS;
      if (at == u) n++;
    end
    regs_after = n;
  endfunction

  // Values entering level l (l = 0: the inputs), each held in OUT_W bits but only its low
  // IN_W + l bits are meaningful (the adders of level l read those and sign-extend by one).
  // (split_var: each level is its own signal, not one loop through the tree.)
  logic [OUT_W-1:0] lvl [LEVELS+1][N] /* verilator split_var */;

  for (genvar l = 0; l <= LEVELS; l++) begin : g_level
    localparam int COUNT = (N + (1 << l) - 1) >> l;  // values at this level
    localparam int R     = regs_after(l);
    logic [OUT_W-1:0] raw [COUNT];                   // this unit's combinational result
    if (l == 0) begin : g_leaves
      for (genvar i = 0; i < N; i++) begin : g_in
        assign raw[i] = OUT_W'($signed(vals_i[i*IN_W +: IN_W]));
      end
    end else begin : g_adders
      localparam int W = IN_W + l;  // result bits of this level
      for (genvar i = 0; i < COUNT; i++) begin : g_add
        if (2 * i + 1 < (N + (1 << (l - 1)) - 1) >> (l - 1)) begin : g_pair
          wire logic signed [W-2:0] a = lvl[l-1][2*i][W-2:0];
          wire logic signed [W-2:0] b = lvl[l-1][2*i+1][W-2:0];
          wire logic signed [W-1:0] s = W'(a) + W'(b);
          assign raw[i] = OUT_W'(s);
        end else begin : g_pass
          // An odd value out moves up a level unchanged.
          assign raw[i] = lvl[l-1][2*i];
        end
      end
    end
    // R registers between this unit and the next.
    for (genvar i = 0; i < COUNT; i++) begin : g_val
      if (R == 0) begin : g_wire
        assign lvl[l][i] = raw[i];
      end else begin : g_regs
        logic [OUT_W-1:0] q [R];
        always_ff @(posedge clk_i) begin
          if (en_i) begin
            q[0] <= raw[i];
            for (int r = 1; r < R; r++) q[r] <= q[r-1];
          end
        end
        assign lvl[l][i] = q[R-1];
      end
    end
    for (genvar i = COUNT; i < N; i++) begin : g_unused
      assign lvl[l][i] = '0;
    end
  end

  assign sum_o = lvl[LEVELS][0];

  // Without register stages the clock and enable go unused.
  logic unused;
  assign unused = ^{clk_i, en_i};

endmodule

`resetall
