"""Run the conformance vectors (tests/vectors/*.json) against Aperture's policy
components in a second foreign host: Python's `wasmtime` package, through its
dynamic `wasmtime.component` API (no generated bindings) with WASIp2 linked.

Each slot given on the command line is checked against its vector file with the
same encoding as the Rust host (host/src/policy/vectors.rs): records are objects
keyed by field name, enums and payload-less cases are strings, a case with a
payload is {"case": payload}, option is null or the value, result is {"ok": v} or
{"err": e}; `expect_json` compares a returned JSON string as a parsed value.
Every case runs on a fresh instance. Exit status 0 only if every case passes;
otherwise every failing case is listed with what was expected and what came back.
"""

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path

import wasmtime
from wasmtime import component as wc

VECTOR_FILES = {
    "translator": "request-translator.json",
    "safety": "safety-policy.json",
    "classifier": "error-classifier.json",
}


def case_types(ty):
    """The (name, payload type or None) cases of a variant-like type."""
    if isinstance(ty, wc.VariantType):
        return ty.cases
    if isinstance(ty, wc.OptionType):
        return [("none", None), ("some", ty.payload)]
    if isinstance(ty, wc.ResultType):
        return [("ok", ty.ok), ("err", ty.err)]
    raise TypeError(f"not a variant-like type: {ty!r}")


def classes(ty):
    """The Python classes that values of a case's payload can have."""
    found = set()
    if ty is None:
        found.add(object)
    else:
        ty.add_classes(found)
    return found


def tagged(ty):
    """Whether the package represents this variant-like type as `wc.Variant`
    (when the Python classes of its cases overlap) or as the bare payload."""
    seen = set()
    for _, payload in case_types(ty):
        mine = classes(payload)
        if mine & seen:
            return True
        seen |= mine
    return False


def to_py(ty, v, where="value"):
    """Decode the vector encoding `v` as a Python value of component type `ty`."""
    def want(what):
        return ValueError(f"{where}: expected {what}, got {json.dumps(v)}")

    if isinstance(ty, wc.Bool):
        if not isinstance(v, bool):
            raise want("a bool")
        return v
    if isinstance(ty, (wc.S8, wc.S16, wc.S32, wc.S64, wc.U8, wc.U16, wc.U32, wc.U64)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise want("an integer")
        return v
    if isinstance(ty, (wc.F32, wc.F64)):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise want("a number")
        return float(v)
    if isinstance(ty, (wc.String, wc.Char)):
        if not isinstance(v, str):
            raise want("a string")
        return v
    if isinstance(ty, wc.ListType):
        if not isinstance(v, list):
            raise want("an array")
        return [to_py(ty.element, i, f"{where}[{n}]") for n, i in enumerate(v)]
    if isinstance(ty, wc.TupleType):
        if not isinstance(v, list) or len(v) != len(ty.elements):
            raise want(f"an array of {len(ty.elements)}")
        return tuple(to_py(t, i, f"{where}[{n}]") for n, (t, i) in enumerate(zip(ty.elements, v)))
    if isinstance(ty, wc.RecordType):
        if not isinstance(v, dict):
            raise want("an object")
        rec = wc.Record()
        for name, fty in ty.fields:
            setattr(rec, name, to_py(fty, v.get(name), f"{where}.{name}"))
        return rec
    if isinstance(ty, wc.EnumType):
        if v not in ty.names:
            raise want(f"one of {ty.names}")
        return v
    if isinstance(ty, wc.FlagsType):
        if not isinstance(v, list) or any(f not in ty.names for f in v):
            raise want(f"a list of flags from {ty.names}")
        return set(v)
    if isinstance(ty, (wc.VariantType, wc.OptionType, wc.ResultType)):
        if isinstance(ty, wc.OptionType):
            name, payload = ("none", None) if v is None else ("some", v)
        elif isinstance(v, str):
            name, payload = v, None
        elif isinstance(v, dict) and len(v) == 1:
            (name, payload), = v.items()
        else:
            raise want("a case name or {case: payload}")
        cases = dict(case_types(ty))
        if name not in cases:
            raise want(f"a case of {sorted(cases)}")
        pty = cases[name]
        value = None if pty is None else to_py(pty, payload, f"{where}.{name}")
        if tagged(ty):
            return wc.Variant(name, value)
        return value
    raise ValueError(f"{where}: type {ty!r} cannot be written in a vector")


def to_json(ty, v):
    """Encode a Python value of component type `ty` in the vector encoding."""
    if ty is None:
        return None
    if isinstance(ty, (wc.ListType,)):
        return [to_json(ty.element, i) for i in v]
    if isinstance(ty, wc.TupleType):
        return [to_json(t, i) for t, i in zip(ty.elements, v)]
    if isinstance(ty, wc.RecordType):
        return {name: to_json(fty, getattr(v, name)) for name, fty in ty.fields}
    if isinstance(ty, wc.FlagsType):
        return [f for f in ty.names if f in v]
    if isinstance(ty, (wc.VariantType, wc.OptionType, wc.ResultType)):
        if tagged(ty):
            name, payload = v.tag, v.payload
        else:
            name, payload = next(
                (n, v) for n, p in case_types(ty)
                if (v is None) == (p is None) and (p is None or isinstance(v, tuple(classes(p))))
            )
        pty = dict(case_types(ty))[name]
        if isinstance(ty, wc.OptionType):
            return None if name == "none" else to_json(pty, payload)
        if isinstance(ty, wc.ResultType):
            return {name: to_json(pty, payload)}
        if pty is None:
            return name
        return {name: to_json(pty, payload)}
    return v  # bool, numbers, strings, chars and enums are already JSON


def call_case(engine, linker, component, interface, case):
    """Run one case on a fresh instance; return (actual JSON, None) or (None, problem)."""
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())  # no files, env, args or network
    instance = linker.instantiate(store, component)
    iface = instance.get_export_index(store, interface)
    index = iface and instance.get_export_index(store, case["function"], iface)
    func = index and instance.get_func(store, index)
    if func is None:
        return None, f"no export `{case['function']}` in `{interface}`"
    fty = func.type(store)
    args = case.get("args") or []
    if len(args) != len(fty.params):
        return None, f"{case['function']} takes {len(fty.params)} arguments, the case gives {len(args)}"
    try:
        params = [to_py(t, a, name) for (name, t), a in zip(fty.params, args)]
    except ValueError as e:
        return None, f"bad arguments: {e}"
    try:
        result = func(store, *params)
    except wasmtime.WasmtimeError as e:
        return None, f"call failed: {e}"
    return to_json(fty.result, result), None


def compare(case, actual):
    """None if `actual` is what the case expects, else the difference."""
    if "expect_json" in case:
        try:
            parsed = json.loads(actual)
        except (TypeError, ValueError):
            return f"expected a JSON string result, got {json.dumps(actual)}"
        if parsed != case["expect_json"]:
            return f"expected JSON {json.dumps(case['expect_json'])}\n     got JSON {json.dumps(parsed)}"
        return None
    expected = case.get("expect")
    if actual != expected:
        return f"expected {json.dumps(expected)}\n     got {json.dumps(actual)}"
    return None


def check(engine, slot, path, vectors_dir):
    """Run one slot's vectors against the component at `path`; return the failures."""
    vectors = json.loads((vectors_dir / VECTOR_FILES[slot]).read_text())
    component = wc.Component.from_file(engine, str(path))
    linker = wc.Linker(engine)
    linker.add_wasip2()
    failures = []
    for case in vectors["cases"]:
        actual, problem = call_case(engine, linker, component, vectors["interface"], case)
        if problem is None:
            problem = compare(case, actual)
        if problem is not None:
            failures.append(f"- {case['name']}\n     input {json.dumps(case.get('args'))}\n     {problem}")
    print(f"{slot}: {len(vectors['cases']) - len(failures)} of {len(vectors['cases'])} vectors pass ({path})")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for slot in VECTOR_FILES:
        parser.add_argument(f"--{slot}", type=Path, metavar="FILE.wasm",
                            help=f"the {slot} component to check")
    parser.add_argument("--vectors", type=Path,
                        default=Path(__file__).resolve().parent.parent / "vectors",
                        help="the directory of the vector files (default: tests/vectors)")
    args = parser.parse_args()
    slots = {s: getattr(args, s) for s in VECTOR_FILES if getattr(args, s) is not None}
    if not slots:
        parser.error("name at least one component: --translator, --safety or --classifier")
    engine = wasmtime.Engine()
    failures = []
    for slot, path in slots.items():
        if not path.is_file():
            parser.error(f"--{slot}: no file at {path}")
        failures += check(engine, slot, path, args.vectors)
    if failures:
        print(f"{len(failures)} vector(s) failed in Python's wasmtime {version('wasmtime')}:",
              file=sys.stderr)
        print("\n".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
