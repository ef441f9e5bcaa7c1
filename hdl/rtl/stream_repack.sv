// SPDX-License-Identifier: Apache-2.0
//
// stream_repack: re-cuts one row of bytes arriving as IN_BYTES-wide bus words into OUT_BYTES-
// wide words, e.g. a row of int8 activation codes into TLMM activation beats (TABLES*G bytes,
// which need not divide or be divided by the bus width). Per row: `in_words_i` words are taken
// (all of them, so the memory read completes), exactly `out_words_i` words are produced, and
// every byte at or past `len_i` is zero — rows in memory are padded to 64 bytes and the padding
// must not leak into the last group.
//
// The buffer is kept in units of U = gcd(IN_BYTES, OUT_BYTES) bytes: every word in or out is a
// whole number of units, so the fill level is too, and an input word lands at one of only
// CAP/U unit offsets. Counted in bytes, synthesis had to assume any byte offset: a full barrel
// shifter per buffer byte (the three re-cutters were 31 k LUTs of op_linear at tellme-kv260's
// size).

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

  function automatic int gcd(input int a, input int b);
    int x, y, t;
    x = a;
    y = b;
    while (y != 0) begin
      t = x % y;
      x = y;
      y = t;
    end
    gcd = x;
  endfunction
  localparam int U     = gcd(IN_BYTES, OUT_BYTES);  // bytes per unit
  localparam int IN_U  = IN_BYTES / U;
  localparam int OUT_U = OUT_BYTES / U;
  localparam int CAP_U = IN_U + OUT_U;              // buffer units
  localparam int CNT_W = $clog2(CAP_U + 1);

  localparam int OB_W  = $clog2(OUT_BYTES + 1);  // a byte count within one output word

  logic [8*U*CAP_U-1:0] buf_q;    // unit 0 is the oldest
  logic [CNT_W-1:0]     fill_q;   // valid units in buf_q
  logic [31:0]          in_left_q, out_left_q, row_left_q;  // row_left_q: bytes not yet emitted
  logic                 busy_q;
  // The counters' tests, registered with them (32-bit compares in front of the handshakes and
  // the buffer's unit selects were op_linear's longest paths): words left in and out are not
  // zero, are one; the row's bytes in the next output word.
  logic                 in_nz_q, in_one_q, out_nz_q, out_one_q;
  logic [OB_W-1:0]      row_bytes_q;
  function automatic logic [OB_W-1:0] word_bytes(input logic [31:0] left);
    word_bytes = left >= OUT_BYTES ? OB_W'(OUT_BYTES) : OB_W'(left);
  endfunction

  wire logic need_more = out_nz_q && 32'(fill_q) < OUT_U;
  // Take input while it fits; once every output is made, drain the rest without storing it.
  assign in_ready_o  = busy_q && in_nz_q && (!out_nz_q || 32'(fill_q) + IN_U <= CAP_U);
  // Emit when a full word is buffered, or when the input is exhausted (zero-filled tail).
  assign out_valid_o = busy_q && out_nz_q && (!need_more || !in_nz_q);

  // Bytes of the output word that are real: buffered, and before the row's end (both counted
  // within one word, so each byte's test is a small compare, not one of 32 bits).
  wire logic [OB_W-1:0] buf_bytes = 32'(fill_q) * U >= OUT_BYTES ? OB_W'(OUT_BYTES) : OB_W'(32'(fill_q) * U);
  wire logic [OB_W-1:0] out_bytes = buf_bytes < row_bytes_q ? buf_bytes : row_bytes_q;
  always_comb begin
    for (int b = 0; b < OUT_BYTES; b++) begin
      out_data_o[8*b +: 8] = OB_W'(b) < out_bytes ? buf_q[8*b +: 8] : 8'd0;
    end
  end

  wire logic in_fire  = in_valid_i && in_ready_o;
  wire logic out_fire = out_valid_o && out_ready_i;

  // The buffer after this cycle: the output word leaves (the rest moves down OUT_U units), then
  // an input word lands at the fill level. Unit p takes input unit p - f when that is one of
  // the word's IN_U units (an indexed select: a multiplexer per unit, not a chain of IN_U
  // priority tests), else keeps its (moved) contents.
  logic [8*U*CAP_U-1:0] shifted, buf_d;
  logic [CNT_W:0]       f;     // fill after the output word left
  // (outputs still to make after this cycle's: compares with constants, not a 32-bit
  // subtraction in front of every unit's select -- op_linear's longest path)
  wire logic            take = in_fire && (out_fire ? !out_one_q : out_nz_q);
  always_comb begin
    shifted = out_fire ? buf_q >> (8 * OUT_BYTES) : buf_q;
    f = (CNT_W+1)'(fill_q);
    if (out_fire) f = 32'(f) > OUT_U ? f - (CNT_W+1)'(OUT_U) : '0;
    for (int p = 0; p < CAP_U; p++) begin
      logic [CNT_W:0] src;
      src = (CNT_W+1)'(p) - f;
      buf_d[8*U*p +: 8*U] = shifted[8*U*p +: 8*U];
      if (take && (CNT_W+1)'(p) >= f && src < (CNT_W+1)'(IN_U)) buf_d[8*U*p +: 8*U] = in_data_i[8*U*src +: 8*U];
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      buf_q      <= '0;
      fill_q     <= '0;
      in_left_q  <= '0;
      out_left_q <= '0;
      row_left_q <= '0;
      busy_q     <= 1'b0;
      in_nz_q    <= 1'b0;
      in_one_q   <= 1'b0;
      out_nz_q   <= 1'b0;
      out_one_q  <= 1'b0;
      row_bytes_q <= '0;
    end else if (start_i && !busy_q) begin
      fill_q     <= '0;
      in_left_q  <= in_words_i;
      out_left_q <= out_words_i;
      row_left_q <= len_i;
      busy_q     <= in_words_i != '0 || out_words_i != '0;
      in_nz_q    <= in_words_i != '0;
      in_one_q   <= in_words_i == 32'd1;
      out_nz_q   <= out_words_i != '0;
      out_one_q  <= out_words_i == 32'd1;
      row_bytes_q <= word_bytes(len_i);
    end else if (busy_q) begin
      buf_q  <= buf_d;
      fill_q <= CNT_W'(take ? f + (CNT_W+1)'(IN_U) : f);
      if (in_fire) begin
        in_left_q <= in_left_q - 1;
        in_nz_q   <= !in_one_q;
        in_one_q  <= in_left_q == 32'd2;
      end
      if (out_fire) begin
        logic [31:0] row_next;
        row_next = row_left_q > OUT_BYTES ? row_left_q - OUT_BYTES : 32'd0;
        out_left_q  <= out_left_q - 1;
        out_nz_q    <= !out_one_q;
        out_one_q   <= out_left_q == 32'd2;
        row_left_q  <= row_next;
        row_bytes_q <= word_bytes(row_next);
      end
      if ((in_fire ? in_one_q : !in_nz_q) && (out_fire ? out_one_q : !out_nz_q)) busy_q <= 1'b0;
    end
  end

  assign busy_o = busy_q;

endmodule

`resetall
