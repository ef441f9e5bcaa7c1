// SPDX-License-Identifier: Apache-2.0
//
// kv_layout: the KV cache's head-major layout (hdl::isa::KvLayout, docs/isa.md) as op_rope_kv
// writes it and op_attention reads it: a KV head's codes take row_bytes(max_seq * head_dim)
// bytes, its scales row_bytes(4 * max_seq); the key codes of every head, then their scales,
// then the same for values. One module, so the writer and the reader cannot drift apart.
//
// The strides and the regions' sizes at the widths the ops' checks admit (max_seq <= MAX_SEQ,
// head_dim <= MAX_HEAD_DIM, kv_heads <= MAX_HEADS): one DSP per product (at 64 bits each was
// four DSP tiles and the adders joining them, the longest path of both engines). Registered in
// two stages (strides, then sizes): they change only with an op's arguments, which settle at
// its start, and each op waits more than two cycles before its first address uses them.

`default_nettype none

module kv_layout #(
  parameter int MAX_SEQ      = 64,
  parameter int MAX_HEAD_DIM = 64,
  parameter int MAX_HEADS    = 4,
  localparam int HSW = trit_num::kv_stride_bits(MAX_SEQ, MAX_HEAD_DIM),  // a head's region
  localparam int KHW = $clog2(MAX_HEADS + 1)                             // a KV head count
) (
  input  wire logic                 clk_i,
  input  wire logic [31:0]          max_seq_i,     // checked <= MAX_SEQ by the op
  input  wire logic [15:0]          head_dim_i,    // checked <= MAX_HEAD_DIM
  input  wire logic [KHW-1:0]       kv_heads_i,    // checked <= MAX_HEADS
  output      logic [HSW-1:0]       head_stride_o,  // one KV head's codes
  output      logic [HSW-1:0]       scale_stride_o, // one KV head's scales
  output      logic [HSW+KHW-1:0]   codes_sz_o,     // every KV head's codes (k or v)
  output      logic [HSW+KHW-1:0]   scales_sz_o     // every KV head's scales
);

  wire logic [63:0] head_stride_b  = trit_num::row_bytes(64'(max_seq_i) * 64'(head_dim_i));
  wire logic [63:0] scale_stride_b = trit_num::row_bytes(64'(max_seq_i) * 4);
  logic unused_stride;  // beyond HSW only when the op's checks fail
  assign unused_stride = ^{head_stride_b[63:HSW], scale_stride_b[63:HSW]};
  always_ff @(posedge clk_i) begin
    head_stride_o  <= head_stride_b[HSW-1:0];
    scale_stride_o <= scale_stride_b[HSW-1:0];
    codes_sz_o     <= kv_heads_i * head_stride_o;
    scales_sz_o    <= kv_heads_i * scale_stride_o;
  end

endmodule

`resetall
