//! Where two JSON values differ, as paths (`data.0.b64_json`), so a property can say
//! "only these places may change".

use serde_json::Value;

/// The paths at which `a` and `b` differ. A path ends where the two stop having the
/// same shape (different types, lengths or key sets) or where two scalars differ.
pub fn paths(a: &Value, b: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    walk(a, b, &mut Vec::new(), &mut out);
    out
}

fn walk(a: &Value, b: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y))
            if x.len() == y.len() && x.keys().all(|k| y.contains_key(k)) =>
        {
            for (k, v) in x {
                at.push(k.clone());
                walk(v, &y[k], at, out);
                at.pop();
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                at.push(i.to_string());
                walk(v, w, at, out);
                at.pop();
            }
        }
        _ if a == b => {}
        _ => out.push(at.clone()),
    }
}
