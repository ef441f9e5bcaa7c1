//! GGUF (versions 2 and 3), parsed by hand so every malformed header is a clear error and the
//! parser can be fuzzed: magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata count,
//! the metadata key/value pairs, the tensor infos (name, dims innermost first, ggml type, offset
//! relative to the data section), then the data section at the next multiple of
//! `general.alignment` (default 32). All integers little-endian.
//!
//! Writing is here too ([`write`]), for fixtures and benchmarks.

use std::collections::BTreeMap;

/// `GGUF` read as a little-endian u32.
pub const MAGIC: u32 = 0x4655_4747;
/// Default data alignment.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml type ids this importer reads.
pub mod ty {
    /// binary32.
    pub const F32: u32 = 0;
    /// binary16.
    pub const F16: u32 = 1;
    /// bfloat16.
    pub const BF16: u32 = 30;
    /// Ternary, base-3 packed: 54 bytes per 256 weights.
    pub const TQ1_0: u32 = 34;
    /// Ternary, 2-bit codes: 66 bytes per 256 weights.
    pub const TQ2_0: u32 = 35;
}

/// Name, block size (elements) and block bytes of ggml types whose layout is known here (only
/// some are *read*; the sizes of the others let their tensors be bounds-checked and skipped).
pub fn type_info(t: u32) -> Option<(&'static str, u64, u64)> {
    Some(match t {
        0 => ("F32", 1, 4),
        1 => ("F16", 1, 2),
        2 => ("Q4_0", 32, 18),
        3 => ("Q4_1", 32, 20),
        6 => ("Q5_0", 32, 22),
        7 => ("Q5_1", 32, 24),
        8 => ("Q8_0", 32, 34),
        9 => ("Q8_1", 32, 36),
        10 => ("Q2_K", 256, 84),
        11 => ("Q3_K", 256, 110),
        12 => ("Q4_K", 256, 144),
        13 => ("Q5_K", 256, 176),
        14 => ("Q6_K", 256, 210),
        15 => ("Q8_K", 256, 292),
        24 => ("I8", 1, 1),
        25 => ("I16", 1, 2),
        26 => ("I32", 1, 4),
        27 => ("I64", 1, 8),
        28 => ("F64", 1, 8),
        30 => ("BF16", 1, 2),
        34 => ("TQ1_0", 256, 54),
        35 => ("TQ2_0", 256, 66),
        _ => return None,
    })
}

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any unsigned integer type.
    U(u64),
    /// Any signed integer type.
    I(i64),
    /// f32 or f64.
    F(f64),
    /// bool.
    Bool(bool),
    /// UTF-8 string (lossy).
    Str(String),
    /// Array (element type id, values).
    Array(u32, Vec<Value>),
}

impl Value {
    /// As an unsigned integer (non-negative signed values too).
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U(v) => Some(v),
            Value::I(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }
    /// As a float (integers too).
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F(v) => Some(v),
            Value::U(v) => Some(v as f64),
            Value::I(v) => Some(v as f64),
            _ => None,
        }
    }
    /// As a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One tensor's entry in the tensor table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, innermost (contiguous) first: a `rows x cols` matrix is `[cols, rows]`.
    pub dims: Vec<u64>,
    /// ggml type id.
    pub ty: u32,
    /// Byte range in the whole file; `None` when the type's size is unknown here.
    pub range: Option<(usize, usize)>,
}

/// A parsed GGUF header.
#[derive(Debug, Clone, PartialEq)]
pub struct Gguf {
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata by key.
    pub metadata: BTreeMap<String, Value>,
    /// Tensor table, in file order.
    pub tensors: Vec<TensorInfo>,
    /// Data alignment.
    pub alignment: u64,
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if n > self.b.len() - self.pos {
            return Err(format!(
                "truncated: {what} at byte {} needs {n} bytes, {} left",
                self.pos,
                self.b.len() - self.pos
            ));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4")))
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8")))
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.u64(what)?;
        let n = usize::try_from(n).map_err(|_| format!("{what}: length {n} is too large"))?;
        Ok(String::from_utf8_lossy(self.take(n, what)?).into_owned())
    }
    fn value(&mut self, t: u32, key: &str, depth: usize) -> Result<Value, String> {
        Ok(match t {
            0 => Value::U(self.take(1, key)?[0] as u64),
            1 => Value::I(self.take(1, key)?[0] as i8 as i64),
            2 => Value::U(u16::from_le_bytes(self.take(2, key)?.try_into().expect("2")) as u64),
            3 => Value::I(i16::from_le_bytes(self.take(2, key)?.try_into().expect("2")) as i64),
            4 => Value::U(self.u32(key)? as u64),
            5 => Value::I(self.u32(key)? as i32 as i64),
            6 => Value::F(f32::from_bits(self.u32(key)?) as f64),
            7 => match self.take(1, key)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(format!("metadata `{key}`: bool byte {b} is neither 0 nor 1")),
            },
            8 => Value::Str(self.string(key)?),
            9 => {
                if depth >= 4 {
                    return Err(format!("metadata `{key}`: arrays nested deeper than 4"));
                }
                let et = self.u32(key)?;
                let n = self.u64(key)?;
                // every element takes at least one byte: bound the count before allocating
                if n > (self.b.len() - self.pos) as u64 {
                    return Err(format!("metadata `{key}`: array of {n} elements runs past the end of the file"));
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(et, key, depth + 1)?);
                }
                Value::Array(et, v)
            }
            10 => Value::U(self.u64(key)?),
            11 => Value::I(self.u64(key)? as i64),
            12 => Value::F(f64::from_bits(self.u64(key)?)),
            other => return Err(format!("metadata `{key}`: unknown value type {other}")),
        })
    }
}

/// Parse and check a whole GGUF file's header and tensor table: magic, version, every metadata
/// value, every tensor's dims and type, alignment, and that each tensor of a known type lies
/// inside the file without overlapping another. The error names the key or tensor.
pub fn parse(file: &[u8]) -> Result<Gguf, String> {
    let mut r = Reader { b: file, pos: 0 };
    let magic = r.u32("magic")?;
    if magic != MAGIC {
        return Err(format!("magic is {:02x?}, not `GGUF`", magic.to_le_bytes()));
    }
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(format!("version {version} is not supported (2 or 3)"));
    }
    let n_tensors = r.u64("tensor count")?;
    let n_kv = r.u64("metadata count")?;
    // a tensor info takes at least 24 bytes, a key/value at least 13
    let left = (file.len() - r.pos) as u64;
    if n_tensors > left / 24 || n_kv > left / 13 {
        return Err(format!("{n_tensors} tensors and {n_kv} metadata entries cannot fit in {left} bytes"));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..n_kv {
        let key = r.string("metadata key")?;
        let t = r.u32(&key)?;
        let v = r.value(t, &key, 0)?;
        metadata.insert(key, v);
    }
    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
            _ => return Err(format!("`general.alignment` is {v:?}, not a power of two up to 1 MiB")),
        },
    };
    let mut raw = Vec::with_capacity(n_tensors as usize);
    for _ in 0..n_tensors {
        let name = r.string("tensor name")?;
        let n_dims = r.u32(&name)?;
        if !(1..=4).contains(&n_dims) {
            return Err(format!("tensor `{name}`: {n_dims} dimensions (1 to 4 allowed)"));
        }
        let dims = (0..n_dims).map(|_| r.u64(&name)).collect::<Result<Vec<u64>, String>>()?;
        let ty = r.u32(&name)?;
        let offset = r.u64(&name)?;
        raw.push((name, dims, ty, offset));
    }
    let data_start = (r.pos as u64).div_ceil(alignment) * alignment;
    if data_start > file.len() as u64 {
        return Err(format!(
            "data section at byte {data_start} starts past the end of the file ({} bytes)",
            file.len()
        ));
    }
    let mut tensors = Vec::with_capacity(raw.len());
    for (name, dims, ty, offset) in raw {
        let bad = |msg: String| format!("tensor `{name}`: {msg}");
        let elems = dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad(format!("dims {dims:?} overflow")))?;
        if offset % alignment != 0 {
            return Err(bad(format!("offset {offset} is not a multiple of the alignment {alignment}")));
        }
        let range = match type_info(ty) {
            None => None,
            Some((tname, block, block_bytes)) => {
                if dims[0] % block != 0 {
                    return Err(bad(format!("{tname} needs rows of a multiple of {block} elements, got {}", dims[0])));
                }
                let bytes = (elems / block).checked_mul(block_bytes).ok_or_else(|| bad("size overflows".into()))?;
                let start = data_start.checked_add(offset).ok_or_else(|| bad("offset overflows".into()))?;
                let end = start.checked_add(bytes).ok_or_else(|| bad("offset overflows".into()))?;
                if end > file.len() as u64 {
                    return Err(bad(format!(
                        "{tname} data at bytes {start}..{end} runs past the end of the file ({} bytes; truncated?)",
                        file.len()
                    )));
                }
                Some((start as usize, end as usize))
            }
        };
        tensors.push(TensorInfo { name, dims, ty, range });
    }
    let mut ranges: Vec<&TensorInfo> = tensors.iter().filter(|t| t.range.is_some_and(|(s, e)| e > s)).collect();
    ranges.sort_by_key(|t| t.range.expect("filtered").0);
    for w in ranges.windows(2) {
        if w[1].range.expect("filtered").0 < w[0].range.expect("filtered").1 {
            return Err(format!("tensors `{}` and `{}` overlap", w[0].name, w[1].name));
        }
    }
    Ok(Gguf { version, metadata, tensors, alignment })
}

/// A tensor to write: name, dims (innermost first), ggml type, raw bytes.
pub type Entry<'a> = (&'a str, &'a [u64], u32, &'a [u8]);

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U(x) => out.extend_from_slice(&(*x as u32).to_le_bytes()),
        Value::I(x) => out.extend_from_slice(&(*x as i32).to_le_bytes()),
        Value::F(x) => out.extend_from_slice(&(*x as f32).to_le_bytes()),
        Value::Bool(b) => out.push(*b as u8),
        Value::Str(s) => put_str(out, s),
        Value::Array(t, items) => {
            out.extend_from_slice(&t.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            items.iter().for_each(|i| put_value(out, i));
        }
    }
}

fn value_type(v: &Value) -> u32 {
    match v {
        Value::U(_) => 4,
        Value::I(_) => 5,
        Value::F(_) => 6,
        Value::Bool(_) => 7,
        Value::Str(_) => 8,
        Value::Array(..) => 9,
    }
}

/// A GGUF v3 file with `metadata` (integers written as u32/i32, floats as f32) and `tensors`,
/// data aligned to [`DEFAULT_ALIGNMENT`].
pub fn write(metadata: &[(&str, Value)], tensors: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(tensors.len() as u64).to_le_bytes());
    out.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        put_str(&mut out, k);
        out.extend_from_slice(&value_type(v).to_le_bytes());
        put_value(&mut out, v);
    }
    let a = DEFAULT_ALIGNMENT as usize;
    let mut off = 0usize;
    for (name, dims, t, data) in tensors {
        put_str(&mut out, name);
        out.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        dims.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(&(off as u64).to_le_bytes());
        off = (off + data.len()).div_ceil(a) * a;
    }
    out.resize(out.len().div_ceil(a) * a, 0);
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(a) * a, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let w = [7u8; 66];
        let n = [1u8; 8];
        let file = write(
            &[("general.architecture", Value::Str("bitnet".into())), ("x.n", Value::U(5))],
            &[("a", &[256, 1], ty::TQ2_0, &w), ("b", &[2], ty::F32, &n)],
        );
        let g = parse(&file).unwrap();
        assert_eq!(g.metadata["general.architecture"].as_str(), Some("bitnet"));
        assert_eq!(g.metadata["x.n"].as_u64(), Some(5));
        let (s, e) = g.tensors[0].range.unwrap();
        assert_eq!(&file[s..e], &w[..]);
        let (s, e) = g.tensors[1].range.unwrap();
        assert_eq!(&file[s..e], &n[..]);
        assert!(parse(&file[..file.len() - 40]).unwrap_err().contains("tensor `b`"));
        assert!(parse(b"GGUF\x01\0\0\0").unwrap_err().contains("version 1"));
        assert!(parse(b"GGML\x03\0\0\0").unwrap_err().contains("not `GGUF`"));
    }
}
