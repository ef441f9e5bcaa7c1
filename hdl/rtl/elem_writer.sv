// SPDX-License-Identifier: Apache-2.0
//
// elem_writer: writes `count` elements of 1, 2, 4 or 16 bytes (the low bytes of each 128-bit
// input) to any element-aligned byte address, one element per cycle, with byte strobes so the
// bytes around the run are left untouched (per-token scales, one KV head's codes in a cache row).
// 16-byte elements (four int32 of a row per cycle) need a bus of at least 128 bits.
// One command at a time, but a command is done once its data has gone to the write master (which
// posts it), so the next one starts without waiting for the responses; `idle_o` rises once the
// memory has acknowledged every write, so data an engine wrote is visible to whatever reads next.

`default_nettype none

module elem_writer #(
  parameter int DATA_W = 128  // bus bits
) (
  input  wire logic                clk_i,
  input  wire logic                rst_ni,
  input  wire logic                cmd_valid_i,
  output      logic                cmd_ready_o,
  input  wire logic [63:0]         cmd_addr_i,
  input  wire logic [31:0]         cmd_count_i,  // >= 1
  input  wire logic [2:0]          cmd_size_i,   // log2 of the element bytes: 0, 1, 2 or 4
  input  wire logic                el_valid_i,
  output      logic                el_ready_o,
  input  wire logic [127:0]        el_data_i,
  input  wire logic [4:0]          el_len_i,     // leading bytes of the element to write (ebytes: all)
  output      logic                idle_o,
  // Write master.
  output      logic                wr_cmd_valid_o,
  input  wire logic                wr_cmd_ready_i,
  output      logic [63:0]         wr_cmd_addr_o,
  output      logic [31:0]         wr_cmd_beats_o,
  output      logic                wr_valid_o,
  input  wire logic                wr_ready_i,
  output      logic [DATA_W-1:0]   wr_data_o,
  output      logic [DATA_W/8-1:0] wr_strb_o,
  input  wire logic                wr_done_i
);

  localparam int BYTES = DATA_W / 8;
  localparam int OFF_W = $clog2(BYTES);

  typedef enum logic {IDLE, DATA} state_e;
  state_e state_q;
  logic [OFF_W-1:0]  ptr_q;
  logic [31:0]       left_q;
  logic [2:0]        size_q;
  logic [DATA_W-1:0] word_q;
  logic [BYTES-1:0]  strb_q;
  logic              full_q;  // word_q complete, waiting for the master
  logic              pending_q;  // written data not yet acknowledged (cleared by wr_done_i)

  assign cmd_ready_o    = state_q == IDLE && wr_cmd_ready_i;
  assign wr_cmd_valid_o = state_q == IDLE && cmd_valid_i;
  assign wr_cmd_addr_o  = {cmd_addr_i[63:OFF_W], {OFF_W{1'b0}}};
  assign wr_cmd_beats_o =
    32'((64'(cmd_addr_i[OFF_W-1:0]) + (64'(cmd_count_i) << cmd_size_i) + 64'(BYTES) - 64'd1) >> OFF_W);
  assign idle_o     = state_q == IDLE && !pending_q;
  // A full word leaves in the cycle the next element comes in: one element per cycle, also when
  // every element fills a word (16-byte elements).
  wire logic sending = full_q && wr_ready_i;
  assign el_ready_o = state_q == DATA && left_q != '0 && (!full_q || wr_ready_i);
  assign wr_valid_o = full_q;
  assign wr_data_o  = word_q;
  assign wr_strb_o  = strb_q;

  wire logic       fire = el_valid_i && el_ready_o;
  wire logic [4:0] ebytes = 5'd1 << size_q;
  wire logic [OFF_W:0] next_ptr = {1'b0, ptr_q} + (OFF_W+1)'(ebytes);
  logic [7:0] el_bytes [16];
  for (genvar b = 0; b < 16; b++) begin : g_byte
    assign el_bytes[b] = el_data_i[8*b +: 8];
  end
  // The bytes of a word position that lie within one element slot (ebytes - 1).
  wire logic [OFF_W-1:0] slot_mask = OFF_W'(ebytes - 5'd1);
  logic [DATA_W-1:0] put_word;
  logic [BYTES-1:0]  put_strb;
  always_comb begin
    put_word = word_q;
    put_strb = full_q ? '0 : strb_q;  // a word being sent: the element starts the next one
    // Per word byte w, the element byte landing there: w - ptr. Elements are aligned (ptr is a
    // multiple of ebytes), so that is w's position within its ebytes-sized slot -- one of five
    // choices by size, not a 16-way choice by ptr -- and the element covers w when w's slot
    // starts at ptr.
    for (int w = 0; w < BYTES; w++) begin
      logic [3:0]       wl;  // w's low bits
      logic [3:0]       b;
      logic [OFF_W-1:0] slot;
      wl = 4'(w);
      unique case (size_q)
        3'd0:    b = 4'd0;
        3'd1:    b = {3'd0, wl[0]};
        3'd2:    b = {2'd0, wl[1:0]};
        3'd3:    b = {1'd0, wl[2:0]};
        default: b = wl;
      endcase
      slot = OFF_W'(w) & ~slot_mask;
      if (slot == ptr_q) begin
        put_word[8*w +: 8] = el_bytes[b];
        // A short last element (a row of codes written four at a time) leaves the rest alone.
        if (5'(b) < el_len_i) put_strb[w] = 1'b1;
      end
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q <= IDLE;
      ptr_q   <= '0;
      left_q  <= '0;
      size_q  <= '0;
      word_q  <= '0;
      strb_q  <= '0;
      full_q  <= 1'b0;
      pending_q <= 1'b0;
    end else begin
      // wr_done_i acknowledges everything issued before it; a command issued in the same cycle
      // is still owed a pulse.
      if (cmd_valid_i && cmd_ready_o) pending_q <= 1'b1;
      else if (wr_done_i) pending_q <= 1'b0;
      unique case (state_q)
        IDLE: if (cmd_valid_i && cmd_ready_o) begin
          ptr_q   <= cmd_addr_i[OFF_W-1:0];
          left_q  <= cmd_count_i;
          size_q  <= cmd_size_i;
          strb_q  <= '0;
          state_q <= DATA;
        end
        DATA: begin
          if (sending) begin
            full_q <= 1'b0;
            strb_q <= '0;
            if (left_q == '0) state_q <= IDLE;
          end
          // After the send: an element in the same cycle fills the next word.
          if (fire) begin
            word_q <= put_word;
            strb_q <= put_strb;
            ptr_q  <= next_ptr[OFF_W-1:0];
            left_q <= left_q - 1;
            if (next_ptr[OFF_W] || left_q == 32'd1) full_q <= 1'b1;
          end
        end
        default: state_q <= IDLE;
      endcase
    end
  end

endmodule

`resetall
