"""mutate.py: small, deterministic edits of real C, C++ and Rust sources.

A source file is tokenized (comments, strings, numbers, identifiers,
operators; preprocessor lines keep their tokens, tagged), then read as a
list of items: functions (name, body, context such as `impl X for Y`,
`template`, `virtual`), data definitions (tables, `const`/`static`
initializers) and `#define`s. Every place an edit can be made is a site;
`sites(path)` lists them and `apply(text, site)` returns the edited text.
The caller picks sites with its own seeded random generator, so a run is
reproduced by its seed alone.

Edit kinds (a site's `kind`), each tagged with where it is (`ctx`):
  str, int, float      a literal changed (letter case swapped, n+1, x+1.0)
  op                   a binary operator swapped (+ -, < <=, == !=, && ||...)
  cond                 a condition negated: if (c) -> if (!(c))
  call                 a call to another function of the file with as many arguments
  dupstmt              an expression statement repeated
  newfunc, newstatic,  an integer literal replaced by a call to a new function,
  newglobal            by a new file-static, by a new global (each holding n+1)
  reorder              two adjacent functions swapped
  rename               a local variable renamed in its function
ctx: fn (a function body), table (an initializer of several values),
const (a const or static scalar initializer), define (a #define), enum,
and for C++/Rust: lambda, closure, template, generic, virtual, impl,
trait-impl, match (an arm of a match), static.
"""
import re

KEYWORDS_C = set("""if else for while do switch case default return break continue goto sizeof
typedef struct union enum static extern const volatile register auto inline restrict signed
unsigned int long short char float double void _Bool bool alignof _Alignof __attribute__ asm
__asm__ new delete throw try catch template typename class namespace using operator this
public private protected virtual override final friend explicit mutable static_cast
dynamic_cast reinterpret_cast const_cast noexcept decltype constexpr nullptr true false
defined __typeof__ typeof __extension__ __builtin_expect""".split())
KEYWORDS_RS = set("""as break const continue crate else enum extern false fn for if impl in let
loop match mod move mut pub ref return self Self static struct super trait true type unsafe use
where while async await dyn box""".split())
TYPES_C = set("""int long short char float double unsigned signed size_t ssize_t int64_t
uint64_t int32_t uint32_t uint8_t lua_Integer lua_Number lua_Unsigned lu_byte lu_mem l_mem
ptrdiff_t value_type""".split())

OPS = {'+': ['-'], '-': ['+'], '*': ['+', '/'], '/': ['*'], '%': ['/'],
       '<': ['<=', '>'], '>': ['>=', '<'], '<=': ['<', '>='], '>=': ['>', '<='],
       '==': ['!='], '!=': ['=='], '&&': ['||'], '||': ['&&'], '<<': ['>>'], '>>': ['<<'],
       '|': ['^'], '^': ['|'], '&': ['|'], '+=': ['-='], '-=': ['+=']}
PUNCT = sorted("""<<= >>= ... -> ++ -- << >> <= >= == != && || += -= *= /= %= &= |= ^= ::
=> .. + - * / % < > = ! ~ & | ^ ? : ; , . ( ) [ ] { } # @ $""".split(), key=len, reverse=True)


class Tok:
    __slots__ = ('kind', 'text', 'start', 'end', 'line', 'pp')

    def __init__(self, kind, text, start, line, pp):
        self.kind, self.text, self.start, self.end = kind, text, start, start + len(text)
        self.line, self.pp = line, pp

    def __repr__(self):
        return '%s:%r' % (self.kind, self.text)


NUM_RE = re.compile(r"(0[xX][0-9a-fA-F_']+(\.[0-9a-fA-F]*)?([pP][+-]?\d+)?|0[bB][01_]+|"
                    r"(\d[\d_']*\.?[\d_']*|\.\d[\d_']*)([eE][+-]?\d+)?)[A-Za-z0-9_]*")
ID_RE = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')


def tokenize(text, lang):
    """Significant tokens of TEXT. pp: the directive ('define', 'include'...) of
    the preprocessor line a token is on, else None."""
    toks, i, n, line = [], 0, len(text), 1
    pp = None
    at_line_start = True
    while i < n:
        c = text[i]
        if c == '\n':
            if pp and not (i > 0 and text[i - 1] == '\\'):
                pp = None
            line += 1
            i += 1
            at_line_start = True
            continue
        if c in ' \t\r\f\v' or (c == '\\' and i + 1 < n and text[i + 1] == '\n'):
            i += 1
            continue
        if text.startswith('//', i):
            j = text.find('\n', i)
            i = n if j < 0 else j
            continue
        if text.startswith('/*', i):
            depth, j = 1, i + 2
            while j < n and depth:
                if lang == 'rust' and text.startswith('/*', j):
                    depth, j = depth + 1, j + 2
                elif text.startswith('*/', j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += text.count('\n', i, j)
            i = j
            continue
        if c == '#' and at_line_start and lang != 'rust':
            m = re.compile(r'#\s*([a-z]+)').match(text, i)
            pp = m.group(1) if m else 'null'
        at_line_start = False
        start = i
        if lang == 'rust' and (text.startswith('r#"', i) or text.startswith('r"', i) or
                               text.startswith('br"', i) or text.startswith('br#', i)):
            j = text.index('r', i) + 1
            hashes = 0
            while text[j] == '#':
                hashes, j = hashes + 1, j + 1
            end = text.index('"' + '#' * hashes, j + 1) + 1 + hashes
            toks.append(Tok('rawstr', text[start:end], start, line, pp))
            line += text.count('\n', start, end)
            i = end
            continue
        if c == '"' or (c in 'LuUb' and text.startswith('"', i + 1)) or text.startswith('u8"', i):
            j = text.index('"', i) + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == '\\' else 1
            toks.append(Tok('str', text[start:j + 1], start, line, pp))
            line += text.count('\n', start, j + 1)
            i = j + 1
            continue
        if c == "'" or (c in 'Lb' and text.startswith("'", i + 1)):
            q = text.index("'", i)
            if lang == 'rust':	# a lifetime 'a or a char 'x' / '\n'
                m = re.compile(r"'(\\.[^']*|[^'\\])'").match(text, q)
                if not m:
                    m2 = ID_RE.match(text, q + 1)
                    end = m2.end() if m2 else q + 1
                    toks.append(Tok('life', text[start:end], start, line, pp))
                    i = end
                    continue
                end = m.end()
            else:
                j = q + 1
                while j < n and text[j] != "'":
                    j += 2 if text[j] == '\\' else 1
                end = j + 1
            toks.append(Tok('char', text[start:end], start, line, pp))
            i = end
            continue
        if c.isdigit() or (c == '.' and i + 1 < n and text[i + 1].isdigit()):
            m = NUM_RE.match(text, i)
            t = m.group(0)
            if lang == 'rust' and (t.endswith('.') and text.startswith('..', i + len(t) - 1) or '..' in t):
                t = t[:t.index('.')]	# 0..10, 1..=n
            toks.append(Tok('num', t, start, line, pp))
            i += len(t)
            continue
        m = ID_RE.match(text, i)
        if m:
            toks.append(Tok('id', m.group(0), start, line, pp))
            i = m.end()
            continue
        for p in PUNCT:
            if text.startswith(p, i):
                toks.append(Tok('op', p, start, line, pp))
                i += len(p)
                break
        else:
            toks.append(Tok('op', c, start, line, pp))
            i += 1
    return toks


def is_float(t):
    s = t.lower().rstrip('fl')
    if s.startswith('0x'):
        return '.' in s or 'p' in s
    if s.endswith(('f32', 'f64')):
        return True
    s = re.sub(r'(_?[iu](8|16|32|64|128|size))$', '', s)
    return '.' in s or 'e' in s


class Item:
    """A top-level thing: kind fn | data | define; tokens [lo, hi) of the
    whole item, body [blo, bhi) for a function; ctx tags."""

    def __init__(self, kind, name, lo, hi, ctx, blo=None, bhi=None):
        self.kind, self.name, self.lo, self.hi, self.ctx = kind, name, lo, hi, ctx
        self.blo, self.bhi = blo, bhi

    def __repr__(self):
        return '%s %s [%s]' % (self.kind, self.name, ','.join(self.ctx))


def match_close(toks, i):
    """Index of the bracket closing the one at toks[i]."""
    o = toks[i].text
    c = {'(': ')', '[': ']', '{': '}'}[o]
    d = 0
    for j in range(i, len(toks)):
        if toks[j].pp:
            continue
        if toks[j].text == o and toks[j].kind == 'op':
            d += 1
        elif toks[j].text == c and toks[j].kind == 'op':
            d -= 1
            if d == 0:
                return j
    return len(toks) - 1


def parse_items(toks, lang, virtuals=()):
    """Functions and data definitions, descending into namespaces, classes,
    extern "C", impl and mod blocks."""
    items = []
    code = [i for i, t in enumerate(toks) if not t.pp]

    def scan(lo, hi, ctx):
        i = lo
        start = lo
        while i < hi:
            t = toks[i]
            if t.pp:
                i += 1
                continue
            if t.text in (';', '}') and t.kind == 'op':
                if t.text == ';':
                    data_item(start, i, ctx)
                i += 1
                start = i
                continue
            if t.text == '{' and t.kind == 'op':
                close = match_close(toks, i)
                head = [x for x in toks[start:i] if not x.pp]
                words = [x.text for x in head]
                if lang == 'rust':
                    rust_block(start, i, close, words, ctx)
                else:
                    c_block(start, i, close, head, words, ctx)
                i = close + 1
                if lang != 'rust' and i < hi and toks[i].text == ';':
                    pass	# struct x {...}; / int t[] = {...}; : handled as data
                else:
                    start = i
                continue
            i += 1

    def data_item(lo, semi, ctx):
        head = [x for x in toks[lo:semi] if not x.pp]
        words = [x.text for x in head]
        if '=' not in words or not head:
            return
        eq = words.index('=')
        if '(' in words[:eq] and lang != 'rust':
            # int (*f)(void) = g; is data too, but leave such declarations out
            if words.count('(') > 1 or words[eq - 1] == ')':
                return
        names = [x.text for x in head[:eq] if x.kind == 'id' and x.text not in KEYWORDS_C
                 and x.text not in KEYWORDS_RS]
        if not names:
            return
        tags = list(ctx)
        decl = words[:eq]
        stars = [k for k, w in enumerate(decl) if w == '*']
        if 'const' not in decl and 'constexpr' not in decl or \
                (stars and (stars[-1] + 1 >= len(decl) or decl[stars[-1] + 1] != 'const')):
            tags.append('rw')	# writable storage: its running value is state
        if '{' in words[eq:]:
            tags.append('table')
        elif 'const' in words[:eq] or 'constexpr' in words[:eq]:
            tags.append('const')
        elif 'static' in words[:eq]:
            tags.append('static')
        else:
            tags.append('global')
        items.append(Item('data', names[-1], lo, semi + 1, tags))

    def c_block(lo, ob, cb, head, words, ctx):
        if not words:
            return
        if words[0] in ('namespace',) or (words[0] == 'extern' and len(words) <= 2):
            scan(ob + 1, cb, ctx)
            return
        if words[0] == 'template' or 'template' in words[:1]:
            ctx = ctx + ['template']
        if '=' in words and words.index('=') < len(words):
            # an initializer: the item ends at the ';' after the braces
            return
        kw = [w for w in words if w in ('struct', 'class', 'union', 'enum')]
        if kw and '(' not in words:
            if kw[0] in ('class', 'struct') and lang == 'cpp':
                names = [x.text for x in head if x.kind == 'id' and x.text not in KEYWORDS_C]
                scan(ob + 1, cb, ctx + ['class:' + (names[0] if names else '?')])
            elif kw[0] == 'enum':
                items.append(Item('data', words[-1], lo, cb + 1, ctx + ['enum']))
            return
        if '(' not in words:
            return
        p = words.index('(')
        name = words[p - 1] if p > 0 else '?'
        if p >= 3 and words[p - 2] == '::':
            name = words[p - 3] + '::' + name
        if name == 'operator' or (p >= 2 and words[p - 2] == 'operator'):
            name = 'operator'
        tags = list(ctx) + ['fn']
        if 'virtual' in words or name.split('::')[-1] in virtuals:
            tags.append('virtual')
        if any(c.startswith('class:') for c in ctx) or '::' in name:
            tags.append('method')
        items.append(Item('fn', name, lo, cb + 1, tags, ob, cb + 1))

    def rust_block(lo, ob, cb, words, ctx):
        if not words:
            return
        if 'fn' in words:
            k = words.index('fn')
            name = words[k + 1] if k + 1 < len(words) else '?'
            tags = list(ctx) + ['fn']
            if k + 2 < len(words) and words[k + 2] == '<':
                tags.append('generic')
            items.append(Item('fn', name, lo, cb + 1, tags, ob, cb + 1))
            return
        if words[0] in ('impl', 'unsafe') or 'impl' in words[:3]:
            tag = 'trait-impl' if 'for' in words else 'impl'
            if '<' in words[:3]:
                tag += '+generic'
            scan(ob + 1, cb, ctx + [tag])
        elif 'mod' in words[:3] or 'trait' in words[:3]:
            scan(ob + 1, cb, ctx + (['trait'] if 'trait' in words[:3] else []))

    # Rust items: const/static end in ';' after their '=' and can hold
    # braces (struct literals): scan handles them as blocks otherwise.
    if lang == 'rust':
        scan_rust(toks, items)
    else:
        scan(0, len(toks), [])
    # #define lines: from "# define NAME" to the end of its logical line
    for i, t in enumerate(toks):
        if t.pp == 'define' and t.text == 'define' and i > 0 and toks[i - 1].text == '#' \
                and i + 1 < len(toks) and toks[i + 1].pp == 'define':
            j = i + 2
            while j < len(toks) and toks[j].pp == 'define' and not (
                    toks[j].text == '#' and j + 1 < len(toks) and toks[j + 1].text == 'define'):
                j += 1
            items.append(Item('define', toks[i + 1].text, i - 1, j, ['define']))
    del code
    return items


def scan_rust(toks, items):
    """Rust items, by keyword: fn, impl/mod/trait blocks, const/static."""
    def scan(lo, hi, ctx):
        i = lo
        while i < hi:
            t = toks[i]
            if t.kind == 'id' and t.text in ('const', 'static') and i + 1 < hi and \
                    toks[i + 1].kind == 'id' and toks[i + 1].text not in ('fn', 'unsafe', 'mut') \
                    or (t.text == 'static' and i + 2 < hi and toks[i + 1].text == 'mut'):
                name = toks[i + 2].text if toks[i + 1].text == 'mut' else toks[i + 1].text
                j = i
                while j < hi and toks[j].text != ';':
                    if toks[j].text in ('{', '(', '['):
                        j = match_close(toks, j)
                    j += 1
                words = [x.text for x in toks[i:j]]
                tag = 'const' if t.text == 'const' else 'static'
                if toks[i + 1].text == 'mut':
                    tag += '+rw'
                if '[' in words[words.index('=') if '=' in words else 0:]:
                    tag += '+table'
                items.append(Item('data', name, i, j + 1, ctx + [tag]))
                i = j + 1
                continue
            if t.kind == 'id' and t.text == 'fn':
                j = i
                while j < hi and toks[j].text not in ('{', ';'):
                    if toks[j].text == '(':
                        j = match_close(toks, j)
                    j += 1
                if j < hi and toks[j].text == '{':
                    cb = match_close(toks, j)
                    lo_item = i
                    while lo_item > lo and toks[lo_item - 1].text in ('pub', 'async', 'unsafe', 'extern', 'const') \
                            or (lo_item > lo and toks[lo_item - 1].kind == 'str'):
                        lo_item -= 1
                    # attributes #[...] before it belong to it
                    while lo_item > lo and toks[lo_item - 1].text == ']':
                        k = lo_item - 1
                        d = 0
                        while k > lo:
                            if toks[k].text == ']':
                                d += 1
                            elif toks[k].text == '[':
                                d -= 1
                                if d == 0:
                                    break
                            k -= 1
                        if k - 1 >= lo and toks[k - 1].text == '#':
                            lo_item = k - 1
                        else:
                            break
                    tags = list(ctx) + ['fn']
                    if i + 2 < hi and toks[i + 2].text == '<':
                        tags.append('generic')
                    items.append(Item('fn', toks[i + 1].text, lo_item, cb + 1, tags, j, cb + 1))
                    i = cb + 1
                    continue
                i = j + 1
                continue
            if t.kind == 'id' and t.text in ('impl', 'mod', 'trait'):
                j = i
                while j < hi and toks[j].text not in ('{', ';'):
                    j += 1
                if j < hi and toks[j].text == '{':
                    words = [x.text for x in toks[i:j]]
                    if t.text == 'impl':
                        tag = 'trait-impl' if 'for' in words else 'impl'
                        if len(words) > 1 and words[1] == '<':
                            tag += '+generic'
                    else:
                        tag = t.text
                    cb = match_close(toks, j)
                    scan(j + 1, cb, ctx + [tag])
                    i = cb + 1
                    continue
            if t.text in ('{', '(', '['):	# struct bodies, macro calls
                i = match_close(toks, i) + 1
                continue
            i += 1
    scan(0, len(toks), [])


class Site:
    def __init__(self, kind, ctx, item, edits, line, desc, extra=None):
        self.kind, self.ctx, self.item, self.line, self.desc = kind, ctx, item, line, desc
        self.edits = edits	# [(start, end, new text)] on the file's text
        self.extra = extra	# (position, text) inserted before the item, for new*

    def label(self):
        return '%s@%s' % (self.kind, self.ctx)


def fn_inner_ctx(toks, item, i, lang):
    """Finer context of token i inside function ITEM: lambda/closure/match."""
    tags = []
    if lang == 'cpp':
        # a lambda: '[' ... ']' '(' ... ')' ... '{' enclosing i
        for k in range(item.blo + 1, i):
            if toks[k].text == '[' and toks[k - 1].text in ('(', ',', '=', 'return', '{', ';'):
                cb = match_close(toks, k)
                m = cb + 1
                if m < len(toks) and toks[m].text == '(':
                    m = match_close(toks, m) + 1
                while m < len(toks) and toks[m].text in ('mutable', '->', 'const') or \
                        (m < len(toks) and toks[m].kind == 'id' and toks[m - 1].text == '->'):
                    m += 1
                if m < len(toks) and toks[m].text == '{' and m < i <= match_close(toks, m):
                    tags.append('lambda')
                    break
    if lang == 'rust':
        for k in range(item.blo + 1, i):
            if toks[k].text == '|' and toks[k - 1].text in ('(', ',', '=', 'move', 'return'):
                # |args| expr  or |args| { ... }
                m = k + 1
                while m < i and toks[m].text != '|':
                    m += 1
                if m < i:
                    if toks[m + 1].text == '{':
                        if i <= match_close(toks, m + 1):
                            tags.append('closure')
                            break
                    else:
                        # expression closure: up to the ',' or ')' closing its context
                        d = 0
                        for q in range(m + 1, len(toks)):
                            if toks[q].text in ('(', '[', '{'):
                                d += 1
                            elif toks[q].text in (')', ']', '}'):
                                if d == 0:
                                    break
                                d -= 1
                            elif toks[q].text in (',', ';') and d == 0:
                                break
                            if q == i:
                                tags.append('closure')
                                break
                        if tags:
                            break
        # inside a match arm: after a 'match' ... '{' that encloses i, and after a '=>'
        for k in range(item.blo + 1, i):
            if toks[k].text == 'match':
                m = k
                while m < i and toks[m].text != '{':
                    if toks[m].text == '(':
                        m = match_close(toks, m)
                    m += 1
                if m < i and i <= match_close(toks, m) and \
                        any(toks[q].text == '=>' for q in range(m, i)):
                    tags.append('match')
                    break
    return tags


def literal_sites(toks, items, lang, text):
    sites = []
    owner = {}
    for it in items:
        for k in range(it.lo, it.hi):
            owner.setdefault(k, it)
    for i, t in enumerate(toks):
        if t.kind not in ('num', 'str'):
            continue
        it = owner.get(i)
        if it is None:
            continue
        if t.pp and t.pp != 'define':
            continue
        if lang != 'rust' and t.kind == 'str' and i > 0 and toks[i - 1].text in ('extern', 'asm', '__asm__'):
            continue
        if lang == 'rust' and t.kind == 'num' and i > 0 and toks[i - 1].text == '.':
            continue	# tuple.0
        if i + 1 < len(toks) and toks[i + 1].text == '(' and lang != 'rust':
            continue	# a string followed by ( : _T("...") macros are ids, this is odd
        ctx = ctx_of(toks, it, i, lang)
        if t.kind == 'str':
            new = mutate_string(t.text)
            if new is None:
                continue
            sites.append(Site('str', ctx, it, [(t.start, t.end, new)], t.line,
                              '%s -> %s' % (t.text[:40], new[:40])))
        else:
            f = is_float(t.text)
            new = mutate_number(t.text, f, lang)
            if new is None:
                continue
            sites.append(Site('float' if f else 'int', ctx, it, [(t.start, t.end, new)], t.line,
                              '%s -> %s' % (t.text, new)))
    return sites


def ctx_of(toks, it, i, lang):
    tags = [c for c in it.ctx if not c.startswith('class:')]
    if it.kind == 'fn':
        tags = tags + fn_inner_ctx(toks, it, i, lang)
        tags = [x for x in tags if x != 'fn'] or ['fn']
    return '+'.join(dict.fromkeys(tags))


def mutate_string(s):
    q = s.index('"')
    body = s[q + 1:-1]
    if s.startswith(('r', 'br')) or s[q - 1:q] == '#':
        pass
    # positions of letters outside escapes and printf conversions
    ok = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == '\\':
            i += 2
            continue
        if c == '%':
            j = i + 1
            while j < len(body) and body[j] in '-+ #0123456789.*hlLqjzt':
                j += 1
            i = j + 1
            continue
        if c == '{' or c == '}':	# Rust format strings
            j = body.find('}', i)
            i = (j + 1) if c == '{' and j > 0 else i + 1
            continue
        if c.isalpha() and c.isascii():
            ok.append(i)
        i += 1
    if not ok:
        return s[:q + 1] + body + 'x' + s[-1] if '\\' not in body[-1:] else None
    # the middle letter: deterministic, and far from a leading "%"
    p = ok[len(ok) // 2]
    c = body[p]
    return s[:q + 1] + body[:p] + c.swapcase() + body[p + 1:] + s[-1]


def mutate_number(t, f, lang):
    m = re.match(r'^(0[xX][0-9a-fA-F_]+|0[bB][01_]+|[0-9_.]+(?:[eE][+-]?\d+)?)(.*)$', t)
    if not m:
        return None
    num, suf = m.group(1), m.group(2)
    if lang == 'rust' and suf.startswith(('_', )):
        num, suf = num, suf
    if f:
        if num.lower().startswith('0x'):
            return None
        try:
            v = float(num.replace('_', ''))
        except ValueError:
            return None
        nv = v + 1.0 if abs(v) < 1e6 else v * 2
        s = repr(nv)
        if 'e' not in s and '.' not in s:
            s += '.0'
        if lang == 'rust' and suf and not suf.startswith('f'):
            return None
        return s + suf
    if '.' in num:
        return None
    try:
        if num.lower().startswith('0x'):
            v = int(num.replace('_', '').replace("'", ''), 16)
            return '0x%X' % (v + 1) + suf
        if num.lower().startswith('0b'):
            v = int(num[2:].replace('_', ''), 2)
            return '0b{:b}'.format(v + 1) + suf
        if len(num) > 1 and num.startswith('0'):
            v = int(num, 8)
            return '0%o' % (v + 1) + suf
        v = int(num.replace('_', '').replace("'", ''))
    except ValueError:
        return None
    return str(v + 1) + suf


def op_sites(toks, items, lang):
    sites = []
    for it in items:
        if it.kind != 'fn':
            continue
        for i in range(it.blo + 1, it.bhi - 1):
            t = toks[i]
            if t.kind != 'op' or t.text not in OPS or t.pp:
                continue
            p = toks[i - 1]
            if not (p.kind in ('id', 'num', 'str', 'char') or p.text in (')', ']')):
                continue	# unary
            if p.kind == 'id' and (p.text in KEYWORDS_C and p.text not in ('this', 'true', 'false')
                                   or p.text in TYPES_C):
                continue
            if lang == 'rust' and p.kind == 'id' and p.text in KEYWORDS_RS and p.text not in ('self', 'true', 'false'):
                continue
            if t.text in ('<', '>') and lang in ('cpp', 'rust'):
                # generics: Vec<u8>, foo::<T>, template args
                if toks[i - 1].text == '::' or (i + 1 < len(toks) and toks[i + 1].text in ('>', '(', '::')):
                    continue
            if t.text == '&' and lang == 'rust':
                continue
            n = len(OPS[t.text])
            new = OPS[t.text][(i + t.line) % n]
            sites.append(Site('op', ctx_of(toks, it, i, lang), it, [(t.start, t.end, new)], t.line,
                              '%s -> %s' % (t.text, new)))
    return sites


def cond_sites(toks, items, lang):
    sites = []
    for it in items:
        if it.kind != 'fn':
            continue
        for i in range(it.blo + 1, it.bhi - 1):
            t = toks[i]
            if t.text not in ('if', 'while') or t.kind != 'id' or t.pp:
                continue
            if lang == 'rust':
                if toks[i + 1].text == 'let':
                    continue
                j = i + 1
                while j < it.bhi and toks[j].text != '{':
                    if toks[j].text in ('(', '['):
                        j = match_close(toks, j)
                    j += 1
                if j >= it.bhi or j == i + 1:
                    continue
                a, b = toks[i + 1].start, toks[j - 1].end
                edits = [(a, a, '!('), (b, b, ')')]
            else:
                if toks[i + 1].text != '(':
                    continue
                j = match_close(toks, i + 1)
                a, b = toks[i + 1].end, toks[j].start
                edits = [(a, a, '!('), (b, b, ')')]
            sites.append(Site('cond', ctx_of(toks, it, i, lang), it, edits, t.line,
                              '%s (...) negated' % t.text))
    return sites


def nargs(toks, ob):
    cb = match_close(toks, ob)
    if cb == ob + 1:
        return 0, cb
    n, d = 1, 0
    for k in range(ob + 1, cb):
        x = toks[k].text
        if x in ('(', '[', '{'):
            d += 1
        elif x in (')', ']', '}'):
            d -= 1
        elif x == ',' and d == 0:
            n += 1
    return n, cb


def call_sites(toks, items, lang):
    calls = []
    for it in items:
        if it.kind != 'fn':
            continue
        for i in range(it.blo + 1, it.bhi - 1):
            t = toks[i]
            if t.kind != 'id' or t.pp or toks[i + 1].text != '(':
                continue
            if t.text in KEYWORDS_C or t.text in KEYWORDS_RS or t.text in TYPES_C:
                continue
            if lang == 'rust' and (toks[i - 1].text == '!' or t.text[0].isupper()):
                continue
            if lang != 'rust' and toks[i - 1].kind == 'id' and toks[i - 1].text not in ('return', 'else'):
                continue	# a declaration: int f(...)
            n, _ = nargs(toks, i + 1)
            method = toks[i - 1].text in ('.', '->')
            calls.append((it, i, t, n, method))
    by_sig = {}
    for it, i, t, n, method in calls:
        by_sig.setdefault((n, method), set()).add(t.text)
    sites = []
    for it, i, t, n, method in calls:
        others = sorted(by_sig[(n, method)] - {t.text})
        if not others:
            continue
        new = others[(t.line * 7 + i) % len(others)]
        sites.append(Site('call', ctx_of(toks, it, i, lang), it, [(t.start, t.end, new)], t.line,
                          '%s(...) -> %s(...)' % (t.text, new)))
    return sites


def stmt_sites(toks, items, lang, text):
    sites = []
    bad_first = {'return', 'break', 'continue', 'goto', 'case', 'default', 'else', 'if', 'for',
                 'while', 'do', 'switch', 'let', 'const', 'static', 'struct', 'enum', 'typedef',
                 'unsigned', 'signed', 'match', 'loop', 'use', 'fn', 'impl', 'unsafe', 'va_start',
                 'va_end', 'luai_apicheck', 'api_check', 'lua_assert', 'UNUSED', 'delete', 'throw'}
    for it in items:
        if it.kind != 'fn':
            continue
        i = it.blo + 1
        while i < it.bhi - 1:
            t = toks[i]
            prev = toks[i - 1].text
            if t.kind == 'id' and not t.pp and prev in (';', '{', '}') and t.text not in bad_first \
                    and t.text not in TYPES_C and toks[i + 1].kind == 'op' and \
                    toks[i + 1].text in ('(', '=', '+=', '-=', '++', '--', '.', '->', '[', '*=', '|=', '&='):
                j, d = i, 0
                while j < it.bhi:
                    x = toks[j].text
                    if x in ('(', '[', '{'):
                        d += 1
                    elif x in (')', ']', '}'):
                        d -= 1
                        if d < 0:
                            break
                    elif x == ';' and d == 0:
                        break
                    j += 1
                if j < it.bhi and toks[j].text == ';' and j - i < 40:
                    s = text[t.start:toks[j].end]
                    sites.append(Site('dupstmt', ctx_of(toks, it, i, lang), it,
                                      [(toks[j].end, toks[j].end, ' ' + s)], t.line,
                                      'repeat `%s`' % ' '.join(s.split())[:60]))
                    i = j
            i += 1
    return sites


def new_code_sites(toks, items, lang, text, n):
    """An integer literal in a function replaced by a new function, file-static
    or global of value n+1 (C and C++ only)."""
    if lang == 'rust':
        return []
    sites = []
    for it in items:
        if it.kind != 'fn' or 'template' in it.ctx or 'method' in it.ctx:
            continue
        for i in range(it.blo + 1, it.bhi - 1):
            t = toks[i]
            if t.kind != 'num' or t.pp or is_float(t.text) or toks[i - 1].text in ('case', '[') \
                    or toks[i + 1].text in (']', ':'):
                continue
            new = mutate_number(t.text, False, lang)
            if new is None or not re.match(r'^(0[xX][0-9A-F]+|[1-9]\d*|0)$', new) or int(new, 0) > 2**30:
                continue
            k = t.line
            pos = toks[it.lo].start
            # before the item, at the start of its line
            pos = text.rfind('\n', 0, pos) + 1
            for kind, decl, use in (
                    ('newfunc', 'static int oracle_f%d(void) { return %s; }\n' % (k, new), '(oracle_f%d())' % k),
                    ('newstatic', 'static int oracle_s%d = %s;\n' % (k, new), '(oracle_s%d)' % k),
                    ('newglobal', 'int oracle_g%d = %s;\n' % (k, new), '(oracle_g%d)' % k)):
                sites.append(Site(kind, ctx_of(toks, it, i, lang), it, [(t.start, t.end, use)], t.line,
                                  '%s -> %s (= %s)' % (t.text, use, new), extra=(pos, decl)))
    return sites


def reorder_sites(toks, items, lang, text):
    sites = []
    fns = [it for it in items if it.kind == 'fn']
    for a, b in zip(fns, fns[1:]):
        if a.hi > b.lo:
            continue
        between = text[toks[a.hi - 1].end:toks[b.lo].start]
        if between.strip():
            # only blank lines and comments between them
            if re.sub(r'/\*.*?\*/|//[^\n]*', '', between, flags=re.S).strip():
                continue
        sa = text[toks[a.lo].start:toks[a.hi - 1].end]
        sb = text[toks[b.lo].start:toks[b.hi - 1].end]
        s0, s1 = toks[a.lo].start, toks[b.hi - 1].end
        sites.append(Site('reorder', '+'.join(c for c in a.ctx if not c.startswith('class:')), a,
                          [(s0, s1, sb + between + sa)], toks[a.lo].line,
                          'swap %s and %s' % (a.name, b.name)))
    return sites


def rename_sites(toks, items, lang):
    sites = []
    for it in items:
        if it.kind != 'fn':
            continue
        seen = set()
        for i in range(it.blo + 1, it.bhi - 1):
            t = toks[i]
            name = None
            if lang == 'rust':
                if t.text == 'let':
                    k = i + 1 + (toks[i + 1].text == 'mut')
                    if toks[k].kind == 'id' and toks[k + 1].text in ('=', ':', ';'):
                        name = toks[k].text
            elif t.text in TYPES_C and toks[i - 1].text in (';', '{', '}', 'const', 'unsigned', 'signed', 'long'):
                k = i + 1
                while toks[k].text in ('*', 'long', 'int', 'const'):
                    k += 1
                if toks[k].kind == 'id' and toks[k].text not in KEYWORDS_C and toks[k + 1].text in ('=', ';', ',', '['):
                    name = toks[k].text
            if not name or name in seen:
                continue
            seen.add(name)
            edits = []
            for j in range(it.blo + 1, it.bhi - 1):
                x = toks[j]
                if x.kind == 'id' and x.text == name and toks[j - 1].text not in ('.', '->', '::') \
                        and not x.pp:
                    edits.append((x.start, x.end, name + '_r'))
            if edits:
                sites.append(Site('rename', ctx_of(toks, it, i, lang), it, edits, t.line,
                                  'rename local %s -> %s_r' % (name, name)))
    return sites


def lang_of(path):
    if path.endswith('.rs'):
        return 'rust'
    if path.endswith(('.cpp', '.cc', '.cxx', '.hpp', '.hh')):
        return 'cpp'
    return 'c'


def sites(path, text=None, lang=None, virtuals=()):
    if text is None:
        text = open(path, encoding='latin-1').read()
    lang = lang or lang_of(path)
    if lang == 'c' and path.endswith('.h') and re.search(r'\bclass\b|\bnamespace\b|\btemplate\s*<', text):
        lang = 'cpp'
    toks = tokenize(text, lang)
    items = parse_items(toks, lang, virtuals)
    out = []
    out += literal_sites(toks, items, lang, text)
    out += op_sites(toks, items, lang)
    out += cond_sites(toks, items, lang)
    out += call_sites(toks, items, lang)
    out += stmt_sites(toks, items, lang, text)
    out += new_code_sites(toks, items, lang, text, 0)
    out += reorder_sites(toks, items, lang, text)
    out += rename_sites(toks, items, lang)
    return out


def apply(text, site):
    edits = sorted(site.edits, reverse=True)
    if site.extra:
        edits = sorted(edits + [(site.extra[0], site.extra[0], site.extra[1])], reverse=True)
    for a, b, new in edits:
        text = text[:a] + new + text[b:]
    return text


if __name__ == '__main__':
    import sys
    import collections
    for p in sys.argv[1:]:
        ss = sites(p)
        c = collections.Counter(s.label() for s in ss)
        print(p, len(ss))
        for k, v in sorted(c.items()):
            print('   %-30s %d' % (k, v))
