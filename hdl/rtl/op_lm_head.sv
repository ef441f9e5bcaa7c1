// SPDX-License-Identifier: Apache-2.0
//
// op_lm_head: the LM_HEAD op on the FPGA (TeLLMe leaves it to the CPU). The last of `tokens`
// hidden rows goes through the final RMSNorm fused into int16 quantization (vec_quant, qmax
// 32767), then every vocabulary row: acc = sum code_r,c * x_c (int8 x int16, exact),
// logit_r = sat32(requant(acc, sx * s_r, 16)) -- Q.16 logits (docs/numerics.md §8). Row reads
// are issued ahead of the row being multiplied and arrive LANES codes per cycle (hidden is a
// multiple of LANES: heads x head_dim); logits stream out as one write.

`default_nettype none

module op_lm_head #(
  parameter int DATA_W    = 128,
  parameter int VEC_DEPTH = 256,     // longest hidden row
  parameter int HEAD_QMAX = 32767,   // activation code range of the LM head
  parameter int LANES     = 16       // int8 codes per cycle (one 16-byte element of elem_reader)
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
  input  wire logic                wr_done_i
);

  localparam int AW = VEC_DEPTH > 1 ? $clog2(VEC_DEPTH) : 1;

  typedef enum logic [3:0] {IDLE, SHIFT_CMD, SHIFT_DATA, GAIN_CMD, GAIN_DATA, ROW_CMD, QUANT, ROWS, FINISH} state_e;
  state_e state_q;

  logic [15:0] tokens_q;
  logic [31:0] hidden_q, vocab_q, eps_q, idx_q, issue_q, row_q, sx_q;
  logic [63:0] src_q, norm_q, head_q, head_scales_q, dst_q;
  logic signed [31:0] shift_q;
  logic signed [47:0] acc_q;
  logic        quant_started_q, cmd_sent_q;

  // ---------------------------------------------------------------- reads
  wire logic [31:0] it_row = issue_q >> 1;
  wire logic [31:0] groups = hidden_q / LANES;  // LANES-wide code groups per row
  wire logic [31:0] gain_words = (hidden_q + 32'd7) >> 3;
  logic        rcmd_valid, rcmd_ready, el_valid, el_ready;
  logic [63:0] rcmd_addr;
  logic [31:0] rcmd_count, el_data;
  logic [127:0] el_wide;
  logic [2:0]  rcmd_size;
  always_comb begin
    rcmd_valid = 1'b0;
    rcmd_addr  = '0;
    rcmd_count = hidden_q;
    rcmd_size  = 3'd2;
    unique case (state_q)
      SHIFT_CMD: begin rcmd_valid = 1'b1; rcmd_addr = norm_q; rcmd_count = 32'd1; end
      // Eight int16 gains per 16-byte element.
      GAIN_CMD:  begin rcmd_valid = 1'b1; rcmd_addr = norm_q + 64'd64; rcmd_count = gain_words; rcmd_size = 3'd4; end
      ROW_CMD:   begin
        rcmd_valid = 1'b1;
        rcmd_addr  = src_q + (64'(tokens_q) - 64'd1) * trit_num::row_bytes(64'(hidden_q) * 4);
      end
      ROWS: if (issue_q < 2 * vocab_q) begin
        // Per vocabulary row: its int8 codes, then its binary32 scale.
        rcmd_valid = 1'b1;
        if (issue_q[0]) begin
          rcmd_addr  = head_scales_q + 64'(it_row) * 4;
          rcmd_count = 32'd1;
        end else begin
          rcmd_addr  = head_q + 64'(it_row) * trit_num::row_bytes(64'(hidden_q));
          rcmd_count = groups;
          rcmd_size  = 3'($clog2(LANES));
        end
      end
      default: ;
    endcase
  end
  elem_reader #(.DATA_W (DATA_W), .QUEUE (8)) u_rd (
    .clk_i, .rst_ni,
    .cmd_valid_i (rcmd_valid), .cmd_ready_o (rcmd_ready), .cmd_addr_i (rcmd_addr), .cmd_count_i (rcmd_count),
    .cmd_size_i (rcmd_size), .el_valid_o (el_valid), .el_ready_i (el_ready), .el_data_o (el_data), .el_wide_o (el_wide),
    .rd_cmd_valid_o, .rd_cmd_ready_i, .rd_cmd_addr_o, .rd_cmd_beats_o, .rd_valid_i, .rd_ready_o, .rd_data_i
  );
  wire logic el_fire = el_valid && el_ready;

  // ---------------------------------------------------------------- final norm + int16 codes
  logic q_in_ready, q_code_valid, q_done;
  logic signed [15:0] q_code;
  logic [31:0] q_scale;
  wire logic q_start = state_q == QUANT && !quant_started_q;
  vec_quant #(.DEPTH (VEC_DEPTH)) u_quant (
    .clk_i, .rst_ni,
    .g_we_i (state_q == GAIN_DATA && el_fire), .g_addr_i (idx_q), .g_data_i (el_wide),
    .start_i (q_start), .n_i (hidden_q), .ex_i (-32'sd16), .shift_i (shift_q), .norm_i (1'b1),
    .qmax_i (16'(HEAD_QMAX)), .eps_i (eps_q),
    .in_valid_i (state_q == QUANT && quant_started_q && el_valid), .in_ready_o (q_in_ready),
    .in_data_i (el_data),
    .code_valid_o (q_code_valid), .code_ready_i (1'b1), .code_o (q_code),
    .done_o (q_done), .scale_o (q_scale)
  );
  logic signed [15:0] xc [VEC_DEPTH];
  always_ff @(posedge clk_i) if (q_code_valid) xc[AW'(idx_q)] <= q_code;

  // ---------------------------------------------------------------- rows
  wire logic is_scale = idx_q == groups;
  logic signed [47:0] dot;  // one group's LANES products, exact
  always_comb begin
    dot = '0;
    for (int j = 0; j < LANES; j++) begin
      dot = dot + 48'(xc[AW'(idx_q * LANES + 32'(j))]) * 48'($signed(el_wide[8*j +: 8]));
    end
  end
  wire logic signed [47:0] acc_next = acc_q + dot;
  wire logic signed [31:0] logit =
    trit_num::sat32(trit_num::requant(64'(acc_q), trit_num::fp32_mul(sx_q, el_data), 8'd16));

  logic wcmd_ready, wel_ready, w_idle;
  elem_writer #(.DATA_W (DATA_W)) u_wr (
    .clk_i, .rst_ni,
    .cmd_valid_i (state_q == ROWS && !cmd_sent_q), .cmd_ready_o (wcmd_ready),
    .cmd_addr_i (dst_q), .cmd_count_i (vocab_q), .cmd_size_i (2'd2),
    .el_valid_i (state_q == ROWS && cmd_sent_q && el_valid && is_scale), .el_ready_o (wel_ready),
    .el_data_i (logit), .el_len_i (3'd4), .idle_o (w_idle),
    .wr_cmd_valid_o, .wr_cmd_ready_i, .wr_cmd_addr_o, .wr_cmd_beats_o, .wr_valid_o, .wr_ready_i, .wr_data_o,
    .wr_strb_o, .wr_done_i
  );

  assign el_ready = state_q == SHIFT_DATA || state_q == GAIN_DATA ||
                    (state_q == QUANT && quant_started_q && q_in_ready) ||
                    (state_q == ROWS && cmd_sent_q && (!is_scale || wel_ready));

  always_ff @(posedge clk_i or negedge rst_ni) begin
    if (!rst_ni) begin
      state_q         <= IDLE;
      tokens_q        <= '0;
      hidden_q        <= '0;
      vocab_q         <= '0;
      eps_q           <= '0;
      idx_q           <= '0;
      issue_q         <= '0;
      row_q           <= '0;
      sx_q            <= '0;
      src_q           <= '0;
      norm_q          <= '0;
      head_q          <= '0;
      head_scales_q   <= '0;
      dst_q           <= '0;
      shift_q         <= '0;
      acc_q           <= '0;
      quant_started_q <= 1'b0;
      cmd_sent_q      <= 1'b0;
      done_o          <= 1'b0;
      err_o           <= 1'b0;
    end else begin
      done_o <= 1'b0;
      if (state_q == ROWS && rcmd_valid && rcmd_ready) issue_q <= issue_q + 1;
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
          err_o         <= hidden_i == '0 || hidden_i > VEC_DEPTH || hidden_i % LANES != 0 || norm_i == '0;
          if (hidden_i == '0 || hidden_i > VEC_DEPTH || hidden_i % LANES != 0 || norm_i == '0 || tokens_i == '0 ||
              vocab_i == '0) begin
            state_q <= FINISH;
          end else begin
            state_q <= SHIFT_CMD;
          end
        end
        SHIFT_CMD: if (rcmd_ready) state_q <= SHIFT_DATA;
        SHIFT_DATA: if (el_fire) begin
          shift_q <= $signed(el_data);
          state_q <= GAIN_CMD;
        end
        GAIN_CMD: if (rcmd_ready) state_q <= GAIN_DATA;
        GAIN_DATA: if (el_fire) begin
          idx_q <= idx_q + 1;
          if (idx_q + 1 == gain_words) state_q <= ROW_CMD;
        end
        ROW_CMD: if (rcmd_ready) begin
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
            issue_q    <= '0;
            row_q      <= '0;
            acc_q      <= '0;
            cmd_sent_q <= 1'b0;
            state_q    <= ROWS;
          end
        end
        ROWS: begin
          if (!cmd_sent_q && wcmd_ready) cmd_sent_q <= 1'b1;
          if (el_fire) begin
            if (is_scale) begin
              idx_q <= '0;
              acc_q <= '0;
              row_q <= row_q + 1;
              if (row_q + 1 == vocab_q) state_q <= FINISH;
            end else begin
              acc_q <= acc_next;
              idx_q <= idx_q + 1;
            end
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

endmodule

`resetall
