#!/usr/bin/env python3
"""Checks the generated Swift bindings where no Swift compiler exists (Linux CI):

1. the Swift source parses (tree-sitter-swift, no error nodes);
2. its C header compiles, and a C program taking the address of every function it declares
   links against the library (every declared symbol is exported);
3. every FFI symbol the Swift code calls is exported by the library, and every API checksum
   the Swift code expects equals the library's (what the Swift initializer checks at run time),
   as does the contract version;
4. the public API surface equals the committed snapshot (UPDATE_API_SNAPSHOT=1 rewrites it).

Prints "swift: N passed, M failed" and exits non-zero on any failure.
"""

import argparse
import ctypes
import os
import re
import subprocess
import sys
import tempfile

import tree_sitter_swift
from tree_sitter import Language, Parser

FFI_SYMBOL = re.compile(r"\b((?:uniffi|ffi)_edgekeep_ffi_\w+)\b")


# Valid Swift that tree-sitter-swift 0.7 does not parse, normalized before parsing (each is
# counted in the output): documentation-only attributes under `#if swift(...)`, and closures
# returning the empty tuple `{ () }` (equivalent to `{ }`).
GRAMMAR_GAPS = [
    (re.compile(rb"[ \t]*#if swift\(>=5\.8\)\n[ \t]*@_documentation\(visibility: private\)\n[ \t]*#endif\n"), b""),
    (re.compile(rb"\{ \(\) \}"), b"{ }"),
]


def parse_swift(source: bytes):
    """Nodes that failed to parse (with their line), whether the tree has errors, and how many
    grammar gaps were normalized."""
    normalized = 0
    for pattern, replacement in GRAMMAR_GAPS:
        source, n = pattern.subn(replacement, source)
        normalized += n
    tree = Parser(Language(tree_sitter_swift.language())).parse(source)
    errors, stack = [], [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_error or node.is_missing:
            errors.append(f"line {node.start_point[0] + 1}: {node.type}")
        stack.extend(node.children)
    return errors, tree.root_node.has_error, normalized


def exported_symbols(library: str):
    out = subprocess.run(["nm", "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def header_links(header: str, library: str):
    """Compiles the header and links a program that references every declared function.

    The header is written for clang; gcc gets clang's nullability qualifiers defined away."""
    text = open(header).read()
    functions = sorted(set(re.findall(r"^\w[\w\s\*]*?\b((?:uniffi|ffi)_edgekeep_ffi_\w+)\s*\(",
                                      text, re.M)))
    with tempfile.TemporaryDirectory() as tmp:
        program = os.path.join(tmp, "link.c")
        with open(program, "w") as f:
            f.write(f'#include "{os.path.abspath(header)}"\n')
            f.write("void *const symbols[] = {\n")
            f.writelines(f"    (void *)&{name},\n" for name in functions)
            f.write("};\nint main(void) { return symbols[0] == 0; }\n")
        lib_dir = os.path.dirname(os.path.abspath(library))
        result = subprocess.run(
            ["cc", "-std=c11", "-Wall", "-Werror", "-D_Nonnull=", "-D_Nullable=", program, "-o", os.path.join(tmp, "link"),
             f"-L{lib_dir}", "-ledgekeep_ffi", f"-Wl,-rpath,{lib_dir}"],
            capture_output=True, text=True)
        return functions, result.returncode == 0, result.stderr


def strip_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"//[^\n]*", "", source)


def api_surface(source: str):
    """The public declarations of the generated Swift, one per line, bodies dropped."""
    internal = re.compile(r"FfiConverter|Uniffi|NoHandle|uniffi|RustBuffer|ForeignBytes|fileprivate|"
                          r"private |\blift\b|\blower\b|\bread\(|\bwrite\(|handle")
    lines, depth, statement, skip = [], 0, "", None

    def take(s, opening):
        nonlocal skip
        s = re.sub(r"\)(throws|async)", r") \1", " ".join(s.split()))
        s = s.replace("( ", "(").replace(" )", ")")
        if not s or skip is not None or depth > 1:
            return
        public = s.startswith(("public ", "open "))
        member = public or s.startswith(("case ", "func ", "var ", "init(", "convenience init"))
        if (public if depth == 0 else member) and not internal.search(s):
            lines.append("    " * depth + s)
        elif opening:
            skip = depth

    for c in strip_comments(source):
        balanced = statement.count("(") == statement.count(")")
        if c == "{":
            if balanced:
                take(statement, True)
            statement = ""
            depth += 1
        elif c == "}":
            depth -= 1
            statement = ""
            if skip is not None and depth == skip:
                skip = None
        elif c == "\n" and balanced and statement.strip() not in ("public", "open"):
            take(statement, False)
            statement = ""
        else:
            statement += " " if c == "\n" else c
    return "\n".join(lines) + "\n"


def readme_snippet(readme: str) -> str:
    """The Swift block after `<!-- checked: swift -->` in the README."""
    m = re.search(r"<!-- checked: swift -->\s*```swift\n(.*?)```", open(readme).read(), re.S)
    return m.group(1) if m else ""


def snippet_calls_exist(snippet: str, generated: str):
    """Calls of generated API in the snippet (`name(label:`, `EdgeKeepError.Case`) whose
    label the generated API lacks. Platform calls (CryptoKit, Foundation) are not checked."""
    missing = []
    declared = set(re.findall(r"(?:func|struct|class|enum|protocol) (\w+)", generated))
    for name, label in set(re.findall(r"\b(\w+)\((\w+):", snippet)):
        if name not in declared:
            continue
        if name[0].islower():
            ok = re.search(rf"func {name}\({label}:", generated)
        else:
            ok = re.search(rf"(struct|class) {name}\b", generated) and re.search(rf"init\((\s*){label}:", generated)
        if not ok:
            missing.append(f"{name}({label}:")
    for case in set(re.findall(r"EdgeKeepError\.(\w+)", snippet)):
        if not re.search(rf"case {case}\b", generated):
            missing.append(f"EdgeKeepError.{case}")
    return sorted(missing)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--swift-dir", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--snapshot", required=True)
    ap.add_argument("--readme", help="README whose checked Swift snippet must parse and match")
    args = ap.parse_args()
    swift_path = os.path.join(args.swift_dir, "EdgeKeep.swift")
    header = os.path.join(args.swift_dir, "EdgeKeepFFI.h")
    source = open(swift_path, "rb").read()
    text = source.decode()
    passed = failed = 0

    def report(ok, what, detail=""):
        nonlocal passed, failed
        print(("ok    " if ok else "FAIL  ") + what + ("" if ok else f": {detail}"))
        passed, failed = passed + ok, failed + (not ok)

    errors, has_error, normalized = parse_swift(source)
    report(not errors and not has_error,
           f"EdgeKeep.swift parses ({len(text.splitlines())} lines, {normalized} grammar gaps normalized)",
           "; ".join(errors[:10]))

    functions, links, stderr = header_links(header, args.library)
    report(links and len(functions) > 50,
           f"EdgeKeepFFI.h compiles; all {len(functions)} declared functions link", stderr[-2000:])

    exported = exported_symbols(args.library)
    used = set(FFI_SYMBOL.findall(text))
    missing = sorted(used - exported)
    report(not missing and len(used) > 50,
           f"all {len(used)} FFI symbols the Swift code calls are exported", ", ".join(missing[:10]))

    lib = ctypes.CDLL(os.path.abspath(args.library))
    expected = re.findall(r"if \((uniffi_edgekeep_ffi_checksum_\w+)\(\) != (\d+)\)", text)
    wrong = []
    for name, value in expected:
        fn = getattr(lib, name)
        fn.restype = ctypes.c_uint16
        if fn() != int(value):
            wrong.append(f"{name}: swift {value}, library {fn()}")
    report(not wrong and len(expected) > 20, f"all {len(expected)} API checksums match", "; ".join(wrong))

    contract = re.search(r"let bindings_contract_version = (\d+)", text)
    fn = lib.ffi_edgekeep_ffi_uniffi_contract_version
    fn.restype = ctypes.c_uint32
    report(contract is not None and int(contract.group(1)) == fn(),
           "contract version matches", f"swift {contract and contract.group(1)}, library {fn()}")

    surface = api_surface(text)
    if os.environ.get("UPDATE_API_SNAPSHOT") == "1" or not os.path.exists(args.snapshot):
        with open(args.snapshot, "w") as f:
            f.write(surface)
        print(f"wrote {args.snapshot}")
    current = open(args.snapshot).read()
    if current != surface:
        import difflib
        diff = "".join(difflib.unified_diff(current.splitlines(True), surface.splitlines(True),
                                            "committed", "generated"))
        report(False, "API surface equals the snapshot",
               f"the exported API changed; review and run with UPDATE_API_SNAPSHOT=1\n{diff}")
    else:
        report(True, f"API surface equals the snapshot ({len(surface.splitlines())} declarations)")

    if args.readme:
        snippet = readme_snippet(args.readme)
        errors, has_error, _ = parse_swift(snippet.encode())
        missing = snippet_calls_exist(snippet, text)
        report(bool(snippet) and not has_error and not missing,
               "the README's Swift snippet parses and calls only generated API",
               f"parse errors {errors[:5]}, missing {missing}")

    print(f"swift: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
