#!/usr/bin/env python3
"""report.py OUT DOCS: DOCS/benchmarks.md and DOCS/bench/*.png from the
measurements bench/run.sh gathered in OUT (OUT/*.dat, bench/lib.sh's
format, and OUT/meta.txt, "KEY<TAB>VALUE" lines about the machine and the
run). Every figure is the median of the run's repetitions, with its
quartiles and extremes; every ratio is of two medians of the same run.
Plots are drawn with gnuplot (pngcairo)."""
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import Fig, load, places  # noqa: E402

OUT, DOCS = sys.argv[1], sys.argv[2]
PLOTS = os.path.join(DOCS, "bench")
data = {}
for name in sorted(os.listdir(OUT)):
    if name.endswith(".dat"):
        data.update(load(os.path.join(OUT, name)))
meta = {}
if os.path.exists(os.path.join(OUT, "meta.txt")):
    for line in open(os.path.join(OUT, "meta.txt")):
        k, _, v = line.rstrip("\n").partition("\t")
        meta[k] = v


def fig(key):
    unit, vals = data.get(key, ("", []))
    return Fig(vals, unit) if vals else None


def one(key):
    unit, vals = data.get(key, ("", []))
    return vals[0] if vals else None


def num(v, digits=None):
    if v is None or v != v:
        return "–"
    d = places(v) if digits is None else digits
    return f"{v:,.{d}f}"


def cell(key, digits=None, unit=""):
    """'**65.9** ms (63.2–68.7; 60.1–70.2)': median (quartiles; extremes)."""
    f = fig(key)
    if not f:
        return "–"
    d = places(f.med) if digits is None else digits
    if f.n == 1:
        return f"{num(f.med, d)}{unit}"
    return (f"**{num(f.med, d)}**{unit} ({num(f.q1, d)}–{num(f.q3, d)}; "
            f"{num(f.min, d)}–{num(f.max, d)})")


def ratio(a, b, digits=None):
    fa, fb = fig(a), fig(b)
    if not fa or not fb or not fb.med:
        return "–"
    r = fa.med / fb.med
    return f"{num(r, digits)}×"


def faster(slow, fast):
    """'rewire 3.2× sooner' or 'rewire 1.5× later'."""
    if not slow or not fast:
        return "–"
    return (f"rewire {num(slow / fast)}× sooner" if slow >= fast
            else f"rewire {num(fast / slow)}× later")


def med(key):
    f = fig(key)
    return f.med if f else None


# --- plots ---------------------------------------------------------------

def gnuplot(name, script):
    path = os.path.join(OUT, name + ".gp")
    with open(path, "w") as f:
        f.write(f"set terminal pngcairo size {script[0]} font 'sans,11' noenhanced\n"
                f"set output '{os.path.join(PLOTS, name + '.png')}'\n" + script[1])
    r = subprocess.run(["gnuplot", path], capture_output=True, text=True)
    if r.returncode:
        print(f"report: gnuplot {name}: {r.stderr.strip()}", file=sys.stderr)
        return False
    return True


def block(name, rows):
    return f"${name} << EOD\n" + "".join(" ".join(str(x) for x in r) + "\n" for r in rows) + "EOD\n"


PROGRAMS = [  # key, title, language
    ("bounce", "examples/bounce (C, 1 unit)", "c"),
    ("gen_c", "generated C: 200 units, 100,000 functions", "c"),
    ("bc", "GNU bc (C), execute.c", "c"),
    ("rust_server", "examples/rust-server (Rust)", "rust"),
    ("rust_http", "bench/rust-http (Rust: tokio, hyper)", "rust"),
    ("gen_rust", "generated Rust crate, 50,000 lines", "rust"),
]
COLORS = {"watch": "#9e9e9e", "compile": "#1f77b4", "rest": "#d62728",
          "alone": "#9ecae1", "restart": "#ff7f0e"}


def plot_latency():
    progs = [p for p in PROGRAMS if fig(p[0] + ".edit_to_running")]
    if not progs:
        return False
    s = ["set multiplot layout 2,3 title \"Edit to running: a one-function edit, from the save "
         "to the program running it (ms)\\nbars: medians; whiskers: 1st to 3rd quartile\" "
         "font 'sans,14'",
         "set style fill solid 0.9 border -1", "set grid ytics", "set xrange [-0.6:2.6]",
         "set yrange [0:*]", "set ylabel 'ms from the save'", "unset key", "set offsets 0,0,graph 0.12,0",
         "set bmargin 4"]
    for key, title, lang in progs:
        w, c = med(key + ".watch") or 0, med(key + ".compile") or 0
        rest = sum(med(f"{key}.{k}") or 0 for k in ("diff", "link", "apply"))
        alone, restart = fig(key + ".compile_alone"), fig(key + ".restart")
        e2e = fig(key + ".edit_to_running")
        label = "cargo build\\nalone" if lang == "rust" else "compile of the\\nunit alone"
        rlabel = "cargo build +\\nrestart" if lang == "rust" else "make +\\nrestart"
        if not restart:
            rlabel = "restart: not\\nmeasured"
        s.append(f"set title '{title}'")
        s.append(f'set xtics ("rewire:\\nsave to patched" 0, "{label}" 1, "{rlabel}" 2)')
        s.append(block("seg", [(0, 0, w, 0), (0, w, w + c, 1), (0, w + c, w + c + rest, 2)]))
        bars = [(1, 0, alone.med, 3)] if alone else []
        if restart:
            bars.append((2, 0, restart.med, 4))
        s.append(block("bars", bars or [(9, 0, 0, 3)]))
        wh = [(0, e2e.med, e2e.q1, e2e.q3)]
        lab = [(0, e2e.q3, f'"{num(e2e.med)}"')]
        for x, f in ((1, alone), (2, restart)):
            if f:
                wh.append((x, f.med, f.q1, f.q3))
                lab.append((x, f.q3, f'"{num(f.med)}"'))
        s.append(block("wh", wh))
        s.append(block("lab", lab))
        pal = ",".join(f"{i} '{COLORS[k]}'" for i, k in
                       enumerate(("watch", "compile", "rest", "alone", "restart")))
        s.append(f"set palette defined ({pal})\nset cbrange [0:4]\nunset colorbox")
        s.append("plot $seg using 1:(($2+$3)/2):($1-0.35):($1+0.35):2:3:4 with boxxyerror "
                 "lc palette, $bars using 1:(($2+$3)/2):($1-0.35):($1+0.35):2:3:4 with "
                 "boxxyerror lc palette, $wh using 1:2:3:4 with yerrorbars lc rgb 'black' pt 0, "
                 "$lab using 1:2:3 with labels offset 0,0.8")
    for _ in range(5 - len(progs)):
        s.append("set multiplot next")
    s += ["set title ''", "unset xtics", "unset ytics", "unset ylabel", "unset border",
          "unset grid", "unset offsets",
          "set key at screen 0.672, screen 0.25 left center Left reverse box spacing 1.5 "
          "width 0 font 'sans,10'",
          "set xrange [0:1]", "set yrange [0:1]",
          "plot 2 notitle, " + ", ".join(f"keyentry with boxes fs solid fc rgb '{COLORS[k]}' title \"{t}\"" for k, t in (
              ("watch", "rewire: watch (inotify, debounce, reading the program)"),
              ("compile", "rewire: compile (C: cc; Rust: the rustc replay)"),
              ("rest", "rewire: diff + link + apply"),
              ("alone", "compile alone (C: cc; Rust: cargo build)"),
              ("restart", "rebuild + restart, until the program shows the edit"))),
          "unset multiplot"]
    return gnuplot("latency", ("1500,950", "\n".join(s) + "\n"))


CALLS = [  # key, label, model?
    ("plain.direct", "direct call,\\nno rewire", 0),
    ("rewire.direct", "direct call to an\\nunpatched function", 0),
    ("rewire.patched", "direct call to a\\npatched function", 0),
    ("rewire.pointer", "call through a\\nfunction pointer", 0),
    ("rewire.hashmap", "MODEL: hash lookup\\n+ indirect call", 1),
    ("rewire.rwlock_dlsym", "MODEL: read lock +\\ndlsym + call", 1),
]


def plot_calls():
    rows = [(i, fig(k), lab, m) for i, (k, lab, m) in enumerate(CALLS) if fig(k)]
    if not rows:
        return False
    lo = 0.5
    s = ["set title \"Cost of one call of a one-line function (ns, log scale)\\n"
         "bars: medians of 21 rounds of 10 million calls (1 million for dlsym); "
         "whiskers: 1st to 3rd quartile\"",
         "set style fill solid 0.9 border -1", "set logscale y", "set bmargin 4", f"set yrange [{lo}:{max(f.q3 for _, f, _, _ in rows) * 4}]",
         "set ylabel 'ns per call (log scale)'", "set grid ytics mytics", "unset key",
         f"set xrange [-0.6:{len(CALLS) - 0.4}]", "set offsets 0,0,graph 0.1,0",
         "set xtics (" + ", ".join(f'"{lab}" {i}' for i, _, lab, _ in rows) + ")",
         block("b", [(i, f.med, 0 if not m and i else (2 if m else 1)) for i, f, _, m in rows]),
         block("wh", [(i, f.med, f.q1, f.q3) for i, f, _, _ in rows]),
         block("lab", [(i, f.q3, f'"{num(f.med)} ns"') for i, f, _, _ in rows]),
         "set palette defined (0 '#1f77b4', 1 '#9ecae1', 2 '#ff7f0e')", "set cbrange [0:2]",
         "unset colorbox",
         f"plot $b using 1:($2):($1-0.35):($1+0.35):({lo}):2:3 with boxxyerror lc palette, "
         "$wh using 1:2:3:4 with yerrorbars lc rgb 'black' pt 0, "
         "$lab using 1:2:3 with labels offset 0,0.8"]
    return gnuplot("calls", ("1300,650", "\n".join(s) + "\n"))


def scale_sizes():
    return [int(v) for v in data.get("scale.sizes", ("", []))[1]]


def plot_scale():
    sizes = [n for n in scale_sizes() if fig(f"scale.{n}.wall")]
    if not sizes:
        return False

    def rows(k):
        return [(n, fig(f"scale.{n}.{k}").med, fig(f"scale.{n}.{k}").q1, fig(f"scale.{n}.{k}").q3)
                for n in sizes]
    s = ["set multiplot layout 1,2 title \"A one-function patch against programs of 1,000 to "
         "1,000,000 functions\\npoints: medians of the patches of each size; whiskers: "
         "1st to 3rd quartile\" font 'sans,13'",
         "set logscale x", "set format x '%.0s%c'", "set grid", "set key top left",
         f"set xrange [{sizes[0] / 2}:{sizes[-1] * 2}]",
         "set xlabel 'functions in the program (log scale)'",
         block("la", rows("link_apply")), block("wall", rows("wall")), block("read", rows("read")),
         block("rss", [(n, f.med / 1024, f.q1 / 1024, f.q3 / 1024) for n in sizes
                       for f in [fig(f"scale.{n}.maxrss")]]),
         "set title 'Time (ms, log scale)'", "set logscale y", "set ylabel 'ms (log scale)'",
         "plot $wall using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'whole rewire apply command', "
         "$read using 1:2:3:4 with yerrorlines lw 2 pt 5 title "
         "'of which exec, connect, read + index the executable', "
         "$la using 1:2:3:4 with yerrorlines lw 2 pt 9 title 'of which link + apply (the patch)'",
         "set title \"rewire apply's peak resident memory (MiB)\"", "unset logscale y",
         "set key top left",
         "set yrange [0:*]", "set ylabel 'MiB'",
         "plot $rss using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'peak RSS of rewire apply'",
         "unset multiplot"]
    return gnuplot("scale", ("1400,600", "\n".join(s) + "\n"))


def session_table(w):
    sizes = [n for n in scale_sizes() if fig(f"scale.{n}.session_rest")]
    if not sizes:
        return
    w("**In a session.** The same programs, each under `rewire run` with a "
      "`compile_commands.json` for `compute.c`, which is saved "
      f"{fig(f'scale.{sizes[0]}.session_rest').n} times (two versions in turn) after a first save "
      "that is not counted: the session reads the executable at its first patch and keeps it. "
      "rewire's line `patched … in T ms — compile C, …` gives *T*, from the end of the "
      "debounce (2 ms after a rename) to the patch applied, and the compile *C*: *T − C* is rewire's own part of the "
      "patch (diff and type checks, connecting to the agent, link, apply, the running-code "
      "check). *save → patched − C* counts from the rename of the saved file: inotify, the "
      "debounce and the time rewire's line takes to reach the benchmark are in it too. "
      "*session RSS*: the resident memory of `rewire run` after the saves, what it keeps of the "
      "program included.")
    w("")
    w("| functions | compile C (ms) | T − C (ms) | save → patched − C (ms) | session RSS (MiB) |")
    w("|---|---|---|---|---|")
    for n in sizes:
        rss = one(f"scale.{n}.session_rss")
        w(f"| {n:,} | {cell(f'scale.{n}.session_compile')} | {cell(f'scale.{n}.session_rest')} | "
          f"{cell(f'scale.{n}.session_wall_rest')} | {num(rss / 1024 if rss else None, 1)} |")
    w("")


def plot_memory():
    at, priv = data.get("mem.patches", ("", []))[1], data.get("mem.private", ("", []))[1]
    if not at or not priv:
        return False
    la = data.get("apply.link_apply", ("", []))[1]
    wall = data.get("apply.wall", ("", []))[1]
    plain, agent = one("mem.plain_private"), one("mem.agent_private")
    s = [f"set multiplot layout 1,2 title \"{len(wall):,} one-function patches applied in a row to one "
         "running program (bench/victim_main.c)\" font 'sans,13'", "set grid",
         "set xlabel 'patches applied'", "set key top left",
         block("m", list(zip(at, priv))),
         "set title 'Private memory of the target process (KiB)'", "set ylabel 'KiB'",
         "set yrange [0:*]",
         f"plot $m using 1:2 with linespoints pt 7 ps 0.5 lw 2 title 'program under rewire', "
         f"{agent} with lines dt 2 lw 2 title 'under rewire, before any patch', "
         f"{plain} with lines dt 3 lw 2 title 'the same program without rewire'",
         block("la", list(enumerate(la, 1))), block("w", list(enumerate(wall, 1))),
         "set title 'Each patch: time (ms, log scale)'", "set logscale y", "set key below",
         "set ylabel 'ms (log scale)'", "set yrange [*:*]",
         block("p", list(enumerate(data.get("apply.pause", ("", []))[1], 1))),
         "plot $w using 1:2 with points pt 7 ps 0.3 title 'whole rewire apply command', "
         "$la using 1:2 with points pt 7 ps 0.3 title \"link + apply (rewire's report)\", "
         "$p using 1:2 with points pt 7 ps 0.3 title 'of which the stop-the-world pause'",
         "unset multiplot"]
    return gnuplot("memory", ("1400,600", "\n".join(s) + "\n"))


def start_progs():
    """(key, title, units) of the programs bench/start.sh measured."""
    progs = [(f"g{u}", f"generated C, {u} units", u)
             for u in (int(v) for v in data.get("start.units", ("", []))[1])]
    progs += [(k, t, int(one(f"{k}.units"))) for k, t in
              (("bc", "GNU bc"), ("nginx", "nginx 1.22")) if one(f"{k}.units")]
    return [p for p in progs if fig(p[0] + ".start_cpu")]


def plot_start():
    progs = start_progs()
    if not progs:
        return False
    gen = [(u, fig(k + ".start_cpu").med, fig(k + ".start_cpu").min, fig(k + ".start_cpu").max)
           for k, _, u in progs if k.startswith("g")]
    real = [(u, fig(k + ".start_cpu").med, fig(k + ".start_cpu").min, fig(k + ".start_cpu").max,
             k) for k, t, u in progs if not k.startswith("g")]
    s = ["set title \"CPU spent by a rewire run session at start, against the program's size\\n"
         "points: medians of the sessions; whiskers: min to max\" font 'sans,13'",
         "set grid", "set key top left", "set xlabel 'units (compile_commands.json entries)'",
         "set ylabel 'CPU s (rewire and its children)'", "set xrange [0:*]", "set yrange [0:*]",
         block("gen", gen), block("real", [r[:4] + (f'"{r[4]}"',) for r in real]),
         "plot $gen using 1:2:3:4 with yerrorlines lw 2 pt 7 title 'generated C (bench/gen_c.py)', "
         "$real using 1:2:3:4 with yerrorbars lw 2 pt 5 title \"Debian's programs\", "
         "$real using 1:2:5 with labels offset 0,1 notitle, "
         "1 with lines dt 2 lw 1 title '1 s of CPU'"]
    return gnuplot("start", ("900,550", "\n".join(s) + "\n"))


# --- the page ------------------------------------------------------------

def page(plots):
    m = meta.get
    L = []
    w = L.append
    w("# Benchmarks")
    w("")
    w(f"Generated by `bench/run.sh` (`make bench`) on {m('date', '?')}, from the measurements of "
      f"that run; it took {m('elapsed', '?')}. Regenerate with `make bench`: every number and plot "
      "below is replaced.")
    w("")
    w(f"- machine: {m('nproc', '?')} CPUs, {m('cpu', '?')}, {m('mem', '?')} of memory; "
      f"Linux {m('kernel', '?')}; {m('os', '?')}")
    w(f"- compilers: {m('gcc', '?')}; {m('rustc', 'no rustc')}")
    w(f"- rewire: commit {m('commit', '?')}")
    w(f"- load average (1 min) when the run started: {m('load_start', '?')}, when it ended: "
      f"{m('load_end', '?')}")
    if m("note"):
        w(f"- **{m('note')}**")
    try:
        busy = float(m("load_start", "0")) > 0.5 * float(m("nproc", "1"))
    except ValueError:
        busy = False
    if busy:
        w("- **The machine was not quiet during this run (see the load average): other work "
          "shared its CPUs, so the times are longer and more spread than on a quiet machine.**")
    if m("failed"):
        w(f"- **failed steps (their sections are missing or incomplete): {m('failed')}**")
    w("")
    w("How to read the figures: each is the median of the run's repetitions, written "
      "**median** (1st–3rd quartile; min–max). Ratios are of two medians measured in the same "
      "run, taking turns (one rewire save, then one compile alone, then one rebuild and "
      "restart), so that a change in the machine's load weighs on all alike.")
    w("")

    w("## Summary")
    w("")
    for key, title, lang in PROGRAMS:
        e, a, r = med(key + ".edit_to_running"), med(key + ".compile_alone"), med(key + ".restart")
        if e is None:
            continue
        alone = "cargo build" if lang == "rust" else "the compile of the unit alone"
        line = f"- {title}: rewire runs the edit {num(e)} ms after the save; {alone} takes {num(a)} ms"
        if r is not None:
            line += f", rebuild and restart {num(r)} ms ({faster(r, e)})"
        w(line + ".")
    if med("rewire.patched") is not None:
        w(f"- A call costs {num(med('rewire.direct'), 2)} ns to an unpatched function under rewire "
          f"({num(med('plain.direct'), 2)} ns without rewire), {num(med('rewire.patched'), 2)} ns to a "
          f"patched one; the models of other tools' indirections: {num(med('rewire.hashmap'), 2)} ns "
          f"(hash lookup) and {num(med('rewire.rwlock_dlsym'), 1)} ns (read lock + dlsym).")
    if scale_sizes():
        b = scale_sizes()[-1]
        w(f"- Against a program of {b:,} functions, `rewire apply` of a one-function patch takes "
          f"{num(med(f'scale.{b}.wall'))} ms, of which {num(med(f'scale.{b}.read'))} ms reading the "
          f"executable and {num(med(f'scale.{b}.link_apply'))} ms linking and applying the patch; "
          f"its peak RSS is {num(med(f'scale.{b}.maxrss') / 1024, 0)} MiB.")
    if scale_sizes() and med(f"scale.{scale_sizes()[-1]}.session_rest") is not None:
        b = scale_sizes()[-1]
        w(f"- In a `rewire run` session on that program, every save after the first is patched "
          f"{num(med(f'scale.{b}.session_rest'))} ms after its compile ends (rewire's own part of "
          f"the patch); the session holds {num(med(f'scale.{b}.session_rss') / 1024, 0)} MiB.")
    at, priv = data.get("mem.patches", ("", []))[1], data.get("mem.private", ("", []))[1]
    if len(at) > 1:
        w(f"- After {int(at[-1]):,} patches the target holds {num(priv[-1] - priv[0], 0)} KiB more "
          f"private memory than before the first ({num((priv[-1] - priv[0]) * 1024 / at[-1], 0)} "
          "bytes per patch).")
    big = [p for p in start_progs() if p[2] >= 100]
    if big:
        k, t, u = max(big, key=lambda p: (not p[0].startswith("g"), p[2]))  # Debian's first
        w(f"- Starting `rewire run` on {t} ({u} units, no depfiles) costs {num(med(k + '.start_cpu'))} s of CPU "
          "(rewire and its compilers, before the session is idle).")
    la = data.get("apply.link_apply", ("", []))[1]
    if len(la) >= 200:
        w(f"- Patching the same function again and again: link + apply took "
          f"{num(Fig(la[:100]).med, 3)} ms (median) over the first 100 patches and "
          f"{num(Fig(la[-100:]).med, 3)} ms over the last 100.")
    w("")
    w("## 1. Patch latency: from the save to the new code running")
    w("")
    w("A one-function edit is saved the way editors save (written to a temporary file, renamed "
      "over the source) while the program runs under `rewire run`; the time is taken from the "
      "rename to the moment rewire prints `patched … in N ms — compile A, diff B, link C, apply "
      "D`. Those four stages are rewire's own timers; what is left of the edit-to-running time "
      "is called *watch* here: inotify, the debounce (2 ms after a rename, as the benchmark saves), hashing the inputs, connecting to the "
      "agent, reading the executable and the DWARF checks, which rewire does not time apart. "
      "After each save, in turn: the compile of the same unit alone with its own command "
      "(C: the command of `compile_commands.json`; Rust: `cargo build` of the same edit in a "
      "copy of the crate, rustc and link), and *rebuild and restart*: the same edit in a copy "
      "of the program, `make` or `cargo build`, the running program stopped and started again, "
      "until it shows the edit (prints the changed line, or answers a request with it). All C "
      "builds use `-g -O2 -fno-ipa-ra` (as rewire recommends: with `-g` the DWARF type checks "
      "run); Rust builds are cargo's dev profile.")
    w("")
    w("The programs: `examples/bounce` (one unit, edit of `draw()`); a generated C program "
      f"(`bench/gen_c.py`: 200 units, {num(one('gen_c.lines'), 0)} lines, 100,000 functions in "
      f"the source, {num(one('gen_c.functions'), 0)} in the executable; its build with "
      f"`make -j2` took {num((one('gen_c.build') or 0) / 1000, 0)} s; the edit changes a "
      "constant in one unit of the middle); GNU bc from Debian's source, built with its own "
      "autotools (edit of `execute()`, rewire and compile only: bc waits for input); "
      "`examples/rust-server` (edit of `handle()`; the restarted server must answer); "
      "`bench/rust-http`, an HTTP server on tokio 1, hyper 0.14 and serde_json from Debian's "
      "packaged crates (edit of `greeting()`; the restarted server must answer); a "
      f"generated Rust crate (`bench/gen_rust.py`: {num(one('gen_rust.lines'), 0)} lines in 50 "
      "modules, structs, trait impls, generics; the edit changes a constant in one module).")
    w("")
    if plots.get("latency"):
        w("![Edit to running](bench/latency.png)")
        w("")
    w("| program | rewire: save to patched (ms) | compile alone (ms) | rebuild + restart (ms) "
      "| restart ÷ rewire | rewire ÷ compile alone |")
    w("|---|---|---|---|---|---|")
    for key, title, lang in PROGRAMS:
        if not fig(key + ".edit_to_running"):
            continue
        w(f"| {title} | {cell(key + '.edit_to_running')} | {cell(key + '.compile_alone')} | "
          f"{cell(key + '.restart')} | {ratio(key + '.restart', key + '.edit_to_running')} | "
          f"{ratio(key + '.edit_to_running', key + '.compile_alone')} |")
    w("")
    w("The stages of rewire's patch, in ms:")
    w("")
    w("| program | watch | compile | diff | link | apply | saves |")
    w("|---|---|---|---|---|---|---|")
    for key, title, lang in PROGRAMS:
        f = fig(key + ".edit_to_running")
        if f:
            w(f"| {title} | " + " | ".join(cell(f"{key}.{s}") for s in
                                          ("watch", "compile", "diff", "link", "apply"))
              + f" | {f.n} |")
    w("")
    w("rewire prints its compile time and total in whole ms and the other stages to 0.1 ms; the "
      "`rewire apply` figures of section 4 have 0.01 ms.")
    w("")

    w("## 2. What a call costs")
    w("")
    w("`bench/calls.c` times loops of 10 million calls of a one-line function (`x = f(x)`, each "
      "call waiting for the one before; the loops and the function are `noinline`, in different "
      "units, the result goes to a `volatile`), 21 rounds in which the variants take turns. "
      "Under `rewire run`, one function of the program has been patched (`rewire apply` of a new "
      "version): a call to it goes through the jump rewire wrote at its entry; a call to "
      "another function is an ordinary direct call, as in the same program run without rewire. "
      "For comparison, the benchmark builds **models** of what two other tools put in every call "
      "of a reloadable function. They are models written for this benchmark, not the tools "
      "themselves: *hash lookup + indirect call* stands for Subsecond's jump table (look the "
      "function's address up in a table of 1,000 entries, identity hash, open addressing, then "
      "call what it gives); *read lock + dlsym + call* stands for hot-lib-reloader (take a read "
      "lock, `dlsym` the name in the library, call, unlock).")
    w("")
    if plots.get("calls"):
        w("![Call cost](bench/calls.png)")
        w("")
    w("| call | ns per call | ÷ direct call (same process) |")
    w("|---|---|---|")
    names = {"plain.direct": "direct call, program without rewire",
             "rewire.direct": "direct call to an unpatched function, under rewire",
             "rewire.patched": "direct call to a patched function (entry jump), under rewire",
             "rewire.pointer": "call through a function pointer, under rewire",
             "rewire.hashmap": "**model** of Subsecond: hash lookup + indirect call",
             "rewire.rwlock_dlsym": "**model** of hot-lib-reloader: read lock + dlsym + call"}
    for key, _, _ in CALLS:
        if fig(key):
            same = "–" if key == "plain.direct" else ratio(key, "rewire.direct", 2)
            w(f"| {names[key]} | {cell(key, 2)} | {same} |")
    w("")
    pd, rd = med("rewire.patched"), med("rewire.direct")
    if pd is not None and rd is not None:
        w(f"A patched function costs {num(pd - rd, 2)} ns more per call than an unpatched one "
          "in this run (the jump to the new version); unpatched code pays nothing.")
        w("")

    w("## 3. Scale: programs of up to a million functions")
    w("")
    w("`bench/gen_syms.py` writes N small functions in assembler (a quarter of them file-local, "
      "one in ten with a datum beside it, 100,000 to a translation unit), linked with "
      "`bench/victim_main.c` and `compute.c`, for N = "
      + ", ".join(f"{n:,}" for n in scale_sizes()) + ". Each program runs under `rewire run`, "
      "and a one-function patch (`compute.o`, two versions in turn) is applied to it with "
      "`rewire apply` "
      f"{fig(f'scale.{scale_sizes()[0]}.wall').n if scale_sizes() and fig(f'scale.{scale_sizes()[0]}.wall') else '?'} "
      "times a size. *whole command* is the wall time of `rewire apply` (exec, connect, read and "
      "index the executable's symbols, DWARF check, link, apply); *link + apply* are the stages "
      "rewire reports; *read* is the difference (the driver's start-up: above all, reading and "
      "indexing the executable, which it does at every command); peak RSS is `rewire apply`'s "
      "own (getrusage of the child).")
    w("")
    if plots.get("scale"):
        w("![Scale](bench/scale.png)")
        w("")
    w("| functions | symbols in .symtab | link + apply (ms) | read (ms) | whole command (ms) "
      "| peak RSS (MiB) |")
    w("|---|---|---|---|---|---|")
    for n in scale_sizes():
        rss = fig(f"scale.{n}.maxrss")
        rss_txt = (f"**{num(rss.med / 1024, 1)}** ({num(rss.min / 1024, 1)}–{num(rss.max / 1024, 1)})"
                   if rss else "–")
        w(f"| {n:,} | {num(one(f'scale.{n}.symbols'), 0)} | {cell(f'scale.{n}.link_apply')} | "
          f"{cell(f'scale.{n}.read')} | {cell(f'scale.{n}.wall')} | {rss_txt} |")
    w("")
    if len(scale_sizes()) >= 2:
        a, b = scale_sizes()[0], scale_sizes()[-1]
        w(f"From {a:,} to {b:,} functions the patch itself (link + apply) goes from "
          f"{num(med(f'scale.{a}.link_apply'))} to {num(med(f'scale.{b}.link_apply'))} ms, and "
          f"reading the executable from {num(med(f'scale.{a}.read'))} to "
          f"{num(med(f'scale.{b}.read'))} ms. A `rewire run` session reads the executable at "
          "its first patch and keeps it for the next ones (below).")
        w("")
    session_table(w)

    npatch = len(data.get("apply.wall", ("", []))[1])
    w(f"## 4. Memory and latency over {npatch:,} patches")
    w("")
    w(f"`bench/apply.sh` applies {npatch:,} one-function patches in a row (`compute.o`, two versions "
      "in turn) to `bench/victim_main.c` running under `rewire run`, and reads the target's "
      "private memory (`Private_Clean + Private_Dirty` of `/proc/PID/smaps_rollup`: what the "
      "process has of its own, the agent's mappings and every patch's code included) before the "
      "first patch and after every 10th. The same program runs beside it without rewire. Old "
      "code stays mapped (a thread may still run in it), so memory grows with each patch; the "
      "plot shows by how much. The same series gives each patch's time, in the order applied: "
      "the same function patched again and again.")
    w("")
    if plots.get("memory"):
        w("![Memory over patches](bench/memory.png)")
        w("")
    at, priv = data.get("mem.patches", ("", []))[1], data.get("mem.private", ("", []))[1]
    rss = data.get("mem.rss", ("", []))[1]
    if at and priv:
        w("| | private memory (KiB) | RSS (KiB) |")
        w("|---|---|---|")
        w(f"| program without rewire | {num(one('mem.plain_private'), 0)} | "
          f"{num(one('mem.plain_rss'), 0)} |")
        w(f"| under rewire, before any patch | {num(one('mem.agent_private'), 0)} | "
          f"{num(one('mem.agent_rss'), 0)} |")
        for want in (1, 10, 100, 500, 1000):
            if want in [int(x) for x in at]:
                i = [int(x) for x in at].index(want)
                w(f"| after {want:,} patches | {num(priv[i], 0)} | {num(rss[i], 0) if rss else '–'} |")
        i100 = [int(x) for x in at].index(100) if 100 in [int(x) for x in at] else 0
        if at[-1] > at[i100]:
            per = (priv[-1] - priv[i100]) * 1024 / (at[-1] - at[i100])
            w("")
            w(f"From patch {int(at[i100]):,} to patch {int(at[-1]):,}: {num(per, 0)} bytes of "
              "private memory per patch (one memory snapshot per point: memory is a state, not "
              "a repeated measurement).")
        w("")
    w("Each patch of that series, in ms:")
    w("")
    w("| | ms |")
    w("|---|---|")
    for key, label in (("apply.link", "link (driver)"), ("apply.apply", "apply (agent)"),
                       ("apply.pause", "of which the stop-the-world pause"),
                       ("apply.link_apply", "link + apply"),
                       ("apply.wall", "whole `rewire apply` command"),
                       ("apply.compile_alone", "the compile of the unit alone (`cc -O2 -g -c`)")):
        w(f"| {label} | {cell(key, 3 if 'compile' not in key else None)} |")
    w("")
    w(f"Whole command ÷ compile alone: {ratio('apply.wall', 'apply.compile_alone', 3)}.")
    w("")
    la = data.get("apply.link_apply", ("", []))[1]
    pause = data.get("apply.pause", ("", []))[1]
    if len(la) >= 200:
        w(f"The first 100 patches against the last 100: link + apply "
          f"{num(Fig(la[:100]).med, 3)} against {num(Fig(la[-100:]).med, 3)} ms (median), "
          f"of which the stop-the-world pause {num(Fig(pause[:100]).med, 3)} against "
          f"{num(Fig(pause[-100:]).med, 3)} ms.")
    w("")
    oracle = os.path.join(DOCS, "bench", "oracle.md")
    if os.path.exists(oracle):
        # make oracle's results: hours of runs, kept as written, not rerun here.
        w(open(oracle).read().rstrip("\n"))
        w("")
    start_section(w, plots)
    w("## Running it")
    w("")
    w("`make bench` builds rewire, then `bench/run.sh` installs gnuplot (`bench/deps.sh`, "
      "Debian's `gnuplot-nox`) when it is missing, runs `bench/calls.sh`, `bench/apply.sh`, "
      "`bench/scale.sh`, `bench/edit.sh`, `bench/rust.sh` and `bench/start.sh` on a copy of the rewire it built, "
      "and writes this page and `docs/bench/*.png` with `bench/report.py`. Each script also runs "
      "alone and prints its summary (`bench/edit.sh 3`).")
    w("")
    return "\n".join(L)


def start_section(w, plots):
    progs = start_progs()
    if not progs:
        return
    w("## 6. Starting a session")
    w("")
    w("`bench/start.sh` starts `rewire run` on programs of 13 to 200 units and measures what "
      "the session costs before it is idle: the CPU time of rewire and of the children it reaped "
      "(its compilers and preprocessor passes; the program itself, still running, is not "
      "counted), from the start until no child but the program has run for a second, and when "
      "the last of those children ended. The programs: C generated by `bench/gen_c.py` (100 "
      "functions, `<stdio.h>`, `<stdlib.h>`, `<string.h>` and 20 headers of the project a unit), "
      "GNU bc and nginx from Debian's source, built by their own build systems (which leave no "
      "depfiles).")
    w("")
    if plots.get("start"):
        w("![Start cost](bench/start.png)")
        w("")
    w("| program | units | CPU at start (s) | last compiler after (s) |")
    w("|---|---|---|---|")
    for k, t, u in progs:
        w(f"| {t} | {u} | {cell(k + '.start_cpu')} | {cell(k + '.start_idle')} |")
    w("")
    rows = [(at, f"nginx.at{at}") for at in (1, 30) if fig(f"nginx.at{at}.edit_to_running")]
    if rows:
        w("nginx, an edit of `ngx_http_header_filter_module.c` saved 1 s and 30 s after "
          "`rewire run`, in a new session each time; after each, the compile of that unit alone "
          "with its command from `compile_commands.json`, after as long a pause (a compile that "
          "follows 30 s of idleness is slower on this machine, with rewire or without: each is "
          "timed after the same pause):")
        w("")
        w("| saved after | save to patched (ms) | compile alone (ms) | patched ÷ compile alone "
          "| CPU of the session by then (s) |")
        w("|---|---|---|---|---|")
        for at, k in rows:
            w(f"| {at} s | {cell(k + '.edit_to_running')} | {cell(k + '.compile_alone')} | "
              f"{ratio(k + '.edit_to_running', k + '.compile_alone')} | {cell(k + '.cpu')} |")
        w("")


def main():
    os.makedirs(PLOTS, exist_ok=True)
    plots = {"latency": plot_latency(), "calls": plot_calls(), "scale": plot_scale(),
             "memory": plot_memory(), "start": plot_start()}
    with open(os.path.join(DOCS, "benchmarks.md"), "w") as f:
        f.write(page(plots))


main()
