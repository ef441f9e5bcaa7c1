//! Tokenizer glue around the `tokenizers` crate: load `tokenizer.json`, encode with BOS, decode.
//! Also builds the byte-level tokenizer of the tiny model (256 byte tokens, no merges, plus
//! `<s>`/`</s>` at the config's BOS/EOS ids).

use crate::config::Config;
use std::path::Path;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

/// A loaded tokenizer with the model's BOS/EOS ids.
pub struct Tok {
    inner: Tokenizer,
    /// Beginning-of-sequence id, prepended by [`Tok::encode`].
    pub bos: u32,
    /// End-of-sequence id; generation stops on it.
    pub eos: u32,
}

impl Tok {
    /// Load `tokenizer.json`.
    pub fn load(path: &Path, bos: u32, eos: u32) -> Result<Tok, String> {
        let inner = Tokenizer::from_file(path).map_err(|e| format!("cannot load tokenizer {}: {e}", path.display()))?;
        Ok(Tok { inner, bos, eos })
    }

    /// Token ids of `text`, with BOS first.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let enc = self.inner.encode(text, false).map_err(|e| format!("cannot tokenize prompt: {e}"))?;
        let mut ids = vec![self.bos];
        ids.extend_from_slice(enc.get_ids());
        Ok(ids)
    }

    /// Text of `ids`, special tokens skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String, String> {
        self.inner.decode(ids, true).map_err(|e| format!("cannot decode ids: {e}"))
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

    #[test]
    fn byte_tokenizer_round_trips_text_and_bytes() {
        let cfg = Config::preset("tiny").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        write_byte_tokenizer(&p, &cfg).unwrap();
        let t = Tok::load(&p, 256, 257).unwrap();
        let text = "Hello, FPGA! ünïcödé\n\ttabs";
        let ids = t.encode(text).unwrap();
        assert_eq!(ids[0], 256);
        assert_eq!(&ids[1..], text.as_bytes().iter().map(|&b| b as u32).collect::<Vec<_>>().as_slice());
        assert_eq!(t.decode(&ids).unwrap(), text);
        assert_eq!(t.decode(&[72, 105, 257]).unwrap(), "Hi");
    }
}
