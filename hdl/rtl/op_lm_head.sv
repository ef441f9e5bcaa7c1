// SPDX-License-Identifier: Apache-2.0
//
// op_lm_head: the LM_HEAD op on the FPGA (TeLLMe leaves it to the CPU). The last of `tokens`
// hidden rows goes through the final RMSNorm fused into int16 quantization (vec_quant, qmax
// 32767), then every vocabulary row: acc = sum code_r,c * x_c (int8 or int4 x int16, exact),
// logit_r = sat32(requant(acc, sx * s_r, 16)) -- Q.16 logits (docs/numerics.md §8).
//
// The head is the largest read of a decode step (vocab x hidden x HEAD_BITS / 8 bytes), so it
// streams over every memory port: row lane p reads rows p, p + PORTS, p + 2 PORTS, ... through
// its own port (row codes, then the row's scale, issued ahead of use), one LANES-byte element
// = CODES codes per cycle (hidden is a multiple of CODES, checked by the config). LANES is the
// bus word: with masters wider than 16 bytes the head streams at their rate, not at 16 bytes
// per port and cycle (the head's lanes then bound decode below the DRAM's rate). Int4 codes
// (two per byte, low nibble first) double the codes per element, so a port's bytes per cycle and
// the head's cycles halve with its bytes. Each lane holds its finished logit until the writer, which emits
// logits in row order, takes it.

`default_nettype none

module op_lm_head #(
  parameter int DATA_W    = 128,
  parameter int VEC_DEPTH = 256,     // longest hidden row
  parameter int HEAD_QMAX = 32767,   // activation code range of the LM head
  parameter int HEAD_BITS = 8,       // bits per weight code: 8 or 4
  parameter int LANES     = 16,      // bytes per cycle and port: a bus word (elem_reader's WIDE)
  parameter int PORTS     = 1,       // read masters: the rd_* bundle and PORTS-1 wrd_*
  parameter int XP        = PORTS > 1 ? PORTS - 1 : 1  // derived: wrd_* slots
) (
  input  wire logic                clk_i,
  input  wire logic                rst_ni,
  input  wire logic                start_i,
  input  wire logic [15:0]         tokens_i,
  input  wire logic [63:0]         src_i,
  input  wire logic [63:0]         norm_i,
  input  wire logic [63:0]         head_i,
  input  wire logic [63:0]         head_scales_i,
  input  wire logic [63:0]         dst_i,
  input  wire logic [31:0]         hidden_i,
  input  wire logic [31:0]         vocab_i,
  input  wire logic [31:0]         eps_i,
  input  wire logic [7:0]          head_bits_i,  // the program's code width: must be HEAD_BITS
  output      logic                done_o,
  output      logic                err_o,
  output      logic                rd_cmd_valid_o,
  input  wire logic                rd_cmd_ready_i,
  output      logic [63:0]         rd_cmd_addr_o,
  output      logic [31:0]         rd_cmd_beats_o,
  input  wire logic                rd_valid_i,
  output      logic                rd_ready_o,
  input  wire logic [DATA_W-1:0]   rd_data_i,
  output      logic                wr_cmd_valid_o,
  input  wire logic                wr_cmd_ready_i,
  output      logic [63:0]         wr_cmd_addr_o,
  output      logic [31:0]         wr_cmd_beats_o,
  output      logic                wr_valid_o,
  input  wire logic                wr_ready_i,
  output      logic [DATA_W-1:0]   wr_data_o,
  output      logic [DATA_W/8-1:0] wr_strb_o,
  input  wire logic                wr_done_i,
  // Read masters 1..PORTS-1 (flattened, master 1 in the low bits).
  output      logic [XP-1:0]        wrd_cmd_valid_o,
  input  wire logic [XP-1:0]        wrd_cmd_ready_i,
  output      logic [XP*64-1:0]     wrd_cmd_addr_o,
  output      logic [XP*32-1:0]     wrd_cmd_beats_o,
  input  wire logic [XP-1:0]        wrd_valid_i,
  output      logic [XP-1:0]        wrd_ready_o,
  input  wire logic [XP*DATA_W-1:0] wrd_data_i
);

  localparam int PW    = PORTS > 1 ? $clog2(PORTS) : 1;
  localparam int CODES = LANES * 8 / HEAD_BITS;  // weight codes per element
  if (HEAD_BITS != 8 && HEAD_BITS != 4) begin : g_bad_bits
`ifdef __ICARUS__
    op_lm_head_HEAD_BITS_must_be_8_or_4 u_fail ();
`else
    $error("op_lm_head: HEAD_BITS = %0d; codes are 8 or 4 bits", HEAD_BITS);
`endif
  end

  typedef enum logic [3:0] {IDLE, SHIFT_CMD, SHIFT_DATA, GAIN_CMD, GAIN_DATA, ROW_CMD, QUANT, ROWS, FINISH} state_e;
  state_e state_q;

  logic [15:0] tokens_q;
  logic [31:0] hidden_q, vocab_q, eps_q, idx_q, sx_q, wr_row_q;
  logic [PW-1:0] wr_lane_q;  // lane holding logit wr_row_q (wr_row_q mod PORTS)
  logic [63:0] src_q, norm_q, head_q, head_scales_q, dst_q;
  logic signed [31:0] shift_q;
  logic        quant_started_q, cmd_sent_q;

  wire logic [31:0] groups     = hidden_q / CODES;  // CODES-wide code groups per row
  wire logic [31:0] gain_words = (hidden_q + 32'd7) >> 3;
  // Row sizes and the last token's row depend only on the op's arguments: registered (the
  // address arithmetic in front of a read command was the engine's longest path), the last
  // row's address in three steps (row size, offset, address: the 64-bit multiply-add in one was
  // the next), settled four cycles after the start -- the first use is ROW_CMD, after the SHIFT
  // and GAIN reads; a start with no tokens never gets there.
  // (The last token's offset multiplies registered operands at their real widths: the token's
  // decrement in front of a 16 x 64-bit multiply was the next longest path. x_row < 2^32:
  // hidden is at most VEC_DEPTH, checked at the start.)
  logic [63:0] head_row, row_stride, x_row, x_last_row;
  logic [47:0] x_off;
  logic [15:0] last_tok;
  logic        unused_x_row;
  assign unused_x_row = ^x_row[63:32];
  always_ff @(posedge clk_i) begin
    head_row   <= trit_num::row_bytes(64'(hidden_q) * HEAD_BITS / 8);
    row_stride <= 64'(PORTS) * head_row;  // a lane's rows are PORTS apart
    x_row      <= trit_num::row_bytes(64'(hidden_q) * 4);
    last_tok   <= tokens_q - 16'd1;
    x_off      <= last_tok * x_row[31:0];
    x_last_row <= src_q + 64'(x_off);
  end

  // ---------------------------------------------------------------- readers, one per port
  logic [PORTS-1:0]      rcmd_valid, rcmd_ready, el_valid, el_ready;
  logic [63:0]           rcmd_addr  [PORTS];
  logic [31:0]           rcmd_count [PORTS];
  logic [2:0]            rcmd_size  [PORTS];
  logic [31:0]           el_data    [PORTS];
  logic [8*LANES-1:0]    el_wide    [PORTS];
  logic [PORTS-1:0]      m_cmd_valid, m_cmd_ready, m_valid, m_ready;
  logic [63:0]           m_cmd_addr  [PORTS];
  logic [31:0]           m_cmd_beats [PORTS];
  logic [DATA_W-1:0]     m_data      [PORTS];
  for (genvar p = 0; p < PORTS; p++) begin : g_rd
    elem_reader #(.DATA_W (DATA_W), .QUEUE (8), .WIDE (LANES)) u_rd (
      .clk_i, .rst_ni,
      .cmd_valid_i (rcmd_valid[p]), .cmd_ready_o (rcmd_ready[p]), .cmd_addr_i (rcmd_addr[p]),
      .cmd_count_i (rcmd_count[p]), .cmd_size_i (rcmd_size[p]),
      .el_valid_o (el_valid[p]), .el_ready_i (el_ready[p]), .el_data_o (el_data[p]), .el_wide_o (el_wide[p]),
      .rd_cmd_valid_o (m_cmd_valid[p]), .rd_cmd_ready_i (m_cmd_ready[p]), .rd_cmd_addr_o (m_cmd_addr[p]),
      .rd_cmd_beats_o (m_cmd_beats[p]), .rd_valid_i (m_valid[p]), .rd_ready_o (m_ready[p]), .rd_data_i (m_data[p])
    );
  end
  assign rd_cmd_valid_o = m_cmd_valid[0];
  assign rd_cmd_addr_o  = m_cmd_addr[0];
  assign rd_cmd_beats_o = m_cmd_beats[0];
  assign rd_ready_o     = m_ready[0];
  assign m_cmd_ready[0] = rd_cmd_ready_i;
  assign m_valid[0]     = rd_valid_i;
  assign m_data[0]      = rd_data_i;
  for (genvar p = 1; p < XP + 1; p++) begin : g_wrd
    if (p < PORTS) begin : g_on
      assign wrd_cmd_valid_o[p-1]            = m_cmd_valid[p];
      assign wrd_cmd_addr_o[64*(p-1) +: 64]  = m_cmd_addr[p];
      assign wrd_cmd_beats_o[32*(p-1) +: 32] = m_cmd_beats[p];
      assign wrd_ready_o[p-1]                = m_ready[p];
      assign m_cmd_ready[p]                  = wrd_cmd_ready_i[p-1];
      assign m_valid[p]                      = wrd_valid_i[p-1];
      assign m_data[p]                       = wrd_data_i[DATA_W*(p-1) +: DATA_W];
    end else begin : g_off
      assign wrd_cmd_valid_o[p-1]            = 1'b0;
      assign wrd_cmd_addr_o[64*(p-1) +: 64]  = '0;
      assign wrd_cmd_beats_o[32*(p-1) +: 32] = '0;
      assign wrd_ready_o[p-1]                = 1'b0;
    end
  end

  // ---------------------------------------------------------------- final norm + int16 codes
  // Before the rows, reader 0 fetches the norm shift, the gains and the hidden row.
  logic q_in_ready, q_code_valid, q_done, q_ready;  // q_ready: started only after done_o
  logic signed [15:0] q_code;
  logic [31:0] q_scale;
  wire logic q_start = state_q == QUANT && !quant_started_q;
  wire logic fe_fire = el_valid[0] && el_ready[0];  // front-end elements (reader 0)
  vec_quant #(.DEPTH (VEC_DEPTH)) u_quant (
    .clk_i, .rst_ni,
    .g_we_i (state_q == GAIN_DATA && fe_fire), .g_addr_i (idx_q), .g_data_i (el_wide[0][127:0]),
    .start_i (q_start), .ready_o (q_ready), .n_i (hidden_q), .ex_i (-32'sd16), .shift_i (shift_q), .norm_i (1'b1),
    .qmax_i (16'(HEAD_QMAX)), .eps_i (eps_q),
    .in_valid_i (state_q == QUANT && quant_started_q && el_valid[0]), .in_ready_o (q_in_ready),
    .in_data_i (el_data[0]),
    .code_valid_o (q_code_valid), .code_ready_i (1'b1), .code_o (q_code),
    .done_o (q_done), .scale_o (q_scale)
  );
  // The codes in rows of CODES (one code group, what a lane multiplies per cycle), assembled as
  // they arrive and written a row at a time: an element-indexed array made yosys build a
  // VEC_DEPTH-way multiplexer per code a lane reads. Block RAM (a copy per lane's read port):
  // with whole-word lanes the rows are few and wide (48 x 512 bits at tellme-kv260's 256-bit
  // bus), and yosys chose LUT-RAM, 2.2 k LUTs more where LUTs bind.
  localparam int XROWS = (VEC_DEPTH + CODES - 1) / CODES;
  localparam int XW    = XROWS > 1 ? $clog2(XROWS) : 1;
  (* ram_style = "block" *) logic [16*CODES-1:0] xc [XROWS];
  logic [16*(CODES-1)-1:0] xrow_q;  // the row's codes so far, the first in the low bits
  wire logic [16*CODES-1:0] xrow_in = {q_code, xrow_q};
  always_ff @(posedge clk_i) begin
    if (q_code_valid) begin
      xrow_q <= xrow_in[16*CODES-1:16];
      if (idx_q % CODES == CODES - 1) xc[XW'(idx_q / CODES)] <= xrow_in;
    end
  end

  // ---------------------------------------------------------------- row lanes
  logic [PORTS-1:0] hold_q;            // lane p holds the logit of its last finished row
  logic [31:0]      held  [PORTS];
  logic [PORTS-1:0] take;              // the writer takes lane p's logit this cycle
  for (genvar p = 0; p < PORTS; p++) begin : g_lane
    logic [31:0]        row_q;         // row of the next command
    logic               scale_next_q;  // ... which is its scale (else its codes; they alternate)
    logic [31:0]        gidx_q;        // code group within the current row
    logic signed [47:0] acc_q;
    logic               hold_l;        // this lane's hold_q / held
    logic [31:0]        held_l;
    assign hold_q[p] = hold_l;
    assign held[p]   = held_l;
    wire logic more = row_q < vocab_q;
    // The next command's row, codes and scale addresses, advanced by a stride per row (no
    // per-command multiply): set while the op is not in ROWS.
    logic [63:0] code_addr_q, scale_addr_q;
    always_comb begin
      rcmd_valid[p] = 1'b0;
      rcmd_addr[p]  = '0;
      rcmd_count[p] = 32'd1;
      rcmd_size[p]  = 3'd2;
      if (state_q == ROWS) begin
        rcmd_valid[p] = more;
        if (scale_next_q) begin
          rcmd_addr[p] = scale_addr_q;
        end else begin
          rcmd_addr[p]  = code_addr_q;
          rcmd_count[p] = groups;
          rcmd_size[p]  = 3'($clog2(LANES));
        end
      end else if (p == 0) begin
        unique case (state_q)
          SHIFT_CMD: begin rcmd_valid[p] = 1'b1; rcmd_addr[p] = norm_q; end
          // Eight int16 gains per 16-byte element.
          GAIN_CMD: begin
            rcmd_valid[p] = 1'b1;
            rcmd_addr[p]  = norm_q + 64'd64;
            rcmd_count[p] = gain_words;
            rcmd_size[p]  = 3'd4;
          end
          ROW_CMD: begin
            rcmd_valid[p] = 1'b1;
            rcmd_addr[p]  = x_last_row;
            rcmd_count[p] = hidden_q;
          end
          default: ;
        endcase
      end
    end
    wire logic is_scale = gidx_q == groups;
    // The activation codes of group gidx_q, read into a register beside the group's head codes
    // (stage 1 below; a block-RAM read port; the rows are all written before ROWS, during QUANT).
    logic [31:0] gidx_next;
    logic [16*CODES-1:0] x_codes;
    always_ff @(posedge clk_i) x_codes <= xc[XW'(gidx_q)];
    logic signed [47:0] dot_q;  // one code group's products summed (below)
    // The logit in stages of one multiply each: the row's scale registered off the reader's
    // queue (the queue's read into the product was the engine's longest path); c = sx * the
    // scale in three (the significands' product, its normalization, its rounding), the row's
    // sum held beside it; the sum times c's significand in two (mul_pieces); rounded and
    // saturated in two (requant_round's window, then the rest) into the hold slot.
    logic [6:0]         lv_q;      // stage 0 .. 6 holds a logit
    // The lane's first row, p rows into the head: its offset registered (head_row settles at
    // the start; the lane's first code read is in ROWS, after the SHIFT and GAIN reads), so the
    // multiply is not in front of the add (its longest path); the product as shifted adds (a
    // DSP with its adders was the next: p is the lane's constant).
    logic [63:0]        lane_off_q;
    always_ff @(posedge clk_i) begin
      logic [63:0] off;
      off = '0;
      for (int b = 0; b < 8; b++) if (((p >> b) & 1) != 0) off = off + (head_row << b);
      lane_off_q <= off;
    end
    logic [31:0]        l_scale_q;
    logic [trit_num::FMUL_W-1:0]  l0_c_q;
    logic [trit_num::FNORM_W-1:0] l1_n_q;  // c normalized, before its rounding
    logic [31:0]        l1_c_q;
    logic signed [47:0] l1_acc_q, l1_acc_d_q;  // the row's sum; a cycle later, beside c
    logic signed [72:0] l3_p_q;  // a 48-bit sum times a significand
    logic [7:0]         l2_e_q;  // c's exponent, beside the product's first stage
    wire logic signed [24:0] l1_sig = trit_num::significand(l1_c_q);
    always_ff @(posedge clk_i) begin
      l_scale_q <= el_data[p];
      l0_c_q    <= trit_num::fp32_mul_front(sx_q, l_scale_q);
      l1_n_q    <= trit_num::fp32_mul_norm(l0_c_q);
      l1_c_q    <= trit_num::fp32_mul_round(l1_n_q);
      if (lv_q[1]) l1_acc_q <= acc_q + dot_q;
      l1_acc_d_q <= l1_acc_q;
      l2_e_q    <= l1_c_q[30:23];
    end
    mul_pieces #(.A_W (48), .B_W (25)) u_mul (
      .clk_i, .en1_i (1'b1), .en2_i (1'b1), .a_i (l1_acc_d_q), .b_i (l1_sig), .p_o (l3_p_q)
    );
    logic signed [31:0] logit;
    // The rounding's shift and masks decoded from c's exponent beside the product's sum; its
    // window registered (the shift, rounding and saturation in one cycle after the sum were
    // the engine's longest path).
    requant_round #(.LANES(1), .P_W(73), .FRAC(16), .DECODE_REG(1'b1), .APPLY_REG(1'b1)) u_round (
      .clk_i, .en_i (1'b1), .p_i (l3_p_q), .e_i (l2_e_q), .y_o (logit)
    );
    // A row's codes always flow; its scale (which finishes the row) waits until no logit is in
    // the stages and the hold slot is free (or being taken): the slot is free when it lands.
    wire logic row_ready = state_q == ROWS && (!is_scale || (lv_q == '0 && (!hold_q[p] || take[p])));
    if (p == 0) begin : g_fe
      assign el_ready[p] = state_q == SHIFT_DATA || state_q == GAIN_DATA ||
                           (state_q == QUANT && quant_started_q && q_in_ready) || row_ready;
    end else begin : g_row
      assign el_ready[p] = row_ready;
    end
    wire logic fire = state_q == ROWS && el_valid[p] && el_ready[p];
    assign gidx_next = state_q != ROWS || (fire && is_scale) ? 32'd0 : fire ? gidx_q + 1 : gidx_q;
    // One group's CODES products, exact, in three registered stages (the group's codes and the
    // activation's taken; their products, zero for a fire that is not a code group; their sum),
    // added into acc_q a cycle later: the reader's queue, a multiply, the sum tree and the
    // accumulator in one cycle were the engine's longest path, then the queue's read and the
    // fire's decode in front of the products. A row's sum is complete in acc_q + dot_q two
    // cycles after its scale fires (its last group fired a cycle before the scale at the
    // latest), when stage 1 of the logit takes it.
    localparam int PROD_W = 16 + HEAD_BITS;
    logic [HEAD_BITS*CODES-1:0] e_codes_q;  // stage 1: the group's head codes (x_codes: the
    logic                       e_fire_q;   // activation's); it is a code group
    logic signed [PROD_W-1:0]   prod_q [CODES];
    always_ff @(posedge clk_i) begin
      e_codes_q <= el_wide[p][HEAD_BITS*CODES-1:0];
      e_fire_q  <= fire && !is_scale;
      for (int j = 0; j < CODES; j++) begin
        prod_q[j] <= e_fire_q ?
                     PROD_W'($signed(x_codes[16*j +: 16]) * $signed(e_codes_q[HEAD_BITS*j +: HEAD_BITS])) : '0;
      end
    end
    logic signed [47:0]       prod_sum;
    always_comb begin
      prod_sum = '0;
      for (int j = 0; j < CODES; j++) prod_sum = prod_sum + 48'(prod_q[j]);
    end
    always_ff @(posedge clk_i) dot_q <= prod_sum;
    always_ff @(posedge clk_i or negedge rst_ni) begin
      if (!rst_ni) begin
        code_addr_q  <= '0;
        scale_addr_q <= '0;
        row_q        <= '0;
        scale_next_q <= 1'b0;
        gidx_q  <= '0;
        acc_q   <= '0;
        lv_q    <= '0;
        hold_l  <= 1'b0;
        held_l  <= '0;
      end else begin
        gidx_q <= gidx_next;
        if (state_q != ROWS) begin
          code_addr_q  <= head_q + lane_off_q;
          scale_addr_q <= head_scales_q + 64'(4 * p);
          row_q        <= 32'(p);
          scale_next_q <= 1'b0;
          acc_q        <= '0;
          lv_q    <= '0;
          hold_l  <= 1'b0;
        end else begin
          if (rcmd_valid[p] && rcmd_ready[p]) begin
            scale_next_q <= !scale_next_q;
            if (scale_next_q) begin
              scale_addr_q <= scale_addr_q + 64'(4 * PORTS);
              row_q        <= row_q + 32'(PORTS);
            end else begin
              code_addr_q <= code_addr_q + row_stride;
            end
          end
          if (take[p]) hold_l <= 1'b0;
          lv_q <= {lv_q[5:0], fire && is_scale};
          if (lv_q[6]) begin
            hold_l <= 1'b1;
            held_l <= 32'(logit);
          end
          // The row's sum went to stage 1 (lv_q[1]: its scale fired two cycles ago); the next
          // row's first group reaches dot_q two cycles later at the earliest.
          acc_q <= lv_q[1] ? '0 : acc_q + dot_q;
        end
      end
    end
  end

  // ---------------------------------------------------------------- logits, in row order
  logic wcmd_ready, wel_ready, w_idle;
  wire logic wel_valid = state_q == ROWS && cmd_sent_q && wr_row_q < vocab_q && hold_q[wr_lane_q];
  elem_writer #(.DATA_W (DATA_W)) u_wr (
    .clk_i, .rst_ni,
    .cmd_valid_i (state_q == ROWS && !cmd_sent_q), .cmd_ready_o (wcmd_ready),
    .cmd_addr_i (dst_q), .cmd_count_i (vocab_q), .cmd_size_i (3'd2),
    .el_valid_i (wel_valid), .el_ready_o (wel_ready), .el_data_i ({96'd0, held[wr_lane_q]}), .el_len_i (5'd4),
    .idle_o (w_idle),
    .wr_cmd_valid_o, .wr_cmd_ready_i, .wr_cmd_addr_o, .wr_cmd_beats_o, .wr_valid_o, .wr_ready_i, .wr_data_o,
    .wr_strb_o, .wr_done_i
  );
  always_comb begin
    take = '0;
    if (wel_valid && wel_ready) take[wr_lane_q] = 1'b1;
  end

  // A program the engine cannot run: a row it cannot hold, no final norm, or head codes of
  // another width than the one it was generated for.
  wire logic bad_args = hidden_i == '0 || hidden_i > VEC_DEPTH || hidden_i % CODES != 0 || norm_i == '0 ||
                        32'(head_bits_i) != HEAD_BITS;
  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q         <= IDLE;
      tokens_q        <= '0;
      hidden_q        <= '0;
      vocab_q         <= '0;
      eps_q           <= '0;
      idx_q           <= '0;
      sx_q            <= '0;
      wr_row_q        <= '0;
      wr_lane_q       <= '0;
      src_q           <= '0;
      norm_q          <= '0;
      head_q          <= '0;
      head_scales_q   <= '0;
      dst_q           <= '0;
      shift_q         <= '0;
      quant_started_q <= 1'b0;
      cmd_sent_q      <= 1'b0;
      done_o          <= 1'b0;
      err_o           <= 1'b0;
    end else begin
      done_o <= 1'b0;
      unique case (state_q)
        IDLE: if (start_i) begin
          tokens_q      <= tokens_i;
          hidden_q      <= hidden_i;
          vocab_q       <= vocab_i;
          eps_q         <= eps_i;
          src_q         <= src_i;
          norm_q        <= norm_i;
          head_q        <= head_i;
          head_scales_q <= head_scales_i;
          dst_q         <= dst_i;
          idx_q         <= '0;
          err_o         <= bad_args;
          if (bad_args || tokens_i == '0 || vocab_i == '0) begin
            state_q <= FINISH;
          end else begin
            state_q <= SHIFT_CMD;
          end
        end
        SHIFT_CMD: if (rcmd_ready[0]) state_q <= SHIFT_DATA;
        SHIFT_DATA: if (fe_fire) begin
          shift_q <= $signed(el_data[0]);
          state_q <= GAIN_CMD;
        end
        GAIN_CMD: if (rcmd_ready[0]) state_q <= GAIN_DATA;
        GAIN_DATA: if (fe_fire) begin
          idx_q <= idx_q + 1;
          if (idx_q + 1 == gain_words) state_q <= ROW_CMD;
        end
        ROW_CMD: if (rcmd_ready[0]) begin
          idx_q           <= '0;
          quant_started_q <= 1'b0;
          state_q         <= QUANT;
        end
        QUANT: begin
          if (q_start) quant_started_q <= 1'b1;
          if (q_code_valid) idx_q <= idx_q + 1;
          if (q_done) begin
            sx_q       <= q_scale;
            idx_q      <= '0;
            wr_row_q   <= '0;
            wr_lane_q  <= '0;
            cmd_sent_q <= 1'b0;
            state_q    <= ROWS;
          end
        end
        ROWS: begin
          if (!cmd_sent_q && wcmd_ready) cmd_sent_q <= 1'b1;
          if (wel_valid && wel_ready) begin
            wr_row_q  <= wr_row_q + 1;
            wr_lane_q <= 32'(wr_lane_q) + 1 == PORTS ? '0 : wr_lane_q + 1;
            if (wr_row_q + 1 == vocab_q) state_q <= FINISH;
          end
        end
        FINISH: if (w_idle) begin
          done_o  <= 1'b1;
          state_q <= IDLE;
        end
        default: state_q <= IDLE;
      endcase
    end
  end

  logic unused;
  assign unused = ^{q_code, q_ready};

endmodule

`resetall
