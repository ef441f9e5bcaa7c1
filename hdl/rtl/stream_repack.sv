// SPDX-License-Identifier: Apache-2.0
//
// stream_repack: re-cuts one row of bytes arriving as IN_BYTES-wide bus words into OUT_BYTES-
// wide words, e.g. a row of int8 activation codes into TLMM activation beats (TABLES*G bytes,
// which need not divide or be divided by the bus width). Per row: `in_words_i` words are taken
// (all of them, so the memory read completes), exactly `out_words_i` words are produced, and
// every byte at or past `len_i` is zero — rows in memory are padded to 64 bytes and the padding
// must not leak into the last group.

`default_nettype none

module stream_repack #(
  parameter int IN_BYTES  = 16,  // input word, bytes
  parameter int OUT_BYTES = 12   // output word, bytes
) (
  input  wire logic                   clk_i,
  input  wire logic                   rst_ni,
  input  wire logic                   start_i,     // begin a row (while idle)
  input  wire logic [31:0]            len_i,       // meaningful bytes in the row
  input  wire logic [31:0]            in_words_i,  // input words the row arrives in
  input  wire logic [31:0]            out_words_i, // output words to produce
  output      logic                   busy_o,
  input  wire logic                   in_valid_i,
  output      logic                   in_ready_o,
  input  wire logic [8*IN_BYTES-1:0]  in_data_i,
  output      logic                   out_valid_o,
  input  wire logic                   out_ready_i,
  output      logic [8*OUT_BYTES-1:0] out_data_o
);

  localparam int CAP   = IN_BYTES + OUT_BYTES;  // buffer bytes
  localparam int CNT_W = $clog2(CAP + 1);

  logic [8*CAP-1:0] buf_q;    // byte 0 is the oldest
  logic [CNT_W-1:0] fill_q;   // valid bytes in buf_q
  logic [31:0]      in_left_q, out_left_q, emitted_q, len_q;
  logic             busy_q;

  wire logic need_more = out_left_q != '0 && 32'(fill_q) < OUT_BYTES;
  // Take input while it fits; once every output is made, drain the rest without storing it.
  assign in_ready_o  = busy_q && in_left_q != '0 && (out_left_q == '0 || 32'(fill_q) + IN_BYTES <= CAP);
  // Emit when a full word is buffered, or when the input is exhausted (zero-filled tail).
  assign out_valid_o = busy_q && out_left_q != '0 && (!need_more || in_left_q == '0);

  always_comb begin
    for (int b = 0; b < OUT_BYTES; b++) begin
      // Bytes past the buffered ones, or past the row's length, read as zero.
      if (b < 32'(fill_q) && 32'(emitted_q) + b < len_q) out_data_o[8*b +: 8] = buf_q[8*b +: 8];
      else out_data_o[8*b +: 8] = 8'd0;
    end
  end

  wire logic in_fire  = in_valid_i && in_ready_o;
  wire logic out_fire = out_valid_o && out_ready_i;

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      buf_q      <= '0;
      fill_q     <= '0;
      in_left_q  <= '0;
      out_left_q <= '0;
      emitted_q  <= '0;
      len_q      <= '0;
      busy_q     <= 1'b0;
    end else if (start_i && !busy_q) begin
      fill_q     <= '0;
      in_left_q  <= in_words_i;
      out_left_q <= out_words_i;
      emitted_q  <= '0;
      len_q      <= len_i;
      busy_q     <= in_words_i != '0 || out_words_i != '0;
    end else if (busy_q) begin
      logic [8*CAP-1:0] b;
      logic [31:0]      f;
      b = buf_q;
      f = 32'(fill_q);
      if (out_fire) begin
        b = b >> (8 * OUT_BYTES);
        f = f > OUT_BYTES ? f - OUT_BYTES : 0;
      end
      if (in_fire && out_left_q - 32'(out_fire) != '0) begin
        b[8*f +: 8*IN_BYTES] = in_data_i;
        f = f + IN_BYTES;
      end
      buf_q  <= b;
      fill_q <= CNT_W'(f);
      if (in_fire) in_left_q <= in_left_q - 1;
      if (out_fire) begin
        out_left_q <= out_left_q - 1;
        emitted_q  <= emitted_q + OUT_BYTES;
      end
      if (in_left_q - 32'(in_fire) == '0 && out_left_q - 32'(out_fire) == '0) busy_q <= 1'b0;
    end
  end

  assign busy_o = busy_q;

endmodule

`resetall
