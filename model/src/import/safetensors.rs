//! The safetensors container, parsed by hand so every malformed header is a clear error (never a
//! panic) and so the same function can be fuzzed: an 8-byte little-endian header length `N`, `N`
//! bytes of JSON `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`,
//! then the data; offsets are relative to the end of the header.
//!
//! Writing is here too ([`serialize`]), so test fixtures and benchmarks can produce every dtype
//! this importer reads (including the `U8` packed BitNet tensors).

use std::collections::BTreeMap;

/// Largest header accepted (the format's own limit is 100 MB).
pub const MAX_HEADER: usize = 100 << 20;

/// One tensor of a safetensors file: dtype name, shape, and its byte range in the whole file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The dtype as the file spells it (`F32`, `BF16`, `U8`, ...).
    pub dtype: String,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// First byte, from the start of the file.
    pub start: usize,
    /// One past the last byte, from the start of the file.
    pub end: usize,
}

/// A parsed header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    /// Tensors by name.
    pub tensors: BTreeMap<String, TensorInfo>,
    /// `__metadata__` (string to string), if present.
    pub metadata: BTreeMap<String, String>,
}

/// Bytes per element of a safetensors dtype; `None` for names the format does not define.
pub fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "U16" | "I16" | "F16" | "BF16" => 2,
        "U32" | "I32" | "F32" => 4,
        "U64" | "I64" | "F64" => 8,
        _ => return None,
    })
}

/// Parse and check the header of a whole safetensors file: every tensor's dtype is known, its
/// byte count matches its shape, and its range lies inside the file without overlapping another.
/// The error names the tensor or the field that is wrong.
pub fn parse(file: &[u8]) -> Result<Header, String> {
    if file.len() < 8 {
        return Err(format!("{} bytes is too short for the 8-byte header length", file.len()));
    }
    let n = u64::from_le_bytes(file[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER as u64 {
        return Err(format!("header length {n} is above the {MAX_HEADER}-byte limit"));
    }
    let n = n as usize;
    if n > file.len() - 8 {
        return Err(format!("header length {n} runs past the end of the file ({} bytes)", file.len()));
    }
    let data_start = 8 + n;
    let data_len = file.len() - data_start;
    let json: serde_json::Value =
        serde_json::from_slice(&file[8..data_start]).map_err(|e| format!("header is not valid JSON: {e}"))?;
    let obj = json.as_object().ok_or("header is not a JSON object")?;
    let mut h = Header::default();
    for (name, v) in obj {
        if name == "__metadata__" {
            let m = v.as_object().ok_or("`__metadata__` is not an object")?;
            for (k, v) in m {
                let s = v.as_str().ok_or_else(|| format!("`__metadata__.{k}` is not a string"))?;
                h.metadata.insert(k.clone(), s.to_string());
            }
            continue;
        }
        let bad = |msg: String| format!("tensor `{name}`: {msg}");
        let t = v.as_object().ok_or_else(|| bad("entry is not an object".into()))?;
        let dtype = t.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| bad("no `dtype` string".into()))?;
        let size = dtype_size(dtype).ok_or_else(|| bad(format!("unknown dtype `{dtype}`")))?;
        let shape = t.get("shape").and_then(|s| s.as_array()).ok_or_else(|| bad("no `shape` array".into()))?;
        let shape: Vec<usize> = shape
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("`shape` holds something other than non-negative integers".into()))?;
        let offs = t
            .get("data_offsets")
            .and_then(|o| o.as_array())
            .filter(|o| o.len() == 2)
            .ok_or_else(|| bad("`data_offsets` is not a [begin, end] pair".into()))?;
        let (b, e) = match (offs[0].as_u64(), offs[1].as_u64()) {
            (Some(b), Some(e)) => (b, e),
            _ => return Err(bad("`data_offsets` are not non-negative integers".into())),
        };
        if b > e || e > data_len as u64 {
            return Err(bad(format!(
                "data_offsets [{b}, {e}] are outside the {data_len} data bytes (truncated file?)"
            )));
        }
        let bytes = shape
            .iter()
            .try_fold(size, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| bad(format!("shape {shape:?} overflows")))?;
        if bytes as u64 != e - b {
            return Err(bad(format!(
                "shape {shape:?} of {dtype} needs {bytes} bytes but data_offsets [{b}, {e}] hold {}",
                e - b
            )));
        }
        let info = TensorInfo {
            dtype: dtype.to_string(),
            shape,
            start: data_start + b as usize,
            end: data_start + e as usize,
        };
        h.tensors.insert(name.clone(), info);
    }
    let mut ranges: Vec<(&String, &TensorInfo)> = h.tensors.iter().filter(|(_, t)| t.end > t.start).collect();
    ranges.sort_by_key(|(_, t)| t.start);
    for w in ranges.windows(2) {
        if w[1].1.start < w[0].1.end {
            return Err(format!("tensors `{}` and `{}` overlap", w[0].0, w[1].0));
        }
    }
    Ok(h)
}

/// A tensor to write: name, dtype name, shape, raw little-endian bytes.
pub type Entry<'a> = (&'a str, &'a str, &'a [usize], &'a [u8]);

/// A safetensors file holding `tensors` (in the given order) and `metadata`.
pub fn serialize(tensors: &[Entry], metadata: &[(&str, &str)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    if !metadata.is_empty() {
        let m: serde_json::Map<String, serde_json::Value> =
            metadata.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect();
        header.insert("__metadata__".into(), serde_json::Value::Object(m));
    }
    let mut off = 0usize;
    for (name, dtype, shape, data) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [off, off + data.len()] }),
        );
        off += data.len();
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header)).expect("json");
    while json.len() % 8 != 0 {
        json.push(b' '); // the format pads the header with spaces to an 8-byte boundary
    }
    let mut out = Vec::with_capacity(8 + json.len() + off);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    for (_, _, _, data) in tensors {
        out.extend_from_slice(data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_byte_ranges() {
        let a = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let b = [9u8; 3];
        let file = serialize(&[("a", "F32", &[2], &a), ("b", "U8", &[3, 1], &b)], &[("format", "pt")]);
        let h = parse(&file).unwrap();
        assert_eq!(h.metadata["format"], "pt");
        let ta = &h.tensors["a"];
        assert_eq!((&file[ta.start..ta.end], ta.shape.as_slice()), (&a[..], &[2usize][..]));
        let tb = &h.tensors["b"];
        assert_eq!(&file[tb.start..tb.end], &b[..]);
    }

    #[test]
    fn bad_headers_name_the_problem() {
        let ok = serialize(&[("w", "F16", &[2, 2], &[0u8; 8])], &[]);
        assert!(parse(&ok[..ok.len() - 1]).unwrap_err().contains("tensor `w`"));
        let mut wrong = ok.clone();
        let s = String::from_utf8_lossy(&wrong).replace("F16", "Q9_");
        wrong = s.into_bytes();
        assert!(parse(&wrong).unwrap_err().contains("unknown dtype `Q9_`"));
        assert!(parse(b"\xff\xff\xff\xff\xff\xff\xff\x7f{}").unwrap_err().contains("limit"));
        assert!(parse(b"\x02\0\0\0\0\0\0\0[]").unwrap_err().contains("not a JSON object"));
    }
}
