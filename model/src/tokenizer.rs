//! Tokenizer glue around the `tokenizers` crate: load `tokenizer.json` (and, beside it,
//! `tokenizer_config.json` and `generation_config.json` when present), encode with BOS when the
//! checkpoint asks for it, decode. Also builds the byte-level tokenizer of the tiny model (256
//! byte tokens, no merges, plus `<s>`/`</s>` at the config's BOS/EOS ids).
//!
//! BOS and EOS ids come from the model config (`config.json`'s `bos_token_id`/`eos_token_id`).
//! Whether the prompt starts with BOS is decided, first match wins, by
//! 1. `tokenizer_config.json`'s `add_bos_token` (transformers' switch, e.g. Llama-3 / BitNet
//!    2B-4T checkpoints set it);
//! 2. `tokenizer.json`'s post-processor: BOS is added if it puts the config's BOS first (the
//!    Llama-3 `TemplateProcessing` does);
//! 3. otherwise BOS is added when the tokenizer has no post-processor at all (the tiny model's
//!    byte tokenizer, SentencePiece-style Llama tokenizers) — Llama-family models are trained
//!    with BOS.
//!
//! The post-processor itself is never applied (trit encodes without special tokens and adds BOS
//! itself), so BOS appears exactly once whatever the files say. Special tokens written in the
//! text (`<|eot_id|>`) are recognised as their ids, as transformers and llama.cpp do. Generation
//! stops on any of the stop ids: the config's EOS ids, `tokenizer_config.json`'s `eos_token`
//! and `generation_config.json`'s `eos_token_id` (Llama-3 chat models end a turn with
//! `<|eot_id|>`, not `<|end_of_text|>`).

use crate::config::Config;
use std::path::Path;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// A loaded tokenizer with the model's BOS/EOS ids.
pub struct Tok {
    inner: Tokenizer,
    /// Beginning-of-sequence id.
    pub bos: u32,
    /// Whether [`Tok::encode`] puts [`Tok::bos`] first.
    pub add_bos: bool,
    /// The config's end-of-sequence id.
    pub eos: u32,
    /// Every id that ends generation ([`Tok::eos`] first, no duplicates).
    pub stop_ids: Vec<u32>,
}

/// A token named by `tokenizer_config.json`: a string, or an `AddedToken` object with `content`.
fn token_name(v: &serde_json::Value) -> Option<&str> {
    v.as_str().or_else(|| v.get("content").and_then(|c| c.as_str()))
}

/// Token ids from a JSON value that is an id or a list of ids (`eos_token_id`).
pub fn json_ids(v: &serde_json::Value) -> Vec<u32> {
    match v {
        serde_json::Value::Array(a) => a.iter().filter_map(|x| x.as_u64()).map(|x| x as u32).collect(),
        other => other.as_u64().map(|x| vec![x as u32]).unwrap_or_default(),
    }
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).map(Some).map_err(|e| format!("{}: not valid JSON: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

impl Tok {
    /// Load `tokenizer.json` alone; BOS is added by rule 2 or 3 of the module docs.
    pub fn load(path: &Path, bos: u32, eos: u32) -> Result<Tok, String> {
        let inner = Tokenizer::from_file(path).map_err(|e| format!("cannot load tokenizer {}: {e}", path.display()))?;
        let mut t = Tok { inner, bos, add_bos: true, eos, stop_ids: vec![eos] };
        t.add_bos = t.post_processor_adds_bos(path)?;
        Ok(t)
    }

    /// Load `dir/tokenizer.json` plus `dir/tokenizer_config.json` and
    /// `dir/generation_config.json` when present. `eos` are the config's EOS ids (the first is
    /// the primary one; `config.json` may list several).
    pub fn load_dir(dir: &Path, bos: u32, eos: &[u32]) -> Result<Tok, String> {
        let primary = *eos.first().ok_or("no EOS id given")?;
        let mut t = Tok::load(&dir.join("tokenizer.json"), bos, primary)?;
        eos.iter().for_each(|&id| t.add_stop(id));
        let tc_path = dir.join("tokenizer_config.json");
        if let Some(tc) = read_json(&tc_path)? {
            match tc.get("add_bos_token") {
                Some(serde_json::Value::Bool(b)) => t.add_bos = *b,
                None | Some(serde_json::Value::Null) => {}
                Some(other) => {
                    return Err(format!("{}: `add_bos_token` is {other}, not true or false", tc_path.display()))
                }
            }
            if let Some(name) = tc.get("bos_token").and_then(token_name) {
                let id = t.named_id(name, &tc_path, "bos_token")?;
                if id != bos {
                    return Err(format!(
                        "{}: `bos_token` {name} is id {id}, but the model config's bos_token_id is {bos}",
                        tc_path.display()
                    ));
                }
            }
            if let Some(name) = tc.get("eos_token").and_then(token_name) {
                let id = t.named_id(name, &tc_path, "eos_token")?;
                t.add_stop(id);
            }
        }
        if let Some(gc) = read_json(&dir.join("generation_config.json"))? {
            if let Some(v) = gc.get("eos_token_id") {
                json_ids(v).into_iter().for_each(|id| t.add_stop(id));
            }
        }
        Ok(t)
    }

    fn add_stop(&mut self, id: u32) {
        if !self.stop_ids.contains(&id) {
            self.stop_ids.push(id);
        }
    }

    fn named_id(&self, name: &str, path: &Path, key: &str) -> Result<u32, String> {
        self.inner
            .token_to_id(name)
            .ok_or_else(|| format!("{}: `{key}` {name} is not a token of tokenizer.json", path.display()))
    }

    /// Rule 2/3: does the post-processor put BOS first (or is there none)?
    fn post_processor_adds_bos(&self, path: &Path) -> Result<bool, String> {
        if self.inner.get_post_processor().is_none() {
            return Ok(true);
        }
        let probe = |specials: bool| {
            self.inner
                .encode("a", specials)
                .map(|e| e.get_ids().to_vec())
                .map_err(|e| format!("{}: cannot encode with the post-processor: {e}", path.display()))
        };
        let (with, without) = (probe(true)?, probe(false)?);
        Ok(with.first() == Some(&self.bos) && without.first() != Some(&self.bos))
    }

    /// Token ids of `text`, with BOS first when [`Tok::add_bos`].
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let mut ids = Vec::new();
        if self.add_bos {
            ids.push(self.bos);
        }
        ids.extend(self.encode_plain(text)?);
        Ok(ids)
    }

    /// Token ids of `text`, never with BOS.
    pub fn encode_plain(&self, text: &str) -> Result<Vec<u32>, String> {
        let enc = self.inner.encode(text, false).map_err(|e| format!("cannot tokenize text: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`, special tokens skipped. An incomplete UTF-8 sequence at the end (a
    /// character split over byte tokens) decodes to U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.inner.decode(ids, true).map_err(|e| format!("cannot decode ids: {e}"))
    }

    /// Whether `id` ends generation.
    pub fn is_stop(&self, id: u32) -> bool {
        self.stop_ids.contains(&id)
    }

    /// The id of a token string (special tokens included), if the tokenizer has it.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
/// GPT-2's reversible byte -> printable-char map used by byte-level BPE.
fn byte_to_char(b: u8) -> char {
    let printable = |c: u32| (0x21..=0x7e).contains(&c) || (0xa1..=0xac).contains(&c) || (0xae..=0xff).contains(&c);
    if printable(b as u32) {
        return char::from_u32(b as u32).expect("latin-1");
    }
    // Non-printable bytes map to 256, 257, ... in byte order.
    let n = (0..b as u32).filter(|&c| !printable(c)).count() as u32;
    char::from_u32(256 + n).expect("valid char")
}

/// Write a byte-level `tokenizer.json`: id `b` is byte `b`; BOS/EOS are special tokens at the
/// config's ids (which must be 256 and 257 in some order, after the bytes).
pub fn write_byte_tokenizer(path: &Path, cfg: &Config) -> Result<(), String> {
    let m = &cfg.model;
    let mut specials = [(m.bos_token_id, "<s>"), (m.eos_token_id, "</s>")];
    specials.sort();
    if specials[0].0 != 256 || specials[1].0 != 257 || m.vocab < 258 {
        return Err(format!(
            "a byte-level tokenizer needs bos/eos ids 256 and 257 and vocab >= 258 (config {} has {}, {}, {})",
            cfg.name, m.bos_token_id, m.eos_token_id, m.vocab
        ));
    }
    let vocab: std::collections::HashMap<String, u32> =
        (0..=255u8).map(|b| (byte_to_char(b).to_string(), b as u32)).collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab.into_iter().collect::<tokenizers::models::bpe::Vocab>(), vec![])
        .build()
        .map_err(|e| e.to_string())?;
    let mut tok = Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(ByteLevel::new(false, false, false)));
    tok.with_decoder(Some(ByteLevel::new(false, false, false)));
    tok.add_special_tokens([AddedToken::from(specials[0].1, true), AddedToken::from(specials[1].1, true)])
        .map_err(|e| e.to_string())?;
    tok.save(path, true).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llama3")
    }

    /// The fixture's files copied to a fresh directory, `tokenizer_config.json` replaced by `tc`
    /// (removed when `None`).
    fn fixture_with(tc: Option<serde_json::Value>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(fixture().join("tokenizer.json"), dir.path().join("tokenizer.json")).unwrap();
        if let Some(tc) = tc {
            std::fs::write(dir.path().join("tokenizer_config.json"), tc.to_string()).unwrap();
        }
        dir
    }

    fn fixture_config() -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(fixture().join("tokenizer_config.json")).unwrap()).unwrap()
    }

    // Ids of the fixture, worked out from make_fixture.py: byte tokens in GPT-2's order
    // ('!'..'~' are 0..93, so 'H' = 72 - 33 = 39; 'ü' = C3 BC is "Ã" 127 + "¼" 120; space "Ġ" 220,
    // newline "Ċ" 198 as in the real Llama-3 vocabulary), then the merges from 256 in order,
    // then the ten special tokens from 276.
    const BOS: u32 = 276; // <|begin_of_text|>
    const END_OF_TEXT: u32 = 277;
    const EOT: u32 = 285; // <|eot_id|>
    const HELLO: u32 = 264;
    const SP_WORLD: u32 = 269;
    const SP_THE: u32 = 258;

    #[test]
    fn byte_tokenizer_round_trips_text_and_bytes() {
        let cfg = Config::preset("tiny").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        write_byte_tokenizer(&p, &cfg).unwrap();
        let t = Tok::load(&p, 256, 257).unwrap();
        assert!(t.add_bos, "no post-processor: BOS by default");
        let text = "Hello, FPGA! ünïcödé\n\ttabs";
        let ids = t.encode(text).unwrap();
        assert_eq!(ids[0], 256);
        assert_eq!(&ids[1..], text.as_bytes().iter().map(|&b| b as u32).collect::<Vec<_>>().as_slice());
        assert_eq!(t.decode(&ids).unwrap(), text);
        assert_eq!(t.decode(&[72, 105, 257]).unwrap(), "Hi");
    }

    #[test]
    fn llama3_style_prompt_gets_exactly_one_bos() {
        let t = Tok::load_dir(&fixture(), BOS, &[END_OF_TEXT]).unwrap();
        assert!(t.add_bos);
        // Split: "Hello" | " world" | "!"; whole words in the vocabulary are taken as they are
        // (ignore_merges), "!" is byte token 0.
        assert_eq!(t.encode("Hello world!").unwrap(), vec![BOS, HELLO, SP_WORLD, 0]);
        assert_eq!(t.encode_plain("Hello world!").unwrap(), vec![HELLO, SP_WORLD, 0]);
        // The post-processor alone would add BOS too; without tokenizer_config.json it decides.
        let bare = fixture_with(None);
        let t = Tok::load_dir(bare.path(), BOS, &[END_OF_TEXT]).unwrap();
        assert_eq!(t.encode("Hello").unwrap(), vec![BOS, HELLO]);
        // add_bos_token = false wins over the post-processor.
        let mut tc = fixture_config();
        tc["add_bos_token"] = false.into();
        let off = fixture_with(Some(tc));
        let t = Tok::load_dir(off.path(), BOS, &[END_OF_TEXT]).unwrap();
        assert_eq!(t.encode("Hello").unwrap(), vec![HELLO]);
    }

    #[test]
    fn post_processor_without_bos_means_no_bos() {
        // Rule 2: a post-processor that adds nothing (only the byte-level offsets fix-up), and
        // no tokenizer_config.json to say otherwise.
        let dir = fixture_with(None);
        let p = dir.path().join("tokenizer.json");
        let mut t: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        t["post_processor"] = t["post_processor"]["processors"][0].clone();
        std::fs::write(&p, t.to_string()).unwrap();
        let tok = Tok::load_dir(dir.path(), BOS, &[END_OF_TEXT]).unwrap();
        assert!(!tok.add_bos);
        assert_eq!(tok.encode("Hello").unwrap(), vec![HELLO]);
    }

    #[test]
    fn llama3_style_bpe_merges_by_rank() {
        let t = Tok::load_dir(&fixture(), BOS, &[END_OF_TEXT]).unwrap();
        // " there" is not in the vocabulary: Ġ t h e r e -> Ġt (rank 0) -> he (1) -> Ġthe (2);
        // "r e" has no merge, so r (114 - 33 = 81) and e (68) stay.
        assert_eq!(t.encode_plain(" there").unwrap(), vec![SP_THE, 81, 68]);
        // "hello": he, ll, o; "He ll" does not apply to lower-case "he".
        assert_eq!(t.encode_plain("hello").unwrap(), vec![257, 261, 78]);
        // "Grüße" = G r C3 BC C3 9F e: "Ã ¼" merges to 273; C3 alone is 127, 9F is 253.
        assert_eq!(t.encode_plain("Grüße").unwrap(), vec![38, 81, 273, 127, 253, 68]);
        // Two newlines are one pre-token and one merged token.
        assert_eq!(t.encode_plain("a\n\nb").unwrap(), vec![64, 274, 65]);
    }

    #[test]
    fn llama3_style_round_trips_unicode() {
        let t = Tok::load_dir(&fixture(), BOS, &[END_OF_TEXT]).unwrap();
        for text in
            [" leading space", "Grüße, 世界! 🙂\n\n\ttabs  and   spaces\r\n", "it's 1234567 o'clock", "ÿ\u{0}\u{7f}"]
        {
            let ids = t.encode(text).unwrap();
            assert_eq!(ids[0], BOS);
            assert_eq!(t.decode(&ids).unwrap(), text, "{ids:?}");
        }
        // 🙂 = F0 9F 99 82: four byte tokens; three of them decode to an incomplete character.
        let ids = t.encode_plain("🙂").unwrap();
        assert_eq!(ids, vec![172, 253, 247, 224]);
        assert!(t.decode(&ids[..3]).unwrap().ends_with('\u{FFFD}'));
    }

    #[test]
    fn llama3_style_special_tokens() {
        let t = Tok::load_dir(&fixture(), BOS, &[END_OF_TEXT]).unwrap();
        // A special token written in the text is its id; decoding skips it.
        assert_eq!(t.encode_plain("Hi<|eot_id|>").unwrap(), vec![39, 72, EOT]);
        assert_eq!(t.decode(&[BOS, 39, 72, EOT]).unwrap(), "Hi");
        assert_eq!(t.token_id("<|start_header_id|>"), Some(282));
        // Generation stops at the config's EOS and at tokenizer_config.json's eos_token.
        assert_eq!(t.stop_ids, vec![END_OF_TEXT, EOT]);
        assert!(t.is_stop(EOT) && t.is_stop(END_OF_TEXT) && !t.is_stop(BOS));
    }

    #[test]
    fn generation_config_adds_stop_ids() {
        let dir = fixture_with(Some(fixture_config()));
        std::fs::write(dir.path().join("generation_config.json"), r#"{"eos_token_id": [277, 284]}"#).unwrap();
        let t = Tok::load_dir(dir.path(), BOS, &[END_OF_TEXT]).unwrap();
        assert_eq!(t.stop_ids, vec![END_OF_TEXT, EOT, 284]);
    }

    #[test]
    fn inconsistent_tokenizer_config_is_an_error() {
        let e = Tok::load_dir(&fixture(), END_OF_TEXT, &[END_OF_TEXT]).err().unwrap();
        assert!(
            e.contains("`bos_token` <|begin_of_text|> is id 276, but the model config's bos_token_id is 277"),
            "{e}"
        );
        let mut tc = fixture_config();
        tc["add_bos_token"] = "yes".into();
        let d = fixture_with(Some(tc));
        let e = Tok::load_dir(d.path(), BOS, &[END_OF_TEXT]).err().unwrap();
        assert!(e.contains("`add_bos_token` is \"yes\", not true or false"), "{e}");
        let mut tc = fixture_config();
        tc["eos_token"] = "<|im_end|>".into();
        let d = fixture_with(Some(tc));
        let e = Tok::load_dir(d.path(), BOS, &[END_OF_TEXT]).err().unwrap();
        assert!(e.contains("`eos_token` <|im_end|> is not a token of tokenizer.json"), "{e}");
        std::fs::write(d.path().join("tokenizer_config.json"), "{oops").unwrap();
        let e = Tok::load_dir(d.path(), BOS, &[END_OF_TEXT]).err().unwrap();
        assert!(e.contains("tokenizer_config.json: not valid JSON"), "{e}");
    }
}
