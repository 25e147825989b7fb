#!/usr/bin/env python3
"""Compiles and links every C++ code block of the given Markdown files against an installed orderly
(its pkg-config flags, orderly and orderly-tls), so that a snippet a reader copies builds as written.

The convention (docs/testing.md): a block fenced ```cpp (or ```c++) is one translation unit. Its
leading lines -- #include and other preprocessor lines, `using` declarations, comments and blank
lines -- stay at file scope; everything from the first other line on becomes the body of a function
(snippets are statements, as in a tutorial). A block that defines `main(` is compiled as it is. A
block fenced ```cpp file is a file of definitions, compiled as it is with a main() added. A
block fenced ```cpp no-compile is skipped; the prose must say why. Nothing is added to a snippet
but that function: no include, no using, so a snippet that needs one must show it.

Usage: doc_snippets.py (--install BUILD_DIR | --pkg-config-path DIR) [--cxx CXX] [--cxx-flags FLAGS] [--work DIR] FILE.md...
Exits 1 naming FILE:LINE of each block that does not compile, with the compiler's errors."""

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile

CXX_TAGS = {"cpp", "c++"}
FILE_SCOPE = re.compile(r"^\s*(#|using\b|//|$)")
# Warnings that a copied snippet must not trigger; an unused variable is fine in a fragment.
WARNINGS = ["-Wall", "-Wextra", "-Werror", "-Wno-unused-variable", "-Wno-unused-but-set-variable",
            "-Wno-unused-parameter"]


def blocks(path):
    """Yields (first line number, info words, lines) of each fenced block in a Markdown file."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^\s*```(.*)$", lines[i])
        if m:
            j = i + 1
            while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
                j += 1
            yield i + 1, m.group(1).split(), lines[i + 1:j]
            i = j
        i += 1


def translation_unit(path, first, lines, whole_file=False):
    """The block as a .cpp file; #line makes the compiler's errors name the Markdown lines."""
    at = lambda n: '#line %d "%s"\n' % (n, path.replace("\\", "/"))
    if any(re.search(r"\bmain\s*\(", line) for line in lines):
        return at(first) + "\n".join(lines) + "\n"
    if whole_file:  # definitions at file scope (```cpp file): only a main() to link it
        return at(first) + "\n".join(lines) + "\nint main() { return 0; }\n"
    k = 0
    while k < len(lines) and FILE_SCOPE.match(lines[k]):
        k += 1
    head, body = lines[:k], lines[k:]
    return (at(first) + "\n".join(head) + "\nvoid orderly_doc_snippet() {\n" + at(first + k) +
            "\n".join(body) + "\n}\nint main() { return 0; }\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--install", metavar="BUILD_DIR",
                    help="first install this build tree into WORK/prefix and use that")
    ap.add_argument("--pkg-config-path")
    ap.add_argument("--cxx", default="c++")
    ap.add_argument("--cxx-flags", default="")
    ap.add_argument("--work", default=None)
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()

    work = a.work or tempfile.mkdtemp(prefix="orderly-snippets-")
    os.makedirs(work, exist_ok=True)
    if a.install:
        prefix = os.path.join(work, "prefix")
        r = subprocess.run(["cmake", "--install", a.install, "--prefix", prefix],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print("cmake --install %s failed:\n%s" % (a.install, r.stdout))
            return 1
        found = [d for d, _, names in os.walk(prefix) if "orderly.pc" in names]
        if not found:
            print("no orderly.pc installed under " + prefix)
            return 1
        a.pkg_config_path = found[0]
    if not a.pkg_config_path:
        ap.error("give --install BUILD_DIR or --pkg-config-path DIR")
    env = dict(os.environ, PKG_CONFIG_PATH=a.pkg_config_path)
    pc = subprocess.run(["pkg-config", "--cflags", "--libs", "orderly", "orderly-tls"], env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if pc.returncode != 0:
        print("pkg-config does not know orderly under " + a.pkg_config_path + ": " + pc.stderr)
        return 1

    compiled, skipped, failed = 0, 0, []
    for path in a.files:
        for line, info, lines in blocks(path):
            if not info or info[0].lower() not in CXX_TAGS:
                continue
            where = "%s:%d" % (path, line)
            if "no-compile" in info[1:]:
                skipped += 1
                continue
            name = re.sub(r"[^A-Za-z0-9]+", "_", os.path.basename(path)) + "_%d" % line
            src = os.path.join(work, name + ".cpp")
            with open(src, "w", encoding="utf-8") as f:
                f.write(translation_unit(path, line + 1, lines, "file" in info[1:]))
            cmd = ([a.cxx] + shlex.split(a.cxx_flags) + ["-std=c++20"] + WARNINGS +
                   [src, "-o", os.path.join(work, name)] + shlex.split(pc.stdout))
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            compiled += 1
            if r.returncode != 0:
                failed.append(where)
                print("%s: does not compile (as %s):\n%s" % (where, src, r.stdout))
    print("doc snippets: %d compiled, %d skipped (no-compile), %d failed" %
          (compiled, skipped, len(failed)))
    for where in failed:
        print("FAILED " + where)
    if compiled == 0:
        print("no ```cpp block found: is the extraction broken?")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
