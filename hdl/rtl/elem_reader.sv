// SPDX-License-Identifier: Apache-2.0
//
// elem_reader: reads `count` elements of 1, 2 or 4 bytes from any element-aligned byte address
// and streams them out one per cycle, sign-extended to 32 bits -- or, for the lane-parallel
// engines, 16-byte elements (16 int8 codes at once) on el_wide_o's low 16 bytes, or WIDE-byte
// ones (the LM head: a whole bus word) on all of it. The vector engines see device
// memory as element streams through this and elem_writer, so none of them handles bus words,
// row padding or unaligned starts itself.
//
// Up to QUEUE commands may be outstanding: a command goes to the read master as soon as it is
// accepted, so an engine that issues the reads of the next key or row while it consumes the
// current one keeps DRAM latency off its critical path. Elements come out in command order.

`default_nettype none

module elem_reader #(
  parameter int DATA_W = 128,  // bus bits
  parameter int QUEUE  = 4,    // commands in flight
  parameter int WIDE   = 16    // bytes of el_wide_o, its widest element: 16 .. DATA_W / 8, a power of two
) (
  input  wire logic              clk_i,
  input  wire logic              rst_ni,
  // Command: `count` (>= 1) elements of 2^size bytes (size 0..4, or log2(WIDE)) at byte
  // address `addr`.
  input  wire logic              cmd_valid_i,
  output      logic              cmd_ready_o,
  input  wire logic [63:0]       cmd_addr_i,
  input  wire logic [31:0]       cmd_count_i,
  input  wire logic [2:0]        cmd_size_i,
  // Elements.
  output      logic              el_valid_o,
  input  wire logic              el_ready_i,
  output      logic [31:0]       el_data_o,   // 1, 2, 4-byte elements, sign-extended
  output      logic [8*WIDE-1:0] el_wide_o,   // 16- or WIDE-byte elements, raw
  // Read master.
  output      logic              rd_cmd_valid_o,
  input  wire logic              rd_cmd_ready_i,
  output      logic [63:0]       rd_cmd_addr_o,
  output      logic [31:0]       rd_cmd_beats_o,
  input  wire logic              rd_valid_i,
  output      logic              rd_ready_o,
  input  wire logic [DATA_W-1:0] rd_data_i
);

  localparam int BYTES = DATA_W / 8;
  localparam int OFF_W = $clog2(BYTES);
  localparam int QW    = QUEUE > 1 ? $clog2(QUEUE) : 1;
  localparam int WIDE_W = $clog2(WIDE);

  if (WIDE < 16 || WIDE > BYTES || (WIDE & (WIDE - 1)) != 0) begin : g_bad_wide
`ifdef __ICARUS__
    elem_reader_bad_WIDE u_fail ();
`else
    $error("elem_reader: WIDE = %0d must be a power of two in 16 .. DATA_W / 8 = %0d", WIDE, BYTES);
`endif
  end

  // Queue of accepted commands: start offset in the first word, element count, size.
  logic [OFF_W-1:0] q_off   [QUEUE];
  logic [31:0]      q_count [QUEUE];
  logic [2:0]       q_size  [QUEUE];
  logic [QW-1:0]    head_q, tail_q;
  logic [QW:0]      used_q;

  wire logic [OFF_W-1:0] off = cmd_addr_i[OFF_W-1:0];
  assign cmd_ready_o    = rd_cmd_ready_i && 32'(used_q) < QUEUE;
  assign rd_cmd_valid_o = cmd_valid_i && 32'(used_q) < QUEUE;
  assign rd_cmd_addr_o  = {cmd_addr_i[63:OFF_W], {OFF_W{1'b0}}};
  assign rd_cmd_beats_o = 32'((64'(off) + (64'(cmd_count_i) << cmd_size_i) + 64'(BYTES) - 64'd1) >> OFF_W);
  wire logic push = cmd_valid_i && cmd_ready_o;

  // The element at the current byte of the current word.
  logic [OFF_W-1:0] ptr_q;      // byte offset in the word
  logic [31:0]      left_q;     // elements left in the head command
  logic             started_q;  // ptr_q/left_q belong to the head command
  wire logic [OFF_W-1:0] ptr  = started_q ? ptr_q : q_off[head_q];
  wire logic [31:0]      left = started_q ? left_q : q_count[head_q];
  wire logic [2:0]       size = q_size[head_q];
  // An element never crosses a 16-byte boundary (16-byte elements start on one, smaller ones
  // are element-aligned): the word's 16-byte granule at ptr, then only the low 32 bits shifted
  // by bytes within it (a full 128-bit byte shifter per reader was most of its LUTs).
  logic [127:0] granule;
  if (OFF_W > 4) begin : g_granules
    assign granule = 128'(rd_data_i >> {ptr[OFF_W-1:4], 7'b0});
  end else begin : g_one_granule
    assign granule = 128'(rd_data_i);
  end
  wire logic [31:0] raw = 32'(granule >> {ptr[3:0], 3'b000});
  // A WIDE-byte element starts on a WIDE boundary: the word's WIDE-byte line at ptr, whose low
  // 16 bytes are then the granule at ptr -- so the same bits serve 16-byte elements (the low
  // ones) and WIDE-byte ones (all), with no multiplexer between them.
  if (WIDE == 16) begin : g_granule_only
    assign el_wide_o = {granule[127:32], raw};
  end else begin : g_line
    logic [8*WIDE-1:0] line;
    if (OFF_W > WIDE_W) begin : g_lines
      assign line = (8*WIDE)'(rd_data_i >> {ptr[OFF_W-1:WIDE_W], (WIDE_W+3)'(0)});
    end else begin : g_one_line
      assign line = (8*WIDE)'(rd_data_i);
    end
    assign el_wide_o = {line[8*WIDE-1:128], granule[127:32], raw};
    logic unused_line;  // the line's low 16 bytes: the granule's, taken from there
    assign unused_line = ^line[127:0];
  end
  always_comb begin
    unique case (size)
      3'd0:    el_data_o = {{24{raw[7]}}, raw[7:0]};
      3'd1:    el_data_o = {{16{raw[15]}}, raw[15:0]};
      default: el_data_o = raw;
    endcase
  end

  assign el_valid_o = used_q != '0 && rd_valid_i;
  wire logic fire = el_valid_o && el_ready_i;
  wire logic last = left == 32'd1;
  wire logic [OFF_W:0] next_ptr = {1'b0, ptr} + ((OFF_W+1)'(1) << size);
  assign rd_ready_o = fire && (last || next_ptr[OFF_W]);

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      head_q    <= '0;
      tail_q    <= '0;
      used_q    <= '0;
      ptr_q     <= '0;
      left_q    <= '0;
      started_q <= 1'b0;
    end else begin
      if (push) tail_q <= QW'((32'(tail_q) + 1) % QUEUE);
      used_q <= used_q + (QW+1)'(push) - (QW+1)'(fire && last);
      if (fire) begin
        if (last) begin
          head_q    <= QW'((32'(head_q) + 1) % QUEUE);
          started_q <= 1'b0;
        end else begin
          ptr_q     <= next_ptr[OFF_W-1:0];
          left_q    <= left - 32'd1;
          started_q <= 1'b1;
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (push) begin
      q_off[tail_q]   <= off;
      q_count[tail_q] <= cmd_count_i;
      q_size[tail_q]  <= cmd_size_i;
    end
  end

endmodule

`resetall
