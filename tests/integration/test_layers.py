#!/usr/bin/env python3
"""visits-server's sources depend on each other one way.

A module is FILE.c with its FILE.h in adapters/h2o. The test reads the sources (it runs
nothing) and holds them to three rules:
  - a header declares only functions of its own module (defined in FILE.c, or inline in
    the header): no header speaks for several modules;
  - a .c file declares no function of another module: it gets them from that module's
    header;
  - no module includes, directly or through others, a module that includes it.
The build refuses implicit declarations, so with the first two rules a call from one
module to another needs an include, and a one-way include graph is a one-way call graph.
"""
import os
import re
import sys
import unittest

SOURCES = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "..", "..", "adapters", "h2o"))
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]+"([^"]+)\.h"', re.M)
NOISE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
DIRECTIVE = re.compile(r'^[ \t]*#(?:[^\n]*\\\n)*[^\n]*', re.M)
ATTRIBUTE = re.compile(r'__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)')
NAME_BEFORE_PAREN = re.compile(r'([A-Za-z_]\w*)\s*\(')


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def top_level(text):
    """(statement, has_body) for each top-level declaration or definition of C text."""
    code = ATTRIBUTE.sub(" ", DIRECTIVE.sub(" ", NOISE.sub(" ", text)))
    out, depth, start = [], 0, 0
    for i, c in enumerate(code):
        if c == "{":
            if depth == 0:
                out.append((code[start:i].strip(), True))
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                start = i + 1
        elif c == ";" and depth == 0:
            out.append((code[start:i].strip(), False))
            start = i + 1
    return out


def functions(text):
    """{name: (static, defined)} of the functions a C file declares or defines."""
    found = {}
    for stmt, has_body in top_level(text):
        first = stmt.split("(", 1)[0]
        if "(" not in stmt or "=" in first or re.match(r"typedef\b", stmt):
            continue
        m = NAME_BEFORE_PAREN.search(stmt)
        if m is None or m.group(1) == "_Static_assert" or re.match(r"[^(]*\(\s*\*", stmt):
            continue  # an assertion, or a pointer to a function
        static = bool(re.match(r"static\b", stmt))
        seen = found.get(m.group(1), (static, False))
        found[m.group(1)] = (static, seen[1] or has_body)
    return found


def modules(directory):
    """module -> {"c": text, "h": text}."""
    mods = {}
    for name in sorted(os.listdir(directory)):
        module, ext = os.path.splitext(name)
        if ext in (".c", ".h"):
            mods.setdefault(module, {})[ext[1:]] = read(os.path.join(directory, name))
    return mods


def find_cycle(graph):
    """One include cycle as a list of modules (first == last), or None."""
    state, path = {}, []

    def visit(m):
        state[m] = "open"
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                return path[path.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        path.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


class Layers(unittest.TestCase):
    def setUp(self):
        self.mods = modules(SOURCES)
        self.assertGreater(len(self.mods), 10, SOURCES)

    def test_a_header_declares_only_its_own_module(self):
        for module, files in self.mods.items():
            declared = functions(files.get("h", ""))
            defined = functions(files.get("c", ""))
            for name, (static, has_body) in declared.items():
                if static or has_body:
                    continue  # inline in the header
                self.assertTrue(defined.get(name, (True, False)) == (False, True),
                                "%s.h declares %s(), which %s.c does not define"
                                % (module, name, module))

    def test_a_source_declares_no_other_modules_function(self):
        for module, files in self.mods.items():
            for name, (static, has_body) in functions(files.get("c", "")).items():
                self.assertTrue(static or has_body,
                                "%s.c declares %s() itself instead of including its "
                                "module's header" % (module, name))

    def test_includes_go_one_way(self):
        graph = {}
        for module, files in self.mods.items():
            used = set(INCLUDE.findall(files.get("c", "") + files.get("h", ""))) - {module}
            for other in used:
                self.assertIn(other, self.mods, "%s includes %s.h, not a file of %s"
                              % (module, other, SOURCES))
            graph[module] = used
        cycle = find_cycle(graph)
        self.assertIsNone(cycle, "include cycle: %s" % " -> ".join(cycle or []))


if __name__ == "__main__":
    if len(sys.argv) > 1 and os.path.isdir(sys.argv[1]):
        SOURCES = sys.argv.pop(1)  # another tree's adapters/h2o, to see the test fail
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
