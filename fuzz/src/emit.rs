//! JSON text for a value, written the many ways a peer may write it: escaped where no
//! escape is needed (`\/`, `\u0041`), keys given twice, entries out of order, odd
//! whitespace, and now and then something that is no longer JSON (a raw control
//! character, invalid UTF-8, a lone surrogate, a number out of range). `serde_json`
//! only ever writes one spelling; code that reads raw bodies must handle all of them.

use arbitrary::{Result, Unstructured};
use serde_json::Value;

/// `value` as JSON text, spelled in a way chosen by `u`: a third of the time as
/// `serde_json` writes it, otherwise with some of the quirks above.
pub fn json(value: &Value, u: &mut Unstructured) -> Result<Vec<u8>> {
    if u.ratio(1, 3)? {
        return Ok(serde_json::to_vec(value).expect("a value serialises"));
    }
    // Keys twice in half the quirky texts: everywhere, they would leave no text plain enough
    // for code that reads plain texts faster (its other half).
    let twice = if u.arbitrary()? { 16 } else { 0 };
    let mut out = Vec::new();
    write(value, u, twice, &mut out)?;
    Ok(out)
}

fn space(u: &mut Unstructured, odd: bool, out: &mut Vec<u8>) -> Result<()> {
    if odd {
        let n = u.int_in_range(0..=2)?;
        for _ in 0..n {
            out.push(*u.choose(b" \n\t\r")?);
        }
    }
    Ok(())
}

/// `twice`: one key in that many is written twice (0: none).
fn write(value: &Value, u: &mut Unstructured, twice: u32, out: &mut Vec<u8>) -> Result<()> {
    match value {
        Value::Object(map) => {
            let odd = crate::one_in(u, 8)?;
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            if crate::one_in(u, 4)? {
                entries.reverse();
            }
            out.push(b'{');
            let mut first = true;
            for (key, value) in entries {
                // Now and then a key twice: the same value, null, or an empty object first.
                let earlier = if twice > 0 && crate::one_in(u, twice)? {
                    Some(match u.int_in_range(0..=2)? {
                        0 => value.clone(),
                        1 => Value::Null,
                        _ => Value::Object(Default::default()),
                    })
                } else {
                    None
                };
                for v in earlier.iter().chain(std::iter::once(value)) {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    space(u, odd, out)?;
                    string(key, u, out)?;
                    space(u, odd, out)?;
                    out.push(b':');
                    space(u, odd, out)?;
                    write(v, u, twice, out)?;
                    space(u, odd, out)?;
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            let odd = crate::one_in(u, 8)?;
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                space(u, odd, out)?;
                write(v, u, twice, out)?;
                space(u, odd, out)?;
            }
            out.push(b']');
        }
        Value::String(s) => string(s, u, out)?,
        Value::Number(_) if crate::one_in(u, 128)? => out.extend_from_slice(b"1e400"),
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
    Ok(())
}

fn escaped(c: char, upper: bool, out: &mut Vec<u8>) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        let text = if upper {
            format!("\\u{unit:04X}")
        } else {
            format!("\\u{unit:04x}")
        };
        out.extend_from_slice(text.as_bytes());
    }
}

fn string(s: &str, u: &mut Unstructured, out: &mut Vec<u8>) -> Result<()> {
    let plain = serde_json::to_string(s).expect("a string serialises");
    match u.int_in_range(0..=255u8)? {
        // `\/` for every `/` (serde_json never escapes `/`, so none is part of an escape).
        216..=229 => out.extend_from_slice(plain.replace('/', "\\/").as_bytes()),
        // One character written as `\uXXXX`.
        230..=254 if !s.is_empty() => {
            let chars: Vec<char> = s.chars().collect();
            let at = u.choose_index(chars.len())?;
            let upper = u.arbitrary()?;
            out.push(b'"');
            for (i, &c) in chars.iter().enumerate() {
                if i == at {
                    escaped(c, upper, out);
                } else {
                    let one = serde_json::to_string(&c.to_string()).expect("serialises");
                    out.extend_from_slice(&one.as_bytes()[1..one.len() - 1]);
                }
            }
            out.push(b'"');
        }
        // No longer JSON: a raw byte no string may hold, or a lone surrogate.
        255 => {
            let inner = &plain.as_bytes()[1..plain.len() - 1];
            // Cut only between characters of the escaped text.
            let cuts: Vec<usize> = (0..=inner.len())
                .filter(|&i| i == inner.len() || (inner[i] & 0xC0) != 0x80)
                .filter(|&i| i == 0 || inner[i - 1] != b'\\')
                .collect();
            let at = cuts[u.choose_index(cuts.len())?];
            let bad: &[u8] =
                u.choose(&[&b"\xff"[..], b"\xc3", b"\x01", b"\n", b"\\ud800", b"\\x"])?;
            out.push(b'"');
            out.extend_from_slice(&inner[..at]);
            out.extend_from_slice(bad);
            out.extend_from_slice(&inner[at..]);
            out.push(b'"');
        }
        _ => out.extend_from_slice(plain.as_bytes()),
    }
    Ok(())
}
