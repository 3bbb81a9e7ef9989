-- The oracle's driver for Lua 5.4 (lua reads it from stdin): it prints only
-- what depends on this script (no addresses, times, random seeds or
-- iteration order of pairs), so a fresh build prints the same.
local function show(...) print(select('#', ...), ...) end
local function try(f, ...)
  local r = table.pack(pcall(f, ...))
  if not r[1] then print('error:', (tostring(r[2]):gsub('0x%x+', 'ADDR'))) return end
  print(table.unpack(r, 2, r.n))
end
local function sorted_keys(t) local k = {} for x in pairs(t) do k[#k + 1] = tostring(x) end table.sort(k) return table.concat(k, ',') end

-- arithmetic, integers and floats
show(1 + 2 * 3, 7 // 2, 7 % 3, -7 // 2, -7 % 3, 7 / 2, 2 ^ 10, 10 // 0.0, -10 % math.huge)
show(3 & 5, 3 | 5, 3 ~ 5, ~0, 1 << 62, 1 << 64, -1 >> 1, 5 // 0.0, 0/0 ~= 0/0)
show(math.maxinteger + 1 == math.mininteger, math.maxinteger // -1, math.mininteger // -1)
show(1e15, 1e16, 123456789012, 2^53, 2^63, -2^63 == math.mininteger, 0.1 + 0.2, 100 / 3)
show(math.floor(3.7), math.ceil(3.2), math.abs(-4), math.max(3, 9, 2), math.min(3.5, 1.5), math.fmod(7, 3), math.fmod(-7, 3))
show(math.sqrt(2), math.sin(1), math.cos(1), math.tan(1), math.exp(1), math.log(10), math.log(8, 2), math.log(100, 10))
show(math.tointeger(3.0), math.tointeger(3.5), math.type(1), math.type(1.0), math.type('1'), math.ult(1, -1), math.pi, math.huge, -math.huge)
show(3 == 3.0, 1 < 1.5, 'a' < 'b', 'abc' < 'abd', 2^-1074 > 0, 1/3 * 3 == 1, 7 // 0.5)
show(tostring(1e100), tostring(-0.0), tostring(1/0), 255 // 1, 3.0 // 2, 3 % -2, 5.5 % 2)
math.randomseed(42)
show(math.random(1, 100), math.random(1, 100), math.random(1000))
-- strings
local s = 'Hello, Lua World'
show(#s, s:upper(), s:lower(), s:len(), s:sub(3, 8), s:sub(-5), s:rep(3, '-'), s:reverse())
show(s:byte(1, 5), string.char(72, 105), s:find('Lua'), s:find('o', 6), s:find('l+'), s:match('(%a+), (%a+)'))
show(s:gsub('o', '0'), s:gsub('%w+', string.upper, 2), ('x'):rep(0), ('abc'):byte(-1))
for w in s:gmatch('%a+') do io.write(w, ';') end print()
show(string.format('%d %5d %-5d| %05d %x %X %o %c', 42, 42, 42, 42, 255, 255, 8, 65))
show(string.format('%f %.3f %10.2f %e %.2e %g %g %g %a', 3.14159, 3.14159, 2.5, 12345.678, 0.00012, 0.0001, 1e20, 100, 1.0))
show(string.format('%s %q %q %q %%', 'str', 'a\nb"c\0', 1/3, math.mininteger))
show(string.format('%10s|%-10s|%.2s', 'right', 'left', 'truncate'))
show(('key=value, k2=v2'):gsub('(%w+)=(%w+)', '%2=%1'), ('  trim  '):match('^%s*(.-)%s*$'), ('a,b,,c'):find(',,', 1, true))
show(('%d'):format(3), tostring(12):len(), ('abc'):upper():lower(), ('[%]'):gsub('%%', '#'), ('f(a,b)'):match('%((.-)%)'))
show(('hello world from lua'):gsub('(%w+) (%w+)', '%2 %1'), ('abc'):gsub('', '-'), ('aaa'):gsub('a*', 'x'), ('%bxy'):len())
show(string.pack('<i4', 100):byte(1, -1), string.unpack('<i4', string.pack('<i4', -2)), string.packsize('i4i8'), #string.pack('z', 'abc'))
show(utf8.char(72, 228, 8364, 128512), utf8.len('häll€'), utf8.codepoint('€', 1), utf8.offset('häll€', 3))
for p, c in utf8.codes('aé€') do io.write(p, ':', c, ' ') end print()
show(tostring(nil), tostring(true), tonumber('0x10'), tonumber('10', 2), tonumber('  12  '), tonumber('1e2'), tonumber('z', 36), tonumber('8', 8), tonumber(''), tonumber('0x1p4'))
show('10' + 5, '3' * '4', 10 .. 20, 2^0.5 .. '', #'\u{48}\65\x42\z
      end')
-- tables
local t = {}
for i = 1, 20 do t[i] = (i * 7) % 11 end
table.sort(t) show(table.concat(t, ' '))
table.sort(t, function(a, b) return a > b end) show(table.concat(t, ' '))
table.insert(t, 1, 100) table.insert(t, 200) show(table.remove(t), table.remove(t, 1), #t, table.concat(t, ',', 3, 6))
show(table.unpack({1, 2, 3})) show(select(2, 'a', 'b', 'c'), select(-1, 'a', 'b', 'c'))
local m = table.move({1, 2, 3, 4, 5}, 2, 4, 1) show(table.concat(m, ','))
local words = {} for w in ('the quick brown fox jumps over the lazy dog'):gmatch('%a+') do words[#words + 1] = w end
table.sort(words) show(table.concat(words, ' '), #words, sorted_keys({x = 1, y = 2, [3] = 4, z = false}))
local big = {} for i = 1, 1000 do big[i] = i * i end local sum = 0 for i, v in ipairs(big) do sum = sum + v end show(sum, #big, next({}))
local h = {} for i = 1, 100 do h['k' .. i] = i end local hs = 0 for k, v in pairs(h) do hs = hs + v end show(hs)
h.k50 = nil collectgarbage() show(h.k50, h.k51, rawlen({1, 2}), rawequal(h, h), rawget(h, 'k1'))
-- metatables, closures, coroutines, goto, varargs
local V = {} V.__index = V
V.__add = function(a, b) return setmetatable({x = a.x + b.x, y = a.y + b.y}, V) end
V.__eq = function(a, b) return a.x == b.x and a.y == b.y end
V.__lt = function(a, b) return a.x < b.x end
V.__le = function(a, b) return a.x <= b.x end
V.__tostring = function(v) return '(' .. v.x .. ',' .. v.y .. ')' end
V.__len = function(v) return v.x * v.x + v.y * v.y end
V.__call = function(v, k) return v.x * k end
V.__concat = function(a, b) return tostring(a) .. '..' .. tostring(b) end
V.__unm = function(a) return setmetatable({x = -a.x, y = -a.y}, V) end
V.__index = function(t, k) return k .. '?' end
local function vec(x, y) return setmetatable({x = x, y = y}, V) end
local a, b = vec(1, 2), vec(3, 4)
show(tostring(a + b), a == vec(1, 2), a < b, a <= b, #b, b(10), a .. b, tostring(-a), a.zzz)
local counter = (function() local n = 0 return function(k) n = n + (k or 1) return n end end)()
counter() counter(5) show(counter(), counter(-3))
local co = coroutine.create(function(x, y) local z = coroutine.yield(x + y) local w = coroutine.yield(z * 2) return w, 'done' end)
show(coroutine.resume(co, 1, 2)) show(coroutine.resume(co, 10)) show(coroutine.resume(co, 'w')) show(coroutine.resume(co)) show(coroutine.status(co))
local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i * i) end end) show(gen(), gen(), gen())
show(coroutine.isyieldable(), coroutine.running() ~= nil)
do local i = 1 ::top:: if i < 4 then io.write(i, ' ') i = i + 1 goto top end print() end
local function va(...) local n = select('#', ...) return n, ... end show(va(1, nil, 3, nil))
for i = 10, 1, -3 do io.write(i, ' ') end for i = 1.0, 2.0, 0.25 do io.write(i, ' ') end print()
local wk = setmetatable({}, {__mode = 'k'}) show(getmetatable(wk).__mode, getmetatable('x').__index == string)
local cl <close> = setmetatable({}, {__close = function() print('closed') end})
-- errors (messages are printed, as are those of the parser)
try(function() return 1 + {} end)
try(function() return nil .. 'x' end)
try(function() local x = nil return x.field end)
try(function() error('plain') end)
try(function() error({code = 7}) end)
try(function() error('lvl2', 2) end)
try(function() return #5 end)
try(function() return 1 < 'x' end)
try(function() return math.floor('x') end)
try(function() return ('x'):rep(-1, 5) .. string.rep('ab', 3, ',') end)
try(function() return string.format('%d', 1.5) end)
try(function() return setmetatable({}, {__index = function(t, k) error('no ' .. k) end}).foo end)
try(function() return 1 // 0 end)
try(function() return 2^63 | 0 end)
try(function() return tostring(1 % 0) end)
try(function() return select(0) end)
try(function() local t = setmetatable({}, {__newindex = function() error('ro') end}) t.x = 1 end)
try(function() return table.concat({1, {}, 3}) end)
try(function() return ('x'):bad() end)
try(function() return coroutine.resume(coroutine.running()) end)
try(load, 'return 1 +')
for _, src in ipairs({'x = = 1', 'local 1 = 2', 'return "unfinished', 'for i = 1 do end', 'goto nowhere',
    'break', 'local x <const> = 1; x = 2', 'return 0x', 'f(', 'return 1 .. 2 ..', 'if x then', '::a:: ::a::',
    'local t = {1, 2', 'return [[long', 'x = 3 @ 4', 'return ...', 'local function f() return end end'}) do
  local f, err = load(src, '=src') print(src, f and 'ok' or err)
end
show(load('return 1 + 2 * 3')(), load('local a, b = ... return a * b')(6, 7), load('return 2^0.5 // 0.1')())
show(string.dump and #string.dump(function() end) > 0, type(load(string.dump(function(x) return x * 3 end))))
show(load(string.dump(function(x) return x * 3 + 0.5 end))(4))
local env = {print = print} local f = load('y = 5 return y', 'chunk', 't', env) show(f(), env.y, rawget(_G, 'y'))
show(pcall(error), select('#', pcall(error, nil)), xpcall(function() error('in x') end, function(m) return 'handled: ' .. m end))
print(string.format('%5.1f|%-8s|%3d', 1.25, 'ok', 7), os.date('!%Y-%m-%d %H:%M:%S', 86400 * 365), os.time({year = 2000, month = 1, day = 1, hour = 12}) ~= nil)
print(type(os.getenv), type(io.stdout), io.type(io.stdout), math.floor(-0.0), 1e308 * 10, -1e308 * 10)
