//! Conformance vectors: JSON files of (function, arguments, expected result) run
//! against any component through wasmtime's dynamic API. The same runner checks
//! the embedded components in tests and gates a candidate before a swap.
//!
//! JSON encoding of WIT values: numbers and bools as themselves; strings and chars
//! as strings; lists and tuples as arrays; records as objects keyed by kebab-case
//! field name; options as `null` or the value; results as `{"ok": v}` / `{"err": v}`;
//! variants as `{"case": payload}` or `"case"` without payload; enums as `"case"`;
//! flags as arrays of names.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use wasmtime::component::{Component, InstancePre, Type, Val};
use wasmtime::Trap;

use super::engine::{CallState, Runtime};
use super::{fail, PolicyError, Which};

/// One vector file: cases for one interface of one component.
#[derive(Debug, Clone, Deserialize)]
pub struct VectorFile {
    /// The component the vectors were written for (informational).
    pub component: String,
    /// The exported interface, e.g. `aperture:policy/translator@0.2.0`.
    pub interface: String,
    /// The cases.
    pub cases: Vec<Case>,
}

/// One input -> expected output.
#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    /// What the case checks.
    pub name: String,
    /// The exported function, e.g. `parse-request`.
    pub function: String,
    /// The arguments, JSON-encoded.
    #[serde(default)]
    pub args: Vec<Value>,
    /// The expected result, JSON-encoded.
    #[serde(default)]
    pub expect: Option<Value>,
    /// For functions returning a JSON string: the expected JSON value.
    #[serde(default)]
    pub expect_json: Option<Value>,
}

/// A case whose actual result differed from the expectation.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The case name.
    pub case: String,
    /// What went wrong (expected vs actual, or a call error).
    pub detail: String,
}

/// The outcome of one case, with what a verification report shows.
#[derive(Debug, Clone)]
pub struct CaseRun {
    /// The case name.
    pub name: String,
    /// The exported function.
    pub function: String,
    /// The arguments, JSON-encoded.
    pub input: Value,
    /// The expected result.
    pub expected: Value,
    /// What came back (or the call's error, as a string).
    pub actual: Value,
    /// `None` when it passed; else what went wrong.
    pub failure: Option<String>,
    /// Whether the call was stopped at its deadline.
    pub timed_out: bool,
    /// Wall time of the call.
    pub elapsed: std::time::Duration,
}

/// Run every case of `file` against the component in `bytes`; returns the mismatches.
pub fn run(
    runtime: &Runtime,
    which: Which,
    bytes: &[u8],
    file: &VectorFile,
) -> Result<Vec<Mismatch>, PolicyError> {
    let invalid = |e: wasmtime::Error| PolicyError::Invalid {
        which,
        detail: format!("{e:#}"),
    };
    let component = Component::new(&runtime.engine, bytes).map_err(invalid)?;
    let pre = runtime
        .linker
        .instantiate_pre(&component)
        .map_err(invalid)?;
    Ok(run_cases(runtime, which, &pre, file)?
        .into_iter()
        .filter_map(|c| {
            c.failure.map(|detail| Mismatch {
                case: c.name,
                detail,
            })
        })
        .collect())
}

/// Run every case of `file` on fresh instances of `pre`, timing each call.
pub fn run_cases(
    runtime: &Runtime,
    which: Which,
    pre: &InstancePre<CallState>,
    file: &VectorFile,
) -> Result<Vec<CaseRun>, PolicyError> {
    let mut runs = Vec::new();
    for case in &file.cases {
        let _permit = runtime.gate.enter();
        let mut store = runtime.store();
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| fail(which, "instantiate", e))?;
        let mut run = CaseRun {
            name: case.name.clone(),
            function: case.function.clone(),
            input: Value::Array(case.args.clone()),
            expected: case
                .expect_json
                .clone()
                .or_else(|| case.expect.clone())
                .unwrap_or(Value::Null),
            actual: Value::Null,
            failure: None,
            timed_out: false,
            elapsed: std::time::Duration::ZERO,
        };
        let func = instance
            .get_export_index(&mut store, None, &file.interface)
            .and_then(|iface| instance.get_export_index(&mut store, Some(&iface), &case.function))
            .and_then(|idx| instance.get_func(&mut store, idx));
        let Some(func) = func else {
            run.failure = Some(format!(
                "no export `{}` in `{}`",
                case.function, file.interface
            ));
            runs.push(run);
            continue;
        };
        let ty = func.ty(&store);
        let params: Result<Vec<Val>, String> = {
            let types: Vec<Type> = ty.params().map(|(_, t)| t).collect();
            if types.len() != case.args.len() {
                Err(format!(
                    "{} takes {} arguments, the case gives {}",
                    case.function,
                    types.len(),
                    case.args.len()
                ))
            } else {
                types
                    .iter()
                    .zip(&case.args)
                    .map(|(t, v)| to_val(t, v))
                    .collect()
            }
        };
        let params = match params {
            Ok(p) => p,
            Err(detail) => {
                run.failure = Some(format!("bad arguments: {detail}"));
                runs.push(run);
                continue;
            }
        };
        let mut results = vec![Val::Bool(false); ty.results().len()];
        let started = std::time::Instant::now();
        let called = func.call(&mut store, &params, &mut results);
        run.elapsed = started.elapsed();
        if let Err(e) = called {
            run.timed_out = matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt));
            run.actual = json!(format!("call failed: {e:#}"));
            run.failure = Some(format!("call failed: {e:#}"));
            runs.push(run);
            continue;
        }
        let actual = results.first().map(to_json).unwrap_or(Value::Null);
        run.failure = compare(case, &actual);
        run.actual = match (&case.expect_json, actual.as_str()) {
            (Some(_), Some(text)) => serde_json::from_str(text).unwrap_or(actual.clone()),
            _ => actual,
        };
        runs.push(run);
    }
    Ok(runs)
}

fn compare(case: &Case, actual: &Value) -> Option<String> {
    if let Some(expected) = &case.expect_json {
        let parsed: Value = match actual.as_str().map(serde_json::from_str) {
            Some(Ok(v)) => v,
            _ => return Some(format!("expected a JSON string result, got {actual}")),
        };
        return (parsed != *expected)
            .then(|| format!("expected JSON {expected}\n     got JSON {parsed}"));
    }
    let expected = case.expect.as_ref().unwrap_or(&Value::Null);
    (actual != expected).then(|| format!("expected {expected}\n     got {actual}"))
}

/// Encode a component value as JSON.
pub fn to_json(val: &Val) -> Value {
    match val {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => json!(n),
        Val::U64(n) => json!(n),
        Val::Float32(n) => json!(n),
        Val::Float64(n) => json!(n),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        Val::Map(pairs) => Value::Array(
            pairs
                .iter()
                .map(|(k, v)| json!([to_json(k), to_json(v)]))
                .collect(),
        ),
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect(),
        ),
        Val::Variant(case, None) | Val::Enum(case) => json!(case),
        Val::Variant(case, Some(payload)) => {
            let mut m = Map::new();
            m.insert(case.clone(), to_json(payload));
            Value::Object(m)
        }
        Val::Option(inner) => inner.as_deref().map(to_json).unwrap_or(Value::Null),
        Val::Result(Ok(v)) => json!({"ok": v.as_deref().map(to_json)}),
        Val::Result(Err(v)) => json!({"err": v.as_deref().map(to_json)}),
        Val::Flags(names) => json!(names),
        other => json!(format!("<unrepresentable {other:?}>")),
    }
}

/// Decode JSON as a component value of type `ty`.
pub fn to_val(ty: &Type, v: &Value) -> Result<Val, String> {
    let want = |what: &str| format!("expected {what}, got {v}");
    let int = |lo: i128, hi: i128| -> Result<i128, String> {
        let n = v
            .as_i64()
            .map(i128::from)
            .or_else(|| v.as_u64().map(i128::from))
            .ok_or_else(|| want("an integer"))?;
        if n < lo || n > hi {
            return Err(format!("{n} is out of range"));
        }
        Ok(n)
    };
    Ok(match ty {
        Type::Bool => Val::Bool(v.as_bool().ok_or_else(|| want("a bool"))?),
        Type::S8 => Val::S8(int(i8::MIN.into(), i8::MAX.into())? as i8),
        Type::U8 => Val::U8(int(0, u8::MAX.into())? as u8),
        Type::S16 => Val::S16(int(i16::MIN.into(), i16::MAX.into())? as i16),
        Type::U16 => Val::U16(int(0, u16::MAX.into())? as u16),
        Type::S32 => Val::S32(int(i32::MIN.into(), i32::MAX.into())? as i32),
        Type::U32 => Val::U32(int(0, u32::MAX.into())? as u32),
        Type::S64 => Val::S64(int(i64::MIN.into(), i64::MAX.into())? as i64),
        Type::U64 => Val::U64(int(0, u64::MAX.into())? as u64),
        Type::Float32 => Val::Float32(v.as_f64().ok_or_else(|| want("a number"))? as f32),
        Type::Float64 => Val::Float64(v.as_f64().ok_or_else(|| want("a number"))?),
        Type::Char => {
            let s = v.as_str().ok_or_else(|| want("a one-character string"))?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(want("a one-character string")),
            }
        }
        Type::String => Val::String(v.as_str().ok_or_else(|| want("a string"))?.to_string()),
        Type::List(list) => {
            let items = v.as_array().ok_or_else(|| want("an array"))?;
            Val::List(
                items
                    .iter()
                    .map(|i| to_val(&list.ty(), i))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Tuple(tuple) => {
            let items = v.as_array().ok_or_else(|| want("an array"))?;
            let types: Vec<Type> = tuple.types().collect();
            if items.len() != types.len() {
                return Err(want(&format!("an array of {}", types.len())));
            }
            Val::Tuple(
                types
                    .iter()
                    .zip(items)
                    .map(|(t, i)| to_val(t, i))
                    .collect::<Result<_, _>>()?,
            )
        }
        Type::Record(record) => {
            let obj = v.as_object().ok_or_else(|| want("an object"))?;
            let mut fields = Vec::new();
            for field in record.fields() {
                let fv = obj.get(field.name).unwrap_or(&Value::Null);
                fields.push((
                    field.name.to_string(),
                    to_val(&field.ty, fv).map_err(|e| format!("{}: {e}", field.name))?,
                ));
            }
            Val::Record(fields)
        }
        Type::Variant(variant) => {
            let (name, payload) = match v {
                Value::String(s) => (s.as_str(), None),
                Value::Object(m) if m.len() == 1 => m
                    .iter()
                    .next()
                    .map(|(k, p)| (k.as_str(), Some(p)))
                    .unwrap_or(("", None)),
                _ => return Err(want("a case name or {case: payload}")),
            };
            let case = variant
                .cases()
                .find(|c| c.name == name)
                .ok_or_else(|| format!("unknown case `{name}`"))?;
            let payload = match (&case.ty, payload) {
                (Some(t), Some(p)) => Some(Box::new(to_val(t, p)?)),
                (None, None) | (None, Some(Value::Null)) => None,
                (Some(_), None) => return Err(format!("case `{name}` needs a payload")),
                (None, Some(_)) => return Err(format!("case `{name}` takes no payload")),
            };
            Val::Variant(name.to_string(), payload)
        }
        Type::Enum(e) => {
            let s = v.as_str().ok_or_else(|| want("an enum case name"))?;
            if !e.names().any(|n| n == s) {
                return Err(format!("unknown enum case `{s}`"));
            }
            Val::Enum(s.to_string())
        }
        Type::Option(opt) => match v {
            Value::Null => Val::Option(None),
            other => Val::Option(Some(Box::new(to_val(&opt.ty(), other)?))),
        },
        Type::Result(res) => {
            let obj = v
                .as_object()
                .ok_or_else(|| want("{\"ok\": ..} or {\"err\": ..}"))?;
            let side = |t: Option<Type>, p: &Value| -> Result<Option<Box<Val>>, String> {
                t.map(|t| to_val(&t, p).map(Box::new)).transpose()
            };
            if let Some(p) = obj.get("ok") {
                Val::Result(Ok(side(res.ok(), p)?))
            } else if let Some(p) = obj.get("err") {
                Val::Result(Err(side(res.err(), p)?))
            } else {
                return Err(want("{\"ok\": ..} or {\"err\": ..}"));
            }
        }
        Type::Flags(flags) => {
            let items = v.as_array().ok_or_else(|| want("an array of flag names"))?;
            let mut names = Vec::new();
            for i in items {
                let s = i.as_str().ok_or_else(|| want("flag names"))?;
                if !flags.names().any(|n| n == s) {
                    return Err(format!("unknown flag `{s}`"));
                }
                names.push(s.to_string());
            }
            Val::Flags(names)
        }
        other => return Err(format!("type {other:?} cannot be written in a vector")),
    })
}
