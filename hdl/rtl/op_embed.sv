// SPDX-License-Identifier: Apache-2.0
//
// op_embed: the EMBED op. Reads the token ids, then for each token its fp16 embedding row, and
// writes the row as Q.16 int32 (docs/numerics.md §2: round half to even below 2^-16, saturate,
// infinities saturate, NaN is 0). Every input bus word becomes two output words; rows are
// 64-byte aligned (docs/isa.md), so the output row may need fewer words than the input gives:
// the surplus (table padding) is dropped.

`default_nettype none

module op_embed #(
  parameter int DATA_W     = 128,  // bus bits (128..512)
  parameter int MAX_TOKENS = 8     // tokens per op
) (
  input  wire logic              clk_i,
  input  wire logic              rst_ni,
  input  wire logic              start_i,
  input  wire logic [15:0]       tokens_i,
  input  wire logic [31:0]       hidden_i,
  input  wire logic [63:0]       ids_i,
  input  wire logic [63:0]       table_i,
  input  wire logic [63:0]       dst_i,
  output      logic              done_o,
  // Read master command / data.
  output      logic              rd_cmd_valid_o,
  input  wire logic              rd_cmd_ready_i,
  output      logic [63:0]       rd_cmd_addr_o,
  output      logic [31:0]       rd_cmd_beats_o,
  input  wire logic              rd_valid_i,
  output      logic              rd_ready_o,
  input  wire logic [DATA_W-1:0] rd_data_i,
  // Write master command / data / completion.
  output      logic              wr_cmd_valid_o,
  input  wire logic              wr_cmd_ready_i,
  output      logic [63:0]       wr_cmd_addr_o,
  output      logic [31:0]       wr_cmd_beats_o,
  output      logic              wr_valid_o,
  input  wire logic              wr_ready_i,
  output      logic [DATA_W-1:0] wr_data_o,
  input  wire logic              wr_done_i
);

  localparam int BYTES = DATA_W / 8;
  localparam int LANES = DATA_W / 32; // values per output word
  localparam int TW    = MAX_TOKENS > 1 ? $clog2(MAX_TOKENS) : 1;

  // fp16 -> Q.16 int32, exactly as model::numerics::f16_to_fx, in two halves: f16_pre as a word
  // arrives (exponent, shift and rounding: the magnitude, its sign, whether it saturates), fx_post
  // as it leaves (the sign): the whole conversion in front of the write data was the engine's
  // longest path. f16_pre: only e = 30 saturates (m * 2^21 >= 2^31); every other value is one
  // left shift of m by e - 1 into 8 fraction bits (a right shift, a left one and their
  // subtractions were the engine's longest path), rounded by its round and sticky bits (no
  // compares of the remainder; equal to the straightforward conversion for every input:
  // host/tests/proofs.rs).
  localparam int PRE_W = 34;  // {saturate, negative, magnitude}
  // [proof: f16_pre begin]
  function automatic logic [PRE_W-1:0] f16_pre(input logic [15:0] h);
    logic [4:0]  e;
    logic [10:0] m;
    logic [39:0] t;      // the value times 2^8: m << (e - 1), or m for a subnormal (e = 0)
    logic [31:0] q;
    logic        round;  // the last bit below the point
    logic        sticky; // any bit below it
    e = h[14:10];
    m = (e == 5'd0) ? {1'b0, h[9:0]} : {1'b1, h[9:0]};
    t = 40'(m) << ((e == 5'd0) ? 5'd0 : e - 5'd1);
    q = t[39:8];
    round  = t[7];
    sticky = |t[6:0];
    if (e == 5'd31) f16_pre = h[9:0] != '0 ? '0 : {1'b1, h[15], 32'd0};  // NaN: 0; infinities saturate
    else if (e == 5'd30) f16_pre = {1'b1, h[15], 32'h8000_0000};          // m * 2^21 >= 2^31
    else f16_pre = {1'b0, h[15], q + 32'(round && (sticky || q[0]))};     // e >= 9: exact
  endfunction
  // [proof: f16_pre end]
  function automatic logic [31:0] fx_post(input logic [PRE_W-1:0] p);
    if (p[33]) fx_post = p[32] ? 32'h8000_0000 : 32'h7fff_ffff;
    else fx_post = p[32] ? -p[31:0] : p[31:0];
  endfunction

  typedef enum logic [2:0] {IDLE, IDS_CMD, IDS_DATA, ROW_ADDR, ROW_CMD, ROW_DATA, ROW_WAIT} state_e;
  state_e state_q;

  logic [31:0] ids_q [MAX_TOKENS];
  logic [15:0] tokens_q, tok_q, idx_q;
  logic [63:0] ids_addr_q, table_q, dst_q;
  logic [31:0] in_left_q, out_left_q;
  logic [34:0] in_stride_q, out_stride_q;  // row bytes: a 32-bit count of fp16 / int32, padded
  // A row's bus words (the strides are whole 64-byte units, so whole words).
  wire logic [31:0] in_beats  = 32'(in_stride_q / 35'(BYTES));
  wire logic [31:0] out_beats = 32'(out_stride_q / 35'(BYTES));
  logic        second_q;  // emitting the upper half of the held input word
  logic [DATA_W/2-1:0] hold_q;  // the held word's high half (its low half is in pre_q first)
  logic [LANES*PRE_W-1:0] pre_q;  // the half being emitted, f16_pre'd: a word's low half as it
                                  // arrives, its high half as the low one leaves
  logic        hold_valid_q;
  logic        rd_cmd_sent_q, wr_cmd_sent_q;

  wire logic [31:0] id_words = (32'(tokens_q) * 4 + BYTES - 1) / BYTES;

  assign rd_cmd_valid_o = (state_q == IDS_CMD) || (state_q == ROW_CMD && !rd_cmd_sent_q);
  // A token's table row and output row, worked out in ROW_ADDR's five cycles (free-running:
  // the token's id selected; the products in two (mul_pieces: the DSPs' pieces, their sums),
  // the id's in two halves; the halves' sum; the rows. The id x stride multiply-add in front of
  // the command, then the id's select in front of the multiply, then the multiply's DSPs and
  // their adders in one cycle were the unit's longest path).
  localparam int ADDR_WAIT = 4;  // ROW_ADDR's cycles after the first
  logic [31:0] id_q;
  logic signed [52:0] src_lo, src_hi, dst_off;  // stride x id[15:0], x id[31:16]; x token
  logic [63:0] src_off_q, src_row_q, dst_row_q;
  logic [2:0]  addr_wait_q;
  mul_pieces #(.A_W (36), .B_W (17)) u_src_lo (
    .clk_i, .en1_i (1'b1), .en2_i (1'b1), .a_i ($signed({1'b0, in_stride_q})), .b_i ($signed({1'b0, id_q[15:0]})),
    .p_o (src_lo)
  );
  mul_pieces #(.A_W (36), .B_W (17)) u_src_hi (
    .clk_i, .en1_i (1'b1), .en2_i (1'b1), .a_i ($signed({1'b0, in_stride_q})), .b_i ($signed({1'b0, id_q[31:16]})),
    .p_o (src_hi)
  );
  mul_pieces #(.A_W (36), .B_W (17)) u_dst_off (
    .clk_i, .en1_i (1'b1), .en2_i (1'b1), .a_i ($signed({1'b0, out_stride_q})), .b_i ($signed({1'b0, tok_q})),
    .p_o (dst_off)
  );
  always_ff @(posedge clk_i) begin
    id_q      <= ids_q[TW'(tok_q)];
    src_off_q <= 64'(src_lo) + (64'(src_hi) << 16);
    src_row_q <= table_q + src_off_q;
    dst_row_q <= dst_q + 64'(dst_off);
  end
  assign rd_cmd_addr_o  = state_q == IDS_CMD ? ids_addr_q : src_row_q;
  assign rd_cmd_beats_o = state_q == IDS_CMD ? id_words : in_beats;
  assign wr_cmd_valid_o = state_q == ROW_CMD && !wr_cmd_sent_q;
  assign wr_cmd_addr_o  = dst_row_q;
  assign wr_cmd_beats_o = out_beats;

  // Data path: hold one input word, emit its two halves (or drop them past the row's end).
  wire logic emit = hold_valid_q && out_left_q != '0;
  assign wr_valid_o = state_q == ROW_DATA && emit;
  always_comb begin
    for (int l = 0; l < LANES; l++) begin
      wr_data_o[32*l +: 32] = fx_post(pre_q[PRE_W*l +: PRE_W]);
    end
  end
  wire logic out_fire = wr_valid_o && wr_ready_i;
  wire logic capture  = rd_valid_i && rd_ready_o && state_q == ROW_DATA;
  wire logic drop = state_q == ROW_DATA && hold_valid_q && out_left_q == '0;
  wire logic half_done = out_fire || drop;
  assign rd_ready_o = state_q == IDS_DATA || (state_q == ROW_DATA && (!hold_valid_q || (half_done && second_q)));
  // A word is taken only when none is held or its high half leaves, so a capture and the low
  // half leaving never meet; one set of converters behind a multiplexer serves both, switched
  // by registers alone (while a low half is out, the next conversion is its high half's).
  wire logic [DATA_W/2-1:0] pre_src = hold_valid_q && !second_q ? hold_q : rd_data_i[DATA_W/2-1:0];
  always_ff @(posedge clk_i) begin
    if (capture || (half_done && !second_q)) begin
      for (int l = 0; l < LANES; l++) pre_q[PRE_W*l +: PRE_W] <= f16_pre(pre_src[16*l +: 16]);
    end
  end

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q       <= IDLE;
      done_o        <= 1'b0;
      tokens_q      <= '0;
      tok_q         <= '0;
      idx_q         <= '0;
      ids_addr_q    <= '0;
      table_q       <= '0;
      dst_q         <= '0;
      in_left_q     <= '0;
      out_left_q    <= '0;
      in_stride_q   <= '0;
      out_stride_q  <= '0;
      second_q      <= 1'b0;
      hold_q        <= '0;
      hold_valid_q  <= 1'b0;
      rd_cmd_sent_q <= 1'b0;
      wr_cmd_sent_q <= 1'b0;
      addr_wait_q   <= '0;
    end else begin
      done_o <= 1'b0;
      unique case (state_q)
        IDLE: if (start_i) begin
          tokens_q     <= tokens_i;
          ids_addr_q   <= ids_i;
          table_q      <= table_i;
          dst_q        <= dst_i;
          in_stride_q  <= 35'(((64'(hidden_i) * 2 + 63) >> 6) << 6);
          out_stride_q <= 35'(((64'(hidden_i) * 4 + 63) >> 6) << 6);
          idx_q        <= '0;
          tok_q        <= '0;
          state_q      <= tokens_i == '0 ? IDLE : IDS_CMD;
          done_o       <= tokens_i == '0;
        end
        IDS_CMD: if (rd_cmd_ready_i) state_q <= IDS_DATA;
        IDS_DATA: if (rd_valid_i) begin
          for (int l = 0; l < BYTES / 4; l++) begin
            if (32'(idx_q) + 32'(l) < MAX_TOKENS) ids_q[TW'(32'(idx_q) + 32'(l))] <= rd_data_i[32*l +: 32];
          end
          idx_q <= idx_q + 16'(BYTES / 4);
          if (32'(idx_q) + BYTES / 4 >= 32'(tokens_q)) begin
            state_q       <= ROW_ADDR;
            addr_wait_q   <= 3'(ADDR_WAIT);
            rd_cmd_sent_q <= 1'b0;
            wr_cmd_sent_q <= 1'b0;
          end
        end
        ROW_ADDR: begin
          if (addr_wait_q != '0) addr_wait_q <= addr_wait_q - 1;
          else state_q <= ROW_CMD;
        end
        ROW_CMD: begin
          if (rd_cmd_valid_o && rd_cmd_ready_i) rd_cmd_sent_q <= 1'b1;
          if (wr_cmd_valid_o && wr_cmd_ready_i) wr_cmd_sent_q <= 1'b1;
          if ((rd_cmd_sent_q || rd_cmd_ready_i) && (wr_cmd_sent_q || wr_cmd_ready_i)) begin
            state_q    <= ROW_DATA;
            in_left_q  <= in_beats;
            out_left_q <= out_beats;
            second_q   <= 1'b0;
          end
        end
        ROW_DATA: begin
          if (half_done) begin
            if (out_fire) out_left_q <= out_left_q - 1;
            if (second_q) begin
              hold_valid_q <= 1'b0;
              second_q     <= 1'b0;
            end else begin
              second_q <= 1'b1;
            end
          end
          if (capture) begin
            hold_q       <= rd_data_i[DATA_W-1:DATA_W/2];
            hold_valid_q <= 1'b1;
            in_left_q    <= in_left_q - 1;
          end
          if (in_left_q == '0 && !hold_valid_q) state_q <= ROW_WAIT;
        end
        ROW_WAIT: if (wr_done_i) begin
          if (32'(tok_q) + 1 == 32'(tokens_q)) begin
            state_q <= IDLE;
            done_o  <= 1'b1;
          end else begin
            tok_q         <= tok_q + 1;
            state_q       <= ROW_ADDR;
            addr_wait_q   <= 3'(ADDR_WAIT);
            rd_cmd_sent_q <= 1'b0;
            wr_cmd_sent_q <= 1'b0;
          end
        end
        default: state_q <= IDLE;
      endcase
    end
  end

endmodule

`resetall
