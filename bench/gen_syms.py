#!/usr/bin/env python3
"""gen_syms.py DIR N: N small functions in assembler, for the scale benchmark.

Writes DIR/g<k>.s, 100,000 functions a file (fewer in the last): each file
a translation unit of its own (.file "g<k>.c"), one function in four
file-local, the others global, every tenth with a 4-byte datum beside it.
Assembler, not C: a million functions build in seconds, and what rewire
reads of them (.symtab, .strtab, sections) is what a compiler would give.
Prints the file names.
"""
import os
import sys

PER_FILE = 100_000


def unit(k, first, count):
    out = [f'\t.file\t"g{k}.c"', "\t.text"]
    for n in range(first, first + count):
        name = f"s{n}"
        if n % 4:
            out.append(f"\t.globl\t{name}")
        out += [f"\t.type\t{name}, @function", f"{name}:",
                f"\tleal\t{n % 1000}(%rdi), %eax", "\tret",
                f"\t.size\t{name}, .-{name}"]
        if n % 10 == 0:
            out += ["\t.data", f"\t.globl\td{n}", f"\t.type\td{n}, @object",
                    f"d{n}:", f"\t.long\t{n}", f"\t.size\td{n}, 4", "\t.text"]
    out.append('\t.section\t.note.GNU-stack,"",@progbits')
    return "\n".join(out) + "\n"


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(d, exist_ok=True)
    names = []
    for k, first in enumerate(range(0, n, PER_FILE)):
        path = f"{d}/g{k}.s"
        with open(path, "w") as f:
            f.write(unit(k, first, min(PER_FILE, n - first)))
        names.append(path)
    print(" ".join(names))


main()
