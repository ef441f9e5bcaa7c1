//! Bad input gets a clear error naming what is wrong: configs and checkpoints.

mod common;

use model::checkpoint::load_dir;
use model::tiny::{random_weights, write_checkpoint, StoreDtype};
use model::Config;

const TINY: &str = include_str!("../../configs/tiny.toml");

fn load_edited(from: &str, to: &str) -> String {
    assert!(TINY.contains(from), "test edit `{from}` does not apply");
    Config::from_toml(&TINY.replacen(from, to, 1), "edited", None).unwrap_err().to_string()
}

#[test]
fn unknown_keys_are_rejected_in_every_section() {
    let e = load_edited("[model]\n", "[model]\nhiden = 64\n");
    assert!(e.contains("unknown field `hiden`"), "{e}");
    let e = load_edited("[engine]\n", "[engine]\nlanes = 4\n");
    assert!(e.contains("unknown field `lanes`"), "{e}");
    let e = load_edited("name = \"tiny\"\n", "name = \"tiny\"\ncolour = \"blue\"\n");
    assert!(e.contains("unknown field `colour`"), "{e}");
}

#[test]
fn zero_dims_name_the_field() {
    for field in ["hidden", "layers", "vocab", "ffn", "max_seq", "kv_heads"] {
        let line = TINY.lines().find(|l| l.starts_with(&format!("{field} = "))).unwrap();
        let e = load_edited(line, &format!("{field} = 0"));
        assert!(e.contains(&format!("`model.{field}`")) && e.contains("must be at least 1"), "{field}: {e}");
    }
}

#[test]
fn head_geometry_rules() {
    let e = load_edited("heads = 4\n", "heads = 5\n");
    assert!(e.contains("`model.heads`") && e.contains("heads must divide hidden (5 does not divide 64)"), "{e}");
    let e = load_edited("kv_heads = 2\n", "kv_heads = 3\n");
    assert!(e.contains("kv_heads must divide heads"), "{e}");
    let e = load_edited("head_dim = 16\n", "head_dim = 8\n");
    assert!(e.contains("heads x head_dim must equal hidden (4 x 8 != 64)"), "{e}");
}

/// The kernel's masters may be wider than the board's ports; what one moves per cycle is then the
/// port's width at the port's clock.
#[test]
fn wide_masters_move_what_the_board_port_carries() {
    let narrow = common::variant("");
    assert_eq!((narrow.bus_bits(), narrow.port_bytes_per_cycle()), (128, 16.0));
    let wide = common::variant("[engine]\naxi_data_bits = 256\n");
    let port = wide.board.axi_data_bits as f64 / 8.0 * wide.board.axi_port_mhz.unwrap() / wide.board.clock_mhz;
    assert!(port > 16.0 && port < 32.0, "kv260: a 128-bit port above the kernel's clock, {port}");
    assert_eq!((wide.bus_bits(), wide.port_bytes_per_cycle()), (256, port));
    let mut slow = wide.clone();
    slow.board.clock_mhz = 100.0;
    assert_eq!(slow.port_bytes_per_cycle(), 32.0, "a slow kernel: the master's width binds");
    let mut same_clock = wide.clone();
    same_clock.board.axi_port_mhz = None;
    assert_eq!(same_clock.port_bytes_per_cycle(), 16.0, "ports at the kernel's clock: a wider master gains nothing");
}

#[test]
fn other_rules() {
    let e = load_edited("bos_token_id = 256", "bos_token_id = 999");
    assert!(e.contains("`model.bos_token_id`") && e.contains("outside the vocabulary"), "{e}");
    let e = load_edited("weights = \"ternary\"", "weights = \"int2\"");
    assert!(e.contains("`quant.weight_group`") && e.contains("need a group size"), "{e}");
    let e = load_edited("weights = \"ternary\"", "weights = \"quaternary\"");
    assert!(e.contains("unknown variant `quaternary`"), "{e}");
    let e = load_edited("tlmm_group = 3", "tlmm_group = 7");
    assert!(e.contains("`engine.tlmm_group`") && e.contains("must be 2, 3 or 4, got 7"), "{e}");
    let e = load_edited("tlmm_group = 3", "tlmm_group = 3\nattention_ports = 5");
    assert!(e.contains("`engine.attention_ports`") && e.contains("must be in 1..=4") && e.contains("got 5"), "{e}");
    let e = load_edited("tlmm_group = 3", "tlmm_group = 3\nattention_ports = 0");
    assert!(e.contains("`engine.attention_ports`") && e.contains("got 0"), "{e}");
    let e = load_edited("tlmm_group = 3", "tlmm_group = 3\naxi_data_bits = 64");
    assert!(e.contains("`engine.axi_data_bits`") && e.contains("128, 256 or 512") && e.contains("got 64"), "{e}");
    let e = load_edited("board = \"kv260\"", "board = \"zcu999\"");
    assert!(e.contains("unknown board `zcu999`") && e.contains("kv260"), "{e}");
    let e = load_edited("rope_theta = 10000.0", "rope_theta = -1.0");
    assert!(e.contains("`model.rope_theta`"), "{e}");
    let e = load_edited("kv = \"int8\"", "kv = \"int8\"\nlm_head = \"int3\"");
    assert!(e.contains("unknown variant `int3`"), "{e}");
    // An int4 head reads 32 codes per cycle: hidden 48 (3 heads of 16) does not divide.
    let edited = TINY.replacen("hidden = 64", "hidden = 48", 1).replacen("heads = 4", "heads = 3", 1).replacen(
        "kv_heads = 2",
        "kv_heads = 3",
        1,
    );
    assert!(Config::from_toml(&edited, "edited", None).is_ok(), "the int8 head takes hidden 48");
    let four = edited.replacen("kv = \"int8\"", "kv = \"int8\"\nlm_head = \"int4\"", 1);
    let e = Config::from_toml(&four, "edited", None).unwrap_err().to_string();
    assert!(e.contains("`quant.lm_head`") && e.contains("hidden (48) must be a multiple of 32"), "{e}");
    let e = Config::load("no-such-preset").unwrap_err().to_string();
    assert!(e.contains("no such preset") && e.contains("tellme-kv260"), "{e}");
    let e = Config::load("/nonexistent/x.toml").unwrap_err().to_string();
    assert!(e.contains("cannot read file"), "{e}");
}

fn tiny_dir() -> (tempfile::TempDir, Config) {
    let cfg = Config::preset("tiny").unwrap();
    let dir = tempfile::tempdir().unwrap();
    model::tiny::write_model_dir(dir.path(), &cfg, 5).unwrap();
    (dir, cfg)
}

#[test]
fn checkpoint_that_disagrees_with_the_config() {
    let (dir, _) = tiny_dir();
    let other = common::variant("[model]\nffn = 128\n");
    let e = load_dir(dir.path(), &other).unwrap_err().to_string();
    assert!(e.contains("`intermediate_size` is 160 but config tiny has model.ffn = 128"), "{e}");
    let other = common::variant("[model]\nffn_activation = \"silu\"\n");
    let e = load_dir(dir.path(), &other).unwrap_err().to_string();
    assert!(e.contains("hidden_act"), "{e}");
    let other = common::variant("[model]\nmax_seq = 4096\n");
    let e = load_dir(dir.path(), &other).unwrap_err().to_string();
    assert!(e.contains("max_position_embeddings"), "{e}");
}

#[test]
fn missing_wrong_shape_and_wrong_dtype_tensors() {
    let cfg = Config::preset("tiny").unwrap();
    // Missing sub-norms: weights written for a config without them, loaded as tiny.
    let no_sub = common::variant("[model]\nsub_norms = false\n");
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &no_sub, &random_weights(&no_sub, 1), StoreDtype::F32).unwrap();
    std::fs::write(dir.path().join("config.json"), model::tiny::hf_config_json(&cfg)).unwrap();
    let e = load_dir(dir.path(), &cfg).unwrap_err().to_string();
    assert!(e.contains("attn_sub_norm.weight") && e.contains("missing"), "{e}");

    // Wrong shape: a checkpoint for a bigger vocabulary relabelled as tiny.
    let big = common::variant("[model]\nvocab = 300\n");
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &big, &random_weights(&big, 1), StoreDtype::Bf16).unwrap();
    std::fs::write(dir.path().join("config.json"), model::tiny::hf_config_json(&cfg)).unwrap();
    let e = load_dir(dir.path(), &cfg).unwrap_err().to_string();
    assert!(e.contains(".weight`") && e.contains("shape [300, 64], expected [258, 64]"), "{e}");

    // Wrong dtype: an int8 tensor where floats are expected.
    let (dir, _) = tiny_dir();
    let st_path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&st_path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let norm_i8 = vec![1u8; 64];
    let mut views: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(n, _)| n != "model.norm.weight").collect();
    views.push((
        "model.norm.weight".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::I8, vec![64], &norm_i8).unwrap(),
    ));
    let out = safetensors::serialize(views, None).unwrap();
    std::fs::write(&st_path, out).unwrap();
    let e = load_dir(dir.path(), &cfg).unwrap_err().to_string();
    assert!(e.contains("model.norm.weight") && e.contains("dtype I8 is not supported"), "{e}");
}

#[test]
fn truncated_and_missing_files() {
    let (dir, cfg) = tiny_dir();
    let st_path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&st_path).unwrap();
    std::fs::write(&st_path, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_dir(dir.path(), &cfg).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
    std::fs::write(&st_path, b"garbage").unwrap();
    let e = load_dir(dir.path(), &cfg).unwrap_err().to_string();
    assert!(e.contains("not a valid safetensors file"), "{e}");
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    let e = load_dir(dir.path(), &cfg).unwrap_err().to_string();
    assert!(e.contains("config.json") && e.contains("cannot read"), "{e}");
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let e = load_dir(dir.path(), &cfg).unwrap_err().to_string();
    assert!(e.contains("config.json"), "{e}");
}

#[test]
fn non_finite_weights_are_rejected() {
    let cfg = Config::preset("tiny").unwrap();
    let mut w = random_weights(&cfg, 2);
    w.layers[1].up[17] = f32::NAN;
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), &cfg, &w, StoreDtype::F32).unwrap();
    let e = load_dir(dir.path(), &cfg).unwrap_err().to_string();
    assert!(
        e.contains("model.layers.1.mlp.up_proj.weight") && e.contains("element 17") && e.contains("not finite"),
        "{e}"
    );
}
