#!/usr/bin/env python3
"""The oracle: does a patched program do what a fresh build of the saved source does?

rewire must never say "patched" or "no code changed" while the running program
does something other than a fresh build of the saved source. This differential
tester looks for such silent misses in real programs written by others:

  GNU bc (C, autotools + bear)      bc -ql, fed tests/oracle/inputs/bc.bc
  Lua 5.4 (C, its own Makefile)     lua, fed tests/oracle/inputs/lua.lua
  muparser (C++, CMake)             its calculator example1, fed inputs/muparser.txt
  rust-json (Rust, serde + serde_json from Debian's crates, cargo --offline):
                                    tests/oracle/rust-json, fed inputs/rust-json.txt

Each program comes from Debian's source packages, is built once by its own build
system into build/oracle/PROGRAM/tree (which records compile_commands.json), and
a copy of the built tree is kept. For each edit:

  1. mutate.py proposes a small edit of one source file (a literal, an operator, a
     condition, a call, a table entry, a #define, a const or static initializer, a
     new function, static or global, two functions swapped, a local renamed...),
     picked from the seed, the program and the edit's number alone;
  2. the tree is built with the edit, as a user's build would: if it does not
     compile (or its program hangs, or dies of a memory fault: undefined
     behaviour) the edit is 'invalid' and another is drawn;
     the fresh program is run on the driver input: that is the expected output;
  3. the tree is put back as built, the program runs under `rewire run` with its
     input a FIFO, and once it waits for input, the edit is saved;
  4. once rewire gives its verdict (patched, no code changed, or error), the
     driver input is written to the FIFO: the output must equal the fresh build's.

Outcomes: same (patched, outputs equal), nochange-ok (no code changed, outputs
equal), refused (an error: the program keeps its code; counted by reason),
different (a silent miss: rewire said patched or no code changed, and the outputs
differ: the edit and the two outputs are printed as diffs), no-verdict (rewire said
nothing about the save within 20 s of running no compiler, and the outputs differ),
startup-state (as different, but the edited code also ran at start-up, before the
save: the fresh build may have built other state then; to be told by hand),
running (as different, but rewire's 'patched' names a function that was running
at the save, changed through a #define or an inline function: its frame keeps the
old code while its callees are new, as for an edit in a running function, which
the mutator avoids, and rewire did not say so), said-running (as running, but rewire
warned that the function is running and goes on in its old code),
kept-state (the edit changed a writable variable's initializer: rewire keeps the
running value by design), invalid (no compile, a C constraint violation gcc only
warns about on an edited line (a pointer passed as an int: what the program does
then hangs on its addresses), the fresh program hangs, or its output is not the
same from run to run: a result that differs is checked against 8 more runs of
the fresh build, and one of them printing what the patched program did makes it
invalid too; not counted in 'edits'). 'observable' counts the edits that change the fresh program's
output at all: the others can only show crashes and wrong verdicts.

rewire may compile baselines and dependency lists when a session starts: edits are
saved once it has run no compiler for a second (--eager saves at once, which tests
that start-up window instead). Program state is never carried from before the
edit into the comparison: the driver input depends only on itself, and edits are
only made where the driver reaches them after start-up (a gcov build of each C and
C++ program tells which lines and data run on the driver's input, and which only at
start-up), never in a function that is running when the edit is saved (main
loops: its frame keeps the old code; a backtrace of the waiting program says
which).

Run:  make oracle [ORACLE_EDITS=N[,PROGRAM=M...]] [ORACLE_SEED=S] [ORACLE_PROGRAMS=bc,lua,...]
      tests/oracle/oracle.py --programs lua --edits 50 --seed 3
      tests/oracle/oracle.py --programs bc,muparser --edits 30,muparser=8
      tests/oracle/oracle.py --programs bc --seed 3 --only 17   # one edit again
      tests/oracle/oracle.py --programs bc --edits 3 --short    # PASS/FAIL lines
      tests/oracle/oracle.py --programs lua --list              # edit sites by kind
The table goes to stdout and to build/oracle/results-SEED.txt, every result to
results-SEED.jsonl, every 'different' and 'no-verdict' to different-SEED.txt (with
--only N: results-SEED-onlyN.*, different-SEED-onlyN.txt).
A run of N edits takes about N x 10 s for bc, Lua and the Rust program, and up to
N x 2 min for muparser (its header edits rebuild every unit, twice). Known
findings, reduced to small programs: tests/oracle/repro/.
"""
import argparse
import collections
import difflib
import fcntl
import glob
import gzip
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import mutate  # noqa: E402

REWIRE = os.environ.get('REWIRE', os.path.join(ROOT, 'build', 'rewire'))
WORK = os.environ.get('ORACLE_DIR', os.path.join(ROOT, 'build', 'oracle'))
CARGO_BIN = os.path.expanduser('~/.cargo/bin')
os.environ['PATH'] = os.environ['PATH'] + ':' + CARGO_BIN
EAGER = False	# --eager: save as soon as rewire watches, before its start-up compiles end
VERDICT_RE = re.compile(r'^rewire: (patched |error: |.*: no code changed$)')


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sh(cmd, cwd=None, env=None, timeout=1800, check=True):
    """Run a shell command; its output goes to the returned string."""
    p = subprocess.run(cmd, shell=True, cwd=cwd, env=env, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.decode('utf-8', 'replace')
    if check and p.returncode:
        raise RuntimeError('%s (in %s) failed:\n%s' % (cmd, cwd, out[-3000:]))
    return p.returncode, out


# ------------------------------------------------------------ packages

def apt_install(pkgs):
    """Install the Debian packages of PKGS whose test fails (pkg -> test cmd)."""
    need = [p for p, test in pkgs.items() if subprocess.call(test, shell=True, stdout=subprocess.DEVNULL,
                                                             stderr=subprocess.DEVNULL)]
    if not need:
        return
    log('oracle: installing %s' % ' '.join(need))
    sudo = '' if os.getuid() == 0 else 'sudo '
    sh(sudo + 'apt-get update -qq', check=False)
    sh(sudo + 'env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ' + ' '.join(need))


def apt_source(pkg, dest):
    """Debian's source package PKG's upstream tarball, unpacked into DEST."""
    dl = os.path.join(WORK, 'downloads')
    os.makedirs(dl, exist_ok=True)
    if not glob.glob(os.path.join(dl, pkg + '_*.orig.tar.*')):
        rc, _ = sh('apt-get source --download-only -qq ' + pkg, cwd=dl, check=False)
        if rc:
            # deb-src is off on a fresh machine: turn it on for Debian's main archive.
            with open('/etc/apt/sources.list.d/rewire-deb-src.sources', 'w') as f:
                f.write('Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n'
                        'Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n')
            sh('apt-get update -qq', check=False)
            sh('apt-get source --download-only -qq ' + pkg, cwd=dl)
    orig = sorted(glob.glob(os.path.join(dl, pkg + '_*.orig.tar.*')))[0]
    shutil.rmtree(dest, ignore_errors=True)
    os.makedirs(dest)
    sh('tar xf %s -C %s --strip-components=1' % (orig, dest))


# ------------------------------------------------------------ trees

def snapshot(src, dst):
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, symlinks=True)


def restore(pristine, tree):
    """Make TREE what PRISTINE is again (contents and times), copying only
    what differs and removing what PRISTINE does not have."""
    for d, dirs, files in os.walk(pristine):
        rel = os.path.relpath(d, pristine)
        td = os.path.join(tree, rel)
        os.makedirs(td, exist_ok=True)
        have = set(os.listdir(td))
        for name in dirs + files:
            have.discard(name)
        for name in have:
            p = os.path.join(td, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        for name in files:
            s, t = os.path.join(d, name), os.path.join(td, name)
            ss = os.lstat(s)
            try:
                ts = os.lstat(t)
                if ts.st_size == ss.st_size and ts.st_mtime_ns == ss.st_mtime_ns:
                    continue
            except FileNotFoundError:
                pass
            if os.path.islink(s):
                if os.path.lexists(t):
                    os.unlink(t)
                os.symlink(os.readlink(s), t)
            else:
                # beside it, then renamed over it: a running program's
                # executable cannot be written, but it can be replaced
                tmp = os.path.join(td, '.%s.oracle-restore' % name)
                shutil.copy2(s, tmp)
                os.replace(tmp, t)


# ------------------------------------------------------------ programs

class Program:
    """One program: how to fetch and build it, which files to edit, how to
    drive it. Subclasses fill in the blanks."""
    name = lang = binary = None
    args = []
    terminator = b''	# the input that makes the program end at once
    files = []	# glob patterns of editable sources, relative to the tree
    env = {}

    def __init__(self):
        self.dir = os.path.join(WORK, self.name)
        self.tree = os.path.join(self.dir, 'tree')
        self.pristine = os.path.join(self.dir, 'pristine')
        self.input = open(os.path.join(HERE, 'inputs', self.input_file), 'rb').read()

    # --- set-up, once per machine
    def ready(self):
        return os.path.exists(os.path.join(self.dir, 'ready'))

    def stamp(self):
        """What the coverage and backtrace depend on: the driver and its arguments."""
        import hashlib
        return hashlib.sha1(self.input + repr(self.args).encode()).hexdigest()

    def setup(self):
        if self.ready():
            ready = os.path.join(self.dir, 'ready')
            if open(ready).read().strip() != self.stamp():
                log('oracle: %s: the driver changed: coverage again' % self.name)
                self.coverage()
                self.running_functions()
                open(ready, 'w').write(self.stamp() + '\n')
            return
        log('oracle: %s: fetching and building (once)' % self.name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.fetch_and_build()
        self.warm_up()
        snapshot(self.tree, self.pristine)
        self.coverage()
        self.running_functions()
        open(os.path.join(self.dir, 'ready'), 'w').write(self.stamp() + '\n')

    def warm_up(self):
        pass

    def run_fresh(self, data, timeout=5):
        """Run the tree's program on DATA: (status, stdout) or None on a hang."""
        try:
            p = subprocess.run([os.path.join(self.tree, self.binary)] + self.args, cwd=self.tree,
                               input=data, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               timeout=timeout, env=self.run_env())
        except subprocess.TimeoutExpired:
            return None
        # as a shell (and rewire run) tells a death by signal N: 128 + N
        return (128 - p.returncode if p.returncode < 0 else p.returncode), self.normalize(p.stdout)

    def normalize(self, out):
        return out

    def run_env(self):
        e = dict(os.environ)
        e.update(self.env)
        return e

    def edit_files(self):
        out = []
        for pat in self.files:
            out += sorted(os.path.relpath(p, self.pristine) for p in glob.glob(os.path.join(self.pristine, pat)))
        return [f for f in out if f not in self.exclude_files]
    exclude_files = ()

    def live_cmd(self):
        return [REWIRE, 'run', '--', os.path.join(self.tree, self.binary)] + self.args

    # --- which code runs on the driver input (C, C++: gcov)
    def coverage(self):
        """live.json: the lines (file -> [line]) that run more often on the driver
        input than at start-up alone, and the identifiers on them."""
        cov = os.path.join(self.dir, 'cov')
        if not self.coverage_build(cov):
            return
        counts = []
        for data in (self.terminator, self.input):
            for g in glob.glob(os.path.join(cov, '**', '*.gcda'), recursive=True):
                os.unlink(g)
            subprocess.run([os.path.join(cov, self.binary)] + self.args, cwd=cov, input=data,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120,
                           env=self.run_env())
            counts.append(gcov_counts(cov))
        start, run = counts
        live = {}
        for f, lines in run.items():
            rel = os.path.relpath(f, cov) if os.path.isabs(f) else f
            ls = sorted(n for n, c in lines.items() if c > start.get(f, {}).get(n, 0))
            if ls:
                live[rel] = ls
        json.dump(live, open(os.path.join(self.dir, 'live.json'), 'w'))
        early = {}
        for f, lines in start.items():
            rel = os.path.relpath(f, cov) if os.path.isabs(f) else f
            ls = sorted(n for n, c in lines.items() if c > 0)
            if ls:
                early[rel] = ls
        json.dump(early, open(os.path.join(self.dir, 'startup.json'), 'w'))
        shutil.rmtree(cov, ignore_errors=True)

    def coverage_build(self, cov):
        return False

    def running_functions(self):
        """The functions on the stack of the program waiting for its input."""
        fifo = os.path.join(self.dir, 'bt.fifo')
        if os.path.exists(fifo):
            os.unlink(fifo)
        os.mkfifo(fifo)
        cmd = '%s %s < %s' % (os.path.join(self.tree, self.binary), ' '.join(self.args), fifo)
        p = subprocess.Popen(['bash', '-c', 'exec ' + cmd], cwd=self.tree, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=self.run_env())
        w = os.open(fifo, os.O_WRONLY)
        names = set()
        try:
            wait_reading(p.pid, 30)
            _, out = sh('gdb -batch -p %d -ex "thread apply all bt"' % p.pid, check=False, timeout=60)
            for m in re.finditer(r'^#\d+\s+(?:0x[0-9a-f]+ in )?([^\s(]+)', out, re.M):
                names.add(m.group(1).split('::')[-1].split('<')[0])
        finally:
            os.write(w, self.terminator)
            os.close(w)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            os.unlink(fifo)
        names -= {'??'}
        json.dump(sorted(names), open(os.path.join(self.dir, 'running.json'), 'w'))

    def load_filters(self):
        p = os.path.join(self.dir, 'live.json')
        self.live = json.load(open(p)) if os.path.exists(p) else None
        p = os.path.join(self.dir, 'running.json')
        self.running = set(json.load(open(p))) if os.path.exists(p) else set()
        self.running |= set(self.always_running)
        self.running -= set(self.reentrant)
        p = os.path.join(self.dir, 'startup.json')
        self.startup = json.load(open(p)) if os.path.exists(p) else None
        self.startup_ids = set()
        for f, lines in (self.startup or {}).items():
            path = os.path.join(self.pristine, f)
            if os.path.exists(path):
                text = open(path, encoding='latin-1').read().split('\n')
                self.startup_ids.update(w for n in lines if 0 < n <= len(text)
                                        for w in re.findall(r'[A-Za-z_]\w*', text[n - 1]))
        self.live_ids = set()
        if self.live is not None:
            for f, lines in self.live.items():
                path = os.path.join(self.pristine, f)
                if not os.path.exists(path):
                    continue
                text = open(path, encoding='latin-1').read().split('\n')
                for n in lines:
                    if 0 < n <= len(text):
                        self.live_ids.update(re.findall(r'[A-Za-z_]\w*', text[n - 1]))
    always_running = ()
    reentrant = ()

    def site_ok(self, rel, site):
        """Can the driver see this edit's effect after start-up?"""
        it = site.item
        if it.kind == 'fn' and it.name.split('::')[-1] in self.running:
            return False
        if self.live is None:
            return True
        lines = set(self.live.get(rel, ()))
        if it.kind == 'fn':
            if site.kind in ('reorder', 'rename'):
                return any(self.item_line(it, k) in lines for k in range(it.lo, it.hi)) \
                    if hasattr(self, 'item_line') else True
            return site.line in lines
        return it.name in self.live_ids


def gcov_counts(cov):
    """{source path: {line: count}} from every .gcda under COV."""
    out = collections.defaultdict(dict)
    for g in glob.glob(os.path.join(cov, '**', '*.gcda'), recursive=True):
        d = os.path.dirname(g)
        p = subprocess.run(['gcov', '-t', '-j', g], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for chunk in p.stdout.decode('utf-8', 'replace').splitlines():
            chunk = chunk.strip()
            if not chunk.startswith('{'):
                continue
            try:
                j = json.loads(chunk)
            except ValueError:
                continue
            cwd = j.get('current_working_directory', d)
            for f in j.get('files', []):
                path = f['file'] if os.path.isabs(f['file']) else os.path.normpath(os.path.join(cwd, f['file']))
                for ln in f.get('lines', []):
                    n = ln['line_number']
                    out[path][n] = max(out[path].get(n, 0), ln['count'])
    return out


def wait_reading(pid, timeout):
    """Wait until PID's main thread blocks in read(0, ...)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            sc = open('/proc/%d/syscall' % pid).read().split()
        except OSError:
            return False
        if sc and sc[0] == '0' and sc[1] == '0x0':
            return True
        time.sleep(0.02)
    return False


class Bc(Program):
    # Without -l: the math library would be defined at start-up, by code
    # (the parser, make_arg_str...) that the edits change.
    name, lang, binary, args = 'bc', 'c', 'bc/bc', ['-q']
    input_file = 'bc.bc'
    terminator = b'quit\n'
    files = ['bc/*.c', 'bc/*.h', 'lib/number.c', 'h/*.h']
    exclude_files = ('bc/libmath.h', 'bc/bc.c', 'bc/scan.c')	# generated: bc.y and scan.l are the sources
    env = {'BC_LINE_LENGTH': '70'}
    CFLAGS = '-g -O2 -fno-ipa-ra'

    def fetch_and_build(self):
        apt_install({'bear': 'command -v bear', 'bison': 'command -v bison', 'flex': 'command -v flex',
                     'gdb': 'command -v gdb', 'libreadline-dev': 'test -f /usr/include/readline/readline.h'})
        apt_source('bc', self.tree)
        sh('./configure CFLAGS="%s" && bear -- make -C lib && bear --append -- make -C bc' % self.CFLAGS,
           cwd=self.tree)

    def build(self):
        return sh('make -C lib && make -C bc', cwd=self.tree, check=False)

    def coverage_build(self, cov):
        snapshot(self.pristine, cov)
        sh('make -C lib clean && make -C bc clean && make -C lib CFLAGS="-O0 --coverage" && '
           'make -C bc CFLAGS="-O0 --coverage" LDFLAGS=--coverage', cwd=cov)
        return True


class Lua(Program):
    name, lang, binary, args = 'lua', 'c', 'src/lua', []
    input_file = 'lua.lua'
    files = ['src/*.c', 'src/*.h']
    exclude_files = ('src/luac.c',)
    # On the stack while lua waits for its script, but called anew for every
    # Lua and C call after it: an edit there shows in the new calls.
    reentrant = ('ccall', 'luaD_callnoyield', 'luaD_precall', 'precallC', 'luaD_pcall',
                 'luaD_rawrunprotected', 'lua_pcallk')
    MAKE = 'make -C src posix MYCFLAGS="%s"'

    def fetch_and_build(self):
        apt_install({'bear': 'command -v bear', 'gdb': 'command -v gdb'})
        apt_source('lua5.4', self.tree)
        sh('bear -- ' + self.MAKE % '-g -fno-ipa-ra', cwd=self.tree)

    def build(self):
        return sh(self.MAKE % '-g -fno-ipa-ra', cwd=self.tree, check=False)

    def coverage_build(self, cov):
        snapshot(self.pristine, cov)
        sh('make -C src clean && make -C src posix CFLAGS="-O0 --coverage -DLUA_COMPAT_5_3 -DLUA_USE_POSIX" '
           'MYLDFLAGS=--coverage', cwd=cov)
        return True


class Muparser(Program):
    name, lang, binary, args = 'muparser', 'cpp', 'build/example1', []
    input_file = 'muparser.txt'
    terminator = b'quit\n'
    files = ['src/*.cpp', 'include/*.h', 'samples/example1/example1.cpp']
    always_running = ('Calc', 'main')

    def normalize(self, out):
        # its variable factory prints the address of a stack variable
        return re.sub(rb'0x[0-9a-f]{6,}', b'ADDR', out)
    CMAKE = ('cmake -S . -B %s -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DBUILD_SHARED_LIBS=OFF '
             '-DENABLE_OPENMP=OFF -DENABLE_SAMPLES=ON -DCMAKE_BUILD_TYPE=%s -DCMAKE_CXX_FLAGS="%s"')

    def fetch_and_build(self):
        apt_install({'cmake': 'command -v cmake', 'gdb': 'command -v gdb'})
        apt_source('muparser', self.tree)
        sh(self.CMAKE % ('build', 'RelWithDebInfo', '-fno-ipa-ra') + ' && cmake --build build -j1 --target example1',
           cwd=self.tree)

    def build(self):
        return sh('cmake --build build -j1 --target example1', cwd=self.tree, check=False)

    def coverage_build(self, cov):
        snapshot(self.pristine, cov)
        shutil.rmtree(os.path.join(cov, 'build'))
        sh(self.CMAKE % ('build', 'Debug', '--coverage -O0') +
           ' -DCMAKE_EXE_LINKER_FLAGS=--coverage && cmake --build build -j1 --target example1', cwd=cov)
        return True


class RustJson(Program):
    """A small program of ours with real dependencies: serde and serde_json,
    from Debian's packaged crates, built offline."""
    name, lang, args = 'rust-json', 'rust', []
    binary = 'target/debug/rust-json'
    input_file = 'rust-json.txt'
    files = ['src/*.rs']
    always_running = ('main',)

    def fetch_and_build(self):
        apt_install({'librust-serde-json-dev': 'test -d /usr/share/cargo/registry/serde_json-*',
                     'librust-serde-derive-dev': 'test -d /usr/share/cargo/registry/serde_derive-*'})
        for crate in ('serde_json', 'serde_derive'):
            if not glob.glob('/usr/share/cargo/registry/%s-*' % crate):
                raise RuntimeError('no %s in /usr/share/cargo/registry' % crate)
        shutil.copytree(os.path.join(HERE, 'rust-json'), self.tree)
        os.makedirs(os.path.join(self.tree, '.cargo'))
        with open(os.path.join(self.tree, '.cargo', 'config.toml'), 'w') as f:
            f.write('[source.crates-io]\nreplace-with = "debian"\n\n'
                    '[source.debian]\ndirectory = "/usr/share/cargo/registry"\n')
        sh('cargo build --offline', cwd=self.tree, env=self.cargo_env())

    def cargo_env(self):
        e = dict(os.environ)
        e.pop('CARGO_TARGET_DIR', None)
        return e

    def warm_up(self):
        """A first session records the crate's rustc command lines, so that
        the sessions of the edits start without building."""
        p = subprocess.run(self.live_cmd(), cwd=self.tree, input=b'', stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, timeout=600, env=self.cargo_env())
        if b'rewire: watching' not in p.stderr:
            raise RuntimeError('rewire run -- cargo run: ' + p.stderr.decode()[-2000:])

    def build(self):
        return sh('cargo build --offline', cwd=self.tree, env=self.cargo_env(), check=False)

    def live_cmd(self):
        return [REWIRE, 'run', '--', 'cargo', 'run', '--offline', '-q']

    def running_functions(self):
        json.dump(['main'], open(os.path.join(self.dir, 'running.json'), 'w'))


PROGRAMS = {p.name: p for p in (Bc, Lua, Muparser, RustJson)}


# ------------------------------------------------------------ one edit

class Edit:
    def __init__(self, prog, number, rel, site, text, new):
        self.prog, self.number, self.rel, self.site = prog, number, rel, site
        self.old, self.new = text, new

    def diff(self):
        return ''.join(difflib.unified_diff(self.old.splitlines(True), self.new.splitlines(True),
                                            'a/' + self.rel, 'b/' + self.rel, n=2))

    def title(self):
        return '%s #%d %s:%d %s %s (in %s)' % (self.prog.name, self.number, self.rel, self.site.line,
                                              self.site.label(), self.site.desc, self.site.item.name)


def all_sites(prog):
    """Every (file, site) of PROG the driver can observe, grouped by label."""
    cache = getattr(prog, '_sites', None)
    if cache is not None:
        return cache
    prog.load_filters()
    groups = collections.defaultdict(list)
    texts = {rel: open(os.path.join(prog.pristine, rel), encoding='latin-1').read() for rel in prog.edit_files()}
    # C++: the methods declared virtual anywhere, so that their definitions are told
    virtuals = set()
    for text in texts.values():
        virtuals.update(re.findall(r'\bvirtual\b[^;{(]*?\b(\w+)\s*\(', text))
    for rel, text in texts.items():
        path = os.path.join(prog.pristine, rel)
        toks = None
        for s in mutate.sites(path, text, virtuals=virtuals):
            if prog.live is not None and s.kind in ('reorder', 'rename'):
                if toks is None:
                    toks = mutate.tokenize(text, mutate.lang_of(path))
                lines = set(prog.live.get(rel, ()))
                if s.item.name.split('::')[-1] in prog.running:
                    continue
                if not any(toks[k].line in lines for k in range(s.item.lo, s.item.hi)):
                    continue
            elif not prog.site_ok(rel, s):
                continue
            groups[s.label()].append((rel, s))
    prog._sites = groups
    return groups


def pick_edit(prog, seed, number):
    """Edit NUMBER of PROG under SEED: a label (weighted by the square root
    of its number of sites), then a site of it."""
    rng = random.Random('%s/%s/%d' % (seed, prog.name, number))
    groups = all_sites(prog)
    labels = sorted(groups)
    # a kind with many sites is picked more often, one with few less
    # often than uniformly (a kind of 1 site would repeat itself)
    label = rng.choices(labels, [len(groups[k]) ** 0.5 for k in labels])[0]
    rel, site = rng.choice(groups[label])
    path = os.path.join(prog.pristine, rel)
    text = open(path, encoding='latin-1').read()
    return Edit(prog, number, rel, site, text, mutate.apply(text, site))


def write_file(path, text):
    """As an editor saves: a new file beside it, renamed over it."""
    tmp = os.path.join(os.path.dirname(path), '.%s.oracle-tmp' % os.path.basename(path))
    with open(tmp, 'w', encoding='latin-1') as f:
        f.write(text)
    os.replace(tmp, path)


# C constraint violations gcc 12 only warns about (gcc 14 refuses them): a
# pointer passed as an integer or as a pointer of another type. The program
# built then does what its addresses say (ASLR): printf(&num) prints a heap
# address, _one_mult(num, ptr, &x, 0) crashes or not with the pointer's low
# 32 bits. Its output is no oracle for another process's.
CONSTRAINT_RE = re.compile(r'^(?:.*/)?([^/:\s]+):(\d+):\d+: (?:warning|error): .*'
                           r'\[-W(?:int-conversion|incompatible-pointer-types|'
                           r'implicit-function-declaration|return-mismatch)\]', re.M)


def edited_lines(edit):
    """The line numbers (1-based) of the edited file's new text the edit wrote."""
    sm = difflib.SequenceMatcher(None, edit.old.splitlines(), edit.new.splitlines(), autojunk=False)
    out = set()
    for tag, _, _, j1, j2 in sm.get_opcodes():
        if tag != 'equal':
            out.update(range(j1 + 1, max(j2, j1 + 1) + 1))
    return out


MACRO_RE = re.compile(r'^(?:.*/)?([^/:\s]+):(\d+):\d+: note: in expansion of macro', re.M)


def constraint_violation(edit, out):
    """Whether the build of the edit warned of a constraint violation on an
    edited line, or in a macro an edited line expands (Lua's setobj2n)."""
    lines, base = edited_lines(edit), os.path.basename(edit.rel)
    at = lambda m: m.group(1) == base and int(m.group(2)) in lines
    hits = list(CONSTRAINT_RE.finditer(out))
    return any(at(m) for m in hits) or (bool(hits) and any(at(m) for m in MACRO_RE.finditer(out)))


def expected_output(prog, edit):
    """Build the edited tree and run it: ('ok', startup, full) or
    ('invalid', why)."""
    restore(prog.pristine, prog.tree)
    write_file(os.path.join(prog.tree, edit.rel), edit.new)
    rc, out = prog.build()
    if rc:
        return ('invalid', 'compile', out)
    if constraint_violation(edit, out):
        return ('invalid', 'constraint', out)
    startup = prog.run_fresh(prog.terminator)
    full = prog.run_fresh(prog.input)
    if startup is None or full is None:
        return ('invalid', 'hang', '')
    # Died of a memory fault: the edit reads or writes memory it does not
    # own, and what it does then depends on what lies there, which differs
    # from one process to another (a long-running one, rewire's agent in
    # it): no oracle (bc's `var_name & 0x81`: the fresh build dies, the
    # patched program reads another variable and goes on).
    if full[0] in (128 + signal.SIGSEGV, 128 + signal.SIGBUS):
        return ('invalid', 'memory-fault', '')
    # Output that hangs on addresses or time is no oracle either: run it again.
    if prog.run_fresh(prog.input) != full:
        return ('invalid', 'nondeterministic', '')
    return ('ok', startup, full)


def kill_tree(pid):
    """SIGKILL PID and its descendants (processes this run started)."""
    kids = []
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                st = open('/proc/%s/stat' % d).read()
                if int(st[st.rindex(')') + 2:].split()[1]) == pid:
                    kids.append(int(d))
            except (OSError, ValueError):
                pass
    for k in kids:
        kill_tree(k)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def descendants(root):
    kids = collections.defaultdict(list)
    for d in os.listdir('/proc'):
        if d.isdigit():
            try:
                st = open('/proc/%s/stat' % d).read()
                kids[int(st[st.rindex(')') + 2:].split()[1])].append(int(d))
            except (OSError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), ()):
            out.append(c)
            todo.append(c)
    return out


def find_program_pid(root, exe):
    """The descendant of ROOT running EXE."""
    todo = [root]
    while todo:
        p = todo.pop()
        try:
            if os.path.realpath('/proc/%d/exe' % p) == exe:
                return p
        except OSError:
            pass
        for d in os.listdir('/proc'):
            if d.isdigit():
                try:
                    st = open('/proc/%s/stat' % d).read()
                    if int(st[st.rindex(')') + 2:].split()[1]) == p:
                        todo.append(int(d))
                except (OSError, ValueError):
                    pass
    return None


def live_run(prog, edit, tmp, res):
    """Run the program under rewire, save the edit, feed the input after the
    verdict: (verdict line, status, stdout, rewire's stderr)."""
    t_begin = time.time()
    restore(prog.pristine, prog.tree)
    fifo = os.path.join(tmp, 'in.fifo')
    if os.path.exists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    out_path, err_path = os.path.join(tmp, 'live.out'), os.path.join(tmp, 'live.err')
    env = prog.run_env()
    if prog.lang == 'rust':
        env = prog.cargo_env()
        env.update(prog.env)
    with open(out_path, 'wb') as out, open(err_path, 'wb') as err:
        p = subprocess.Popen(['bash', '-c', 'exec "$@" <"$0"', fifo] + prog.live_cmd(), cwd=prog.tree,
                             stdout=out, stderr=err, env=env)
    w = os.open(fifo, os.O_WRONLY)
    verdict = None
    try:
        exe = os.path.realpath(os.path.join(prog.tree, prog.binary))
        end = time.time() + 120
        pid = None
        while time.time() < end and p.poll() is None:
            errtext = open(err_path, errors='replace').read()
            if pid is None:
                pid = find_program_pid(p.pid, exe)
            if pid and 'rewire: watching' in errtext and wait_reading(pid, 0.05):
                break
            time.sleep(0.05)
        else:
            return ('harness: the program did not start under rewire', None, b'',
                    open(err_path, errors='replace').read())
        # rewire may compile baselines and dependency lists at start-up: a
        # save before they end is another test (a race); wait them out.
        quiet = time.time()
        while not EAGER and time.time() < end + 600 and time.time() - quiet < 1.0 and p.poll() is None:
            if set(descendants(p.pid)) - {pid} - set(descendants(pid)):
                quiet = time.time()
            time.sleep(0.1)
        res['t_start'] = round(time.time() - t_begin, 1)
        time.sleep(0.2)
        nerr = len(open(err_path, errors='replace').read().splitlines())
        write_file(os.path.join(prog.tree, edit.rel), edit.new)
        # A verdict, or none: rewire ran no compiler for 20 s after the save
        # (it did not notice it), or 300 s went by.
        t_save = time.time()
        busy, k = t_save, 0
        while time.time() < t_save + 300 and p.poll() is None:
            lines = open(err_path, errors='replace').read().splitlines()[nerr:]
            v = [x for x in lines if VERDICT_RE.match(x)]
            if v:
                verdict = v[0]
                res['t_verdict'] = round(time.time() - t_begin, 1)
                break
            k += 1
            if k % 10 == 0:
                if set(descendants(p.pid)) - {pid} - set(descendants(pid)):
                    busy = time.time()
                elif time.time() - busy > 20:
                    break
            time.sleep(0.05)
        if verdict is None:
            verdict = 'no verdict' if p.poll() is None else 'harness: rewire run ended'
        if verdict.startswith('rewire: patched'):
            time.sleep(1.0)	# its warnings of running functions come 500 ms after
        if p.poll() is None:
            os.write(w, prog.input)
        os.close(w)
        w = None
        try:
            status = p.wait(60)
        except subprocess.TimeoutExpired:
            kill_tree(p.pid)
            p.wait()
            status = 'hang'
        return (verdict, status, prog.normalize(open(out_path, 'rb').read()),
                open(err_path, errors='replace').read())
    finally:
        if w is not None:
            os.close(w)
        if p.poll() is None:
            kill_tree(p.pid)
            p.wait()
        restore(prog.pristine, prog.tree)


REASONS = [('compile', r'compile failed'), ('other-build', r'runs another build'), ('layout', r'layout|size of|struct|union|class'),
           ('signature', r'signature|parameters|result'), ('grew', r'grew|larger|size'),
           ('tls', r'thread-local'), ('short', r'shorter|too short'),
           ('notfound', r'not found|found nowhere|undefined'), ('running', r'running|stack|thread'),
           ('data', r'data|initiali[sz]')]


def reason_class(verdict):
    msg = verdict.split('error: ', 1)[-1]
    for name, pat in REASONS:
        if re.search(pat, msg, re.I):
            return name
    return 'other'


def nondeterministic(prog, edit, startup1, live, runs=8):
    """Whether the fresh build of the edit, run RUNS times more, prints
    different things, or once what the patched program printed (LIVE: its
    status and output): then its output hangs on addresses, time or hash
    seeds (Lua's pairs over a randomly seeded table), and is no oracle."""
    restore(prog.pristine, prog.tree)
    write_file(os.path.join(prog.tree, edit.rel), edit.new)
    try:
        if prog.build()[0]:
            return False
        seen = set()
        for _ in range(runs):
            r = prog.run_fresh(prog.input)
            if r is None:
                return True
            st, out = r
            if not out.startswith(startup1):
                return True
            seen.add((st, prog.original_startup + out[len(startup1):]))
        return len(seen) > 1 or live in seen
    finally:
        restore(prog.pristine, prog.tree)


RUNNING_SAID_RE = re.compile(r'^rewire: warning: .* is running \(process \d+, thread \d+\)', re.M)


def patched_running(prog, verdict):
    """Does rewire's 'patched F, G (files)' name a function running at the save?"""
    m = re.match(r'rewire: patched (.*?) \(', verdict)
    names = m.group(1) if m else ''
    return any(re.search(r'(^|[\s,:])%s($|[\s,<(])' % re.escape(f), names) for f in prog.running)


def run_edit(prog, seed, number, tmp):
    """One edit: a result dict."""
    edit = pick_edit(prog, seed, number)
    res = {'program': prog.name, 'number': number, 'title': edit.title(), 'label': edit.site.label(),
           'diff': edit.diff()}
    t0 = time.time()
    exp = expected_output(prog, edit)
    res['t_fresh'] = round(time.time() - t0, 1)
    if exp[0] == 'invalid':
        res.update(outcome='invalid', why=exp[1])
        restore(prog.pristine, prog.tree)
        return res
    _, (st1, startup1), (st2, full) = exp
    if not full.startswith(startup1):
        res.update(outcome='invalid', why='nondeterministic start-up output')
        return res
    suffix = full[len(startup1):]
    res['observable'] = (st2, full) != prog.original
    expected = prog.original_startup + suffix
    t0 = time.time()
    verdict, status, got, err = live_run(prog, edit, tmp, res)
    res['t_live'] = round(time.time() - t0, 1)
    res['verdict'] = verdict
    if verdict.startswith('harness:'):
        res.update(outcome='harness', why=verdict, err=err[-3000:])
        return res
    if verdict == 'no verdict':
        # rewire said nothing about the save: a miss too when the output differs
        res['outcome'] = 'no-verdict' if got != expected or status != st2 else 'nochange-ok'
        if res['outcome'] == 'no-verdict' and nondeterministic(prog, edit, startup1, (status, got)):
            res.update(outcome='invalid', why='nondeterministic')
            return res
        if res['outcome'] == 'no-verdict':
            res['output_diff'] = output_diff(expected, got, st2, status)
        return res
    if 'error: ' in verdict:
        res.update(outcome='refused', why=reason_class(verdict))
        return res
    ok = got == expected and status == st2
    if ok:
        res['outcome'] = 'same' if verdict.startswith('rewire: patched') else 'nochange-ok'
        return res
    if nondeterministic(prog, edit, startup1, (status, got)):
        res.update(outcome='invalid', why='nondeterministic')
        return res
    # A writable variable's initializer: its running value is state, kept
    # by design (rewire warns); told apart from silent misses.
    res['outcome'] = 'kept-state' if 'rw' in edit.site.ctx.split('+') else 'different'
    if res['outcome'] == 'different' and ran_at_startup(prog, edit):
        # The edited code ran before the save too: the fresh build's start-up
        # state (tables, interned strings, definitions) may differ from the
        # running program's. A miss or not: to be told by hand.
        res['outcome'] = 'startup-state'
    if res['outcome'] == 'different' and RUNNING_SAID_RE.search(err):
        # rewire said a replaced function is running, in its old code: the
        # difference is the one it told (a running call keeps its code).
        res['outcome'] = 'said-running'
    if res['outcome'] == 'different' and patched_running(prog, verdict):
        # rewire patched a function that was running at the save (through a
        # #define, an inline function): that frame keeps its old code with
        # new callees. Not a comparison the driver can make (as an edit in
        # a running function); rewire does not say so yet: counted apart.
        res['outcome'] = 'running'
    res['output_diff'] = output_diff(expected, got, st2, status)
    res['err'] = '\n'.join(err.splitlines()[1:])[-2000:]
    return res


def ran_at_startup(prog, edit):
    if prog.startup is None:
        return False
    it = edit.site.item
    if it.kind == 'fn':
        return edit.site.line in set(prog.startup.get(edit.rel, ()))
    return it.name in prog.startup_ids


def output_diff(expected, got, st_expected, st_got):
    d = difflib.unified_diff(expected.decode('utf-8', 'replace').splitlines(True),
                             got.decode('utf-8', 'replace').splitlines(True),
                             'fresh build', 'patched program', n=1)
    d = list(d)
    if len(d) > 40:
        d = d[:40] + ['... (%d more lines)\n' % (len(d) - 40)]
    d = ''.join(d)
    if st_got != st_expected:
        d += 'exit status: fresh build %s, patched program %s\n' % (st_expected, st_got)
    return d


# ------------------------------------------------------------ a run

COLUMNS = ['edits', 'observable', 'same', 'nochange-ok', 'refused', 'different', 'no-verdict', 'startup-state', 'running', 'said-running', 'kept-state', 'invalid']


def table(results, programs):
    rows = []
    head = ['program'] + COLUMNS + ['refused by reason', 'harness']
    for name in programs:
        rs = [r for r in results if r['program'] == name]
        c = collections.Counter(r['outcome'] for r in rs)
        reasons = collections.Counter(r['why'] for r in rs if r['outcome'] == 'refused')
        rows.append([name, str(sum(c[k] for k in ('same', 'nochange-ok', 'refused', 'different', 'no-verdict', 'startup-state', 'running', 'said-running', 'kept-state', 'harness'))),
                     str(sum(1 for r in rs if r.get('observable') and r['outcome'] != 'invalid'))] +
                    [str(c[k]) for k in COLUMNS[2:]] +
                    [', '.join('%s %d' % kv for kv in sorted(reasons.items())) or '-', str(c['harness'])])
    w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    fmt = lambda r: '| ' + ' | '.join(x.ljust(w[i]) for i, x in enumerate(r)) + ' |'
    lines = [fmt(head), '|' + '|'.join('-' * (x + 2) for x in w) + '|'] + [fmt(r) for r in rows]
    return '\n'.join(lines) + '\n'


def report_different(r, out):
    print('=== %s: %s' % (r['outcome'], r['title']), file=out)
    print('rewire said: %s' % r.get('verdict'), file=out)
    extra = [x for x in r.get('err', '').splitlines() if x != r.get('verdict')]
    if extra:
        print('  and then:\n' + ''.join('    %s\n' % x for x in extra[-8:]), end='', file=out)
    print('--- the edit:', file=out)
    print(r['diff'], end='', file=out)
    print('--- the output (fresh build -> patched program):', file=out)
    print(r['output_diff'], end='', file=out)
    print(file=out)


def prepare(prog):
    lock = open(os.path.join(WORK, '.setup.lock'), 'w')
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        prog.setup()
    finally:
        lock.close()
    restore(prog.pristine, prog.tree)
    startup = prog.run_fresh(prog.terminator)
    prog.original = prog.run_fresh(prog.input)
    if startup is None or prog.original is None:
        raise RuntimeError('%s hangs on its driver input as built' % prog.name)
    prog.original_startup = startup[1]
    again = prog.run_fresh(prog.input)
    if again != prog.original:
        raise RuntimeError('%s does not print the same twice on its driver input' % prog.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--programs', default='bc,lua,muparser,rust-json')
    ap.add_argument('--edits', default='20',
                    help='valid edits per program: N, or N,PROGRAM=M,... (e.g. 30,muparser=8)')
    ap.add_argument('--seed', default='1')
    ap.add_argument('--only', type=int, help='run only edit number N (as numbered in a report)')
    ap.add_argument('--short', action='store_true', help='PASS/FAIL lines, as tests/run.sh wants them')
    ap.add_argument('--list', action='store_true', help='list the edit sites by label and exit')
    ap.add_argument('--out', help='the table file (default build/oracle/results-SEED.txt)')
    ap.add_argument('--eager', action='store_true',
                    help='save each edit as soon as rewire watches, without waiting for its start-up compiles')
    ap.add_argument('--report', nargs='+', metavar='JSONL',
                    help='print the table of earlier runs (their results-SEED.jsonl) and exit')
    a = ap.parse_args()
    if a.report:
        rs = [json.loads(x) for f in a.report for x in open(f) if x.strip()]
        for r in rs:	# the runs before 'running' was told apart
            path = os.path.join(WORK, r['program'], 'running.json')
            if r['outcome'] == 'different' and os.path.exists(path):
                prog = argparse.Namespace(running=set(json.load(open(path))))
                if patched_running(prog, r.get('verdict', '')):
                    r['outcome'] = 'running'
        print(table(rs, list(dict.fromkeys(r['program'] for r in rs))), end='')
        return 0
    global EAGER
    EAGER = a.eager
    programs = [p.strip() for p in a.programs.split(',') if p.strip()]
    edits = {}
    for part in a.edits.split(','):
        k, _, v = part.rpartition('=')
        edits[k or '*'] = int(v)
    a.edits = edits.get('*', 20)
    for p in programs:
        if p not in PROGRAMS:
            ap.error('unknown program %s (known: %s)' % (p, ', '.join(PROGRAMS)))
    if not os.access(REWIRE, os.X_OK):
        ap.error('%s not found: run make' % REWIRE)
    os.makedirs(WORK, exist_ok=True)
    results = []
    t_start = time.time()
    # A run of one edit leaves the seed's files alone (a run of the seed
    # may be writing them).
    tag = '%s-only%d' % (a.seed, a.only) if a.only else a.seed
    diff_path = os.path.join(WORK, 'different-%s.txt' % tag)
    difff = open(diff_path, 'w')
    jsonl = open(os.path.join(WORK, 'results-%s.jsonl' % tag), 'w')	# as they come
    failed = False
    for name in programs:
        prog = PROGRAMS[name]()
        lock = open(os.path.join(WORK, '.%s.lock' % name), 'w')
        fcntl.flock(lock, fcntl.LOCK_EX)
        n_edits = edits.get(name, a.edits)
        tname = 'oracle: %s, %d edits, seed %s' % (name, n_edits, a.seed)
        try:
            prepare(prog)
        except Exception as e:	# noqa: BLE001 -- said and counted
            if a.short:
                print('FAIL %s: cannot set the program up: %s' % (tname, str(e)[-500:]), flush=True)
            else:
                log('oracle: %s: cannot set up: %s' % (name, e))
            failed = True
            continue
        if a.list:
            for label, ss in sorted(all_sites(prog).items()):
                print('%-28s %d' % (label, len(ss)))
            continue
        tmp = os.path.join(WORK, 'tmp-%s-%d' % (name, os.getpid()))
        os.makedirs(tmp, exist_ok=True)
        t0 = time.time()
        numbers = [a.only] if a.only is not None else None
        valid, number, mine = 0, 0, []
        while True:
            if numbers is not None:
                if not numbers:
                    break
                number = numbers.pop()
            elif valid >= n_edits or number >= 4 * n_edits + 10:
                break
            else:
                number += 1
            r = run_edit(prog, a.seed, number, tmp)
            r['seconds'] = round(time.time() - t0, 1)
            mine.append(r)
            jsonl.write(json.dumps(r) + '\n')
            jsonl.flush()
            if r['outcome'] != 'invalid':
                valid += 1
            log('oracle: %-11s %s%s' % (r['outcome'], r['title'],
                                       (' -- ' + r.get('verdict', r.get('why', '')))[:200]
                                       if r['outcome'] != 'same' else ''))
            if r['outcome'] in ('different', 'no-verdict', 'startup-state', 'running'):
                report_different(r, difff)
                difff.flush()
                if not a.short:
                    report_different(r, sys.stdout)
            if r['outcome'] == 'harness':
                log(r.get('err', '')[-1500:])
        shutil.rmtree(tmp, ignore_errors=True)
        results += mine
        dt = time.time() - t0
        log('oracle: %s: %d edits in %.0f s' % (name, len(mine), dt))
        if a.short:
            bad = [r for r in mine if r['outcome'] in ('different', 'no-verdict', 'harness')]
            if bad:
                for r in bad:
                    if r['outcome'] != 'harness':
                        report_different(r, sys.stdout)
                    else:
                        print('    harness: %s %s' % (r['title'], r['why']))
                print('FAIL %s: %s' % (tname, '; '.join('%s %s' % (r['outcome'], r['title']) for r in bad)),
                      flush=True)
                failed = True
            elif not any(r['outcome'] != 'invalid' for r in mine):
                print('FAIL %s: no valid edit' % tname, flush=True)
                failed = True
            else:
                c = collections.Counter(r['outcome'] for r in mine)
                print('PASS %s (%s)' % (tname, ', '.join('%s %d' % kv for kv in sorted(c.items()))), flush=True)
        lock.close()
    difff.close()
    if a.list:
        return 0
    jsonl.close()
    t = table(results, programs)
    header = 'oracle: seed %s, %s edits asked, %.0f s\n' % (
        a.seed, ', '.join('%s %d' % (p, edits.get(p, a.edits)) for p in programs), time.time() - t_start)
    out = a.out or os.path.join(WORK, 'results-%s.txt' % tag)
    with open(out, 'w') as f:
        f.write(header + t)
    if not a.short:
        print(header + t, end='')
        print('table: %s; differences: %s' % (out, diff_path))
    return 1 if failed or any(r['outcome'] in ('different', 'no-verdict', 'harness') for r in results) else 0


if __name__ == '__main__':
    sys.exit(main())
