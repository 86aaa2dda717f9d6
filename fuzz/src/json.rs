//! Arbitrary JSON values, biased towards the keys and strings a target cares about, so
//! the fuzzer reaches deep structure without having to guess field names.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Number, Value};

/// A generator of JSON values whose object keys and strings are often taken from
/// `words` (and otherwise arbitrary).
pub struct Gen<'w> {
    /// Interesting object keys and string values.
    pub words: &'w [&'w str],
    /// Deepest nesting produced.
    pub max_depth: usize,
}

impl Gen<'_> {
    /// A string: one of the words, a word with arbitrary text around it, or arbitrary text.
    pub fn string(&self, u: &mut Unstructured) -> Result<String> {
        Ok(match u.int_in_range(0..=3)? {
            0 | 1 if !self.words.is_empty() => u.choose(self.words)?.to_string(),
            2 if !self.words.is_empty() => {
                let word = u.choose(self.words)?;
                let before: String = u.arbitrary()?;
                let after: String = u.arbitrary()?;
                format!("{before}{word}{after}")
            }
            _ => u.arbitrary()?,
        })
    }

    /// Any JSON value, at most `max_depth` deep.
    pub fn value(&self, u: &mut Unstructured) -> Result<Value> {
        self.value_at(u, 0)
    }

    fn value_at(&self, u: &mut Unstructured, depth: usize) -> Result<Value> {
        let leaf_only = depth >= self.max_depth;
        Ok(match u.int_in_range(0..=if leaf_only { 5 } else { 7 })? {
            0 => Value::Null,
            1 => Value::Bool(u.arbitrary()?),
            2 => Value::from(u.arbitrary::<i64>()?),
            3 => Value::from(u.int_in_range(0u64..=12)?),
            4 => Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
            5 => Value::String(self.string(u)?),
            6 => {
                let len = u.int_in_range(0..=4)?;
                let mut items = Vec::with_capacity(len);
                for _ in 0..len {
                    items.push(self.value_at(u, depth + 1)?);
                }
                Value::Array(items)
            }
            _ => Value::Object(self.object_at(u, depth + 1)?),
        })
    }

    /// An object with up to 6 entries.
    pub fn object(&self, u: &mut Unstructured) -> Result<Map<String, Value>> {
        self.object_at(u, 0)
    }

    fn object_at(&self, u: &mut Unstructured, depth: usize) -> Result<Map<String, Value>> {
        let len = u.int_in_range(0..=6)?;
        let mut map = Map::new();
        for _ in 0..len {
            let key = self.string(u)?;
            let value = self.value_at(u, depth)?;
            map.insert(key, value);
        }
        Ok(map)
    }
}
