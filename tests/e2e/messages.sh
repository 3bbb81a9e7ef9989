# tests/e2e/messages.sh: the "Messages" section of docs/guide.md lists every
# message rewire can print, and nothing that it cannot.
#
# Run directly, it prints the messages it finds in the code, one per line
# with where each comes from, to bring the guide up to date:
#
#   bash tests/e2e/messages.sh            # every message of the code
#   bash tests/e2e/messages.sh --check    # what the test checks, as it says it
#
# What counts as a message (in src/, comments left out; tests/, fuzz/ and
# bench/ are not rewire):
#   - the driver's rw_say(FMT) ("rewire: FMT"), rw_say_error(FMT)
#     ("rewire: error: FMT") and rw_fail(FMT) (a reason, shown inside those);
#   - the agent's agent_fail(e, FMT) and reply_error(fd, "..."): reasons the
#     driver shows;
#   - the API library's fail(lib, FMT): what rewire_lib_error() returns;
#   - any fprintf, dprintf, printf or snprintf whose format starts with
#     "rewire:" or "usage:";
#   - in the agent and the API library, which put messages together with
#     snprintf, every snprintf format that holds a space (a message or a
#     piece of one; paths have none), and every `return "..."` of a string
#     that holds a space (a reason a function gives).
# A format that is only one conversion ("%s") passes another message on: the
# string literals among its arguments are messages instead.
#
# Normal form, the same for the code and the guide: adjacent string literals
# joined, escapes decoded, the final newline dropped, every printf conversion
# (%s, %d, %zu, %#lx, %.*s, %p, %.0f...) replaced by "…" and a run of them by
# one "…", "%%" read as "%", spaces at both ends dropped. In the guide, a
# message is a list item of the Messages section that starts with a code
# span: - `rewire: error: …: compile failed; the program keeps running the previous code`
# (a message holding backticks is written in double backticks).

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	e2e_test() { :; }	# run directly: there is no registry
fi
e2e_test t_messages "every message in the user guide is in the code, and the other way round" once
t_messages() {
	local root=${RW_ROOT:-$(dirname "$RW_TESTS")} out
	command -v python3 >/dev/null || fail "python3 is not installed"
	[[ -f $root/docs/guide.md ]] || fail "no docs/guide.md in $root"
	if ! out=$(rw_messages "$root" --check 2>&1); then
		printf '%s\n' "$out" | sed 's/^/    | /'
		fail "$(printf '%s\n' "$out" | tail -n 1)"
	fi
	[[ $out == *" messages, all in docs/guide.md"* ]] || fail "the message check said nothing: $out"
	pass
}

# rw_messages ROOT [--check]: the messages of ROOT/src (with --check:
# compared with ROOT/docs/guide.md; the last line says the verdict).
rw_messages() {
	python3 - "$@" <<'PY'
import os, re, sys

root = sys.argv[1]
check = "--check" in sys.argv[2:]

# --- the code -----------------------------------------------------------

def tokens(text):
    """C tokens: ("s", decoded string literal), ("i", identifier), ("p", char).
    Comments, character literals and numbers are left out."""
    i, n = 0, len(text)
    out = []
    line = 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v\\":
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            i = j
        elif c == '"':
            i, s = string_literal(text, i + 1)
            out.append(("s", s, line))
        elif c == "'":
            i += 1
            while i < n and text[i] != "'":
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif c.isalpha() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            word = text[i:j]
            # a prefixed literal (u8"", L"") is a string all the same
            if j < n and text[j] == '"' and word in ("u8", "u", "U", "L"):
                i = j
                continue
            out.append(("i", word, line))
            i = j
        elif c.isdigit():
            j = i
            while j < n and (text[j].isalnum() or text[j] in "._"):
                j += 1
            i = j
        else:
            out.append(("p", c, line))
            i += 1
    # Adjacent literals are one string.
    joined = []
    for t in out:
        if t[0] == "s" and joined and joined[-1][0] == "s":
            joined[-1] = ("s", joined[-1][1] + t[1], joined[-1][2])
        else:
            joined.append(t)
    return joined

ESC = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'",
       "a": "\a", "b": "\b", "f": "\f", "v": "\v", "?": "?", "e": "\x1b"}

def string_literal(text, i):
    s = []
    while i < len(text) and text[i] != '"':
        c = text[i]
        if c == "\\":
            d = text[i + 1]
            if d == "x":
                m = re.match(r"[0-9a-fA-F]+", text[i + 2:])
                s.append(chr(int(m.group(0), 16)))
                i += 2 + len(m.group(0))
                continue
            if d in "01234567":
                m = re.match(r"[0-7]{1,3}", text[i + 1:])
                s.append(chr(int(m.group(0), 8)))
                i += 1 + len(m.group(0))
                continue
            s.append(ESC.get(d, d))
            i += 2
            continue
        s.append(c)
        i += 1
    return i + 1, "".join(s)

def calls(toks, names):
    """(name, [argument token lists], line) of every call to one of names."""
    for k, t in enumerate(toks):
        if t[0] != "i" or t[1] not in names or k + 1 >= len(toks) or toks[k + 1][1] != "(":
            continue
        if k > 0 and toks[k - 1][0] == "i" and toks[k - 1][1] not in ("return", "else"):
            continue	# a declaration or definition: int rw_fail(...)
        args, cur, depth = [], [], 0
        for u in toks[k + 2:]:
            if u[0] == "p" and u[1] in "([{":
                depth += 1
            elif u[0] == "p" and u[1] in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif u[0] == "p" and u[1] == "," and depth == 0:
                args.append(cur)
                cur = []
                continue
            cur.append(u)
        args.append(cur)
        yield t[1], args, t[2]

CONV = re.compile(r"%(?:%|[-+ #0']*(?:\*|\d+)?(?:\.(?:\*|\d*))?(?:hh|h|ll|l|j|z|t|L|q)?"
                  r"[diouxXeEfFgGaAcspnm])")

def normal(s):
    s = s.rstrip("\n")
    s = CONV.sub(lambda m: "%" if m.group(0) == "%%" else "\u2026", s)
    s = re.sub("\u2026+", "\u2026", s)
    return s.strip()

def literal(arg):
    """The string of an argument that is one (joined) literal, else None."""
    return arg[0][1] if len(arg) == 1 and arg[0][0] == "s" else None

def only_conversion(fmt):
    return CONV.fullmatch(fmt.rstrip("\n")) is not None

PRINTF = {"fprintf": 1, "dprintf": 1, "printf": 0, "snprintf": 2}

def messages_of(path, rel):
    """(message, where) of one source file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        toks = tokens(f.read())
    part = rel.split("/")[1] if rel.count("/") >= 2 else ""
    agent, api = part == "agent", part == "api"
    rules = dict(PRINTF)	# name -> index of the format
    prefix = {}
    if agent:
        rules.update(agent_fail=1, reply_error=1)
    elif api:
        rules.update(lib_fail=1)
    else:
        rules.update(rw_say=0, rw_say_error=0, rw_fail=0)
        prefix = {"rw_say": "rewire: ", "rw_say_error": "rewire: error: "}
    for name, args, line in calls(toks, set(rules)):
        where = "%s:%d" % (rel, line)
        i = rules[name]
        fmt = literal(args[i]) if i < len(args) else None
        if fmt is None:
            continue
        if name in PRINTF:
            if fmt.startswith(("rewire:", "usage:")):
                pass
            elif name == "snprintf" and (agent or api) and " " in fmt:
                pass
            else:
                continue
        if only_conversion(fmt.removeprefix("rewire: ").removeprefix("error: ")
                           .removeprefix("agent: ")):
            # It passes a message on: its literal arguments are messages.
            for a in args[i + 1:]:
                for t in a:
                    if t[0] == "s" and re.search("[A-Za-z]", t[1]):
                        yield normal(t[1]), where
            continue
        yield normal(prefix.get(name, "") + fmt), where
    if agent or api:
        for k in range(len(toks) - 2):
            t, u, v = toks[k], toks[k + 1], toks[k + 2]
            if t[:2] == ("i", "return") and u[0] == "s" and v[:2] == ("p", ";") and " " in u[1]:
                yield normal(u[1]), "%s:%d" % (rel, u[2])

def code_messages():
    found = {}
    src = os.path.join(root, "src")
    for d, _, files in sorted(os.walk(src)):
        for fn in sorted(files):
            if fn.endswith(".c"):
                path = os.path.join(d, fn)
                rel = os.path.relpath(path, root)
                for m, where in messages_of(path, rel):
                    found.setdefault(m, []).append(where)
    return found

# --- the guide ------------------------------------------------------------

ITEM = re.compile(r"^[-*] (`+)(.+?)(?<!`)\1(?!`)")

def guide_messages():
    path = os.path.join(root, "docs", "guide.md")
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    listed, inside, fence = {}, False, False
    for no, line in enumerate(lines, 1):
        if line.startswith("```"):
            fence = not fence
        if fence:
            continue
        if re.match(r"^## ", line):
            inside = line.strip() == "## Messages"
            continue
        m = ITEM.match(line) if inside else None
        if m:
            listed.setdefault(normal(m.group(2)), []).append(no)
    return listed

code = code_messages()
if not check:
    for m in sorted(code):
        print("%s\t%s" % (m, " ".join(code[m])))
    print("%d messages" % len(code), file=sys.stderr)
    sys.exit(0)

guide = guide_messages()
missing = sorted(m for m in code if m not in guide)
extra = sorted(m for m in guide if m not in code)
twice = sorted(m for m in guide if len(guide[m]) > 1)
for m in missing:
    print("not in the guide: %s  (%s)" % (m, " ".join(code[m])))
for m in extra:
    print("not in the code: %s  (docs/guide.md:%s)" % (m, ",".join(map(str, guide[m]))))
for m in twice:
    print("listed twice: %s  (docs/guide.md:%s)" % (m, ",".join(map(str, guide[m]))))
if not guide:
    print("docs/guide.md has no \"## Messages\" section with messages")
    sys.exit(1)
if missing or extra or twice:
    parts = []
    if missing:
        parts.append("%d of the code not in docs/guide.md: %s" % (len(missing), " | ".join(missing)))
    if extra:
        parts.append("%d of docs/guide.md not in the code: %s" % (len(extra), " | ".join(extra)))
    if twice:
        parts.append("%d listed twice in docs/guide.md: %s" % (len(twice), " | ".join(twice)))
    print("the guide and the code differ: " + "; ".join(parts))
    sys.exit(1)
print("%d messages, all in docs/guide.md, and nothing else" % len(code))
PY
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	rw_messages "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)" "$@"
fi
