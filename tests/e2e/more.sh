# tests/e2e/more.sh: unwinding through new code, constructors of new units,
# thread-locals of libraries, and the installed rewire. Helpers: lib.sh.

e2e_test t_throw "C++ exception through patched code"
t_throw() {
	build_victim throw
	variant throw v2 THROW 'throw std::runtime_error("v2");' BODY 'return n * 5;'
	start_victim throw
	wait_lines "$LOG" 6 5 1 || fail "the victim printed fewer than 6 lines in 5 s"
	check_all 1 '(v["caught"] == "v1" || v["value"] == v["tick"] * 2) && v["label"] == "kept"' \
		"before the patch"
	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	wait_lines "$LOG" $((from + 8)) 5 1 || fail "fewer than 8 lines after the patch"
	check_after "$from" '(v["caught"] == "v2" || v["value"] == v["tick"] * 5) && v["label"] == "kept"' \
		"after the patch"
	after "$LOG" "$from" | grep -q 'caught=v2' || fail "no exception of the new code was caught"
	check_steps 1 tick 1
	assert_alive "after the patch"
	pass
}

e2e_test t_ctor "constructor of a new unit runs once"
t_ctor() {
	build_victim ctor
	variant ctor v2 DECLS 'int extra_value(void);' \
		PRINT 'printf("tick=%d extra=%d\n", n, extra_value());'
	cat >"$W/v2/extra.c" <<'SRC'
static int ready, calls;

__attribute__((constructor)) static void setup(void)
{
	ready += 42;	/* twice would make 84 */
}

int extra_value(void)
{
	return ready * 1000 + ++calls;
}
SRC
	compile_in "$W/v2" extra
	start_victim ctor
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ" "$W/v2/extra.o"
	# 42 from one run of the constructor; calls count 1, 2, 3...
	check_after "$from" 'v["extra"] > 42000 && v["extra"] < 43000' "after the patch"
	check_steps "$((FIRST_NEW - 1))" extra 1
	assert_alive "after the patch"
	pass
}

e2e_test t_libtls "thread-local of a shared library"
t_libtls() {
	mkdir -p "$W/lib"
	cat >"$W/lib/tlsvar.c" <<'SRC'
__thread int libcount = 1000;

int lib_bump(void)
{
	return ++libcount;
}
SRC
	(cd "$W/lib" && "$CC" -g -fPIC -shared "$RW_OPT" tlsvar.c -o libtlsvar.so) >"$W/lib/cc.log" 2>&1 ||
		fail "cannot build libtlsvar.so"
	VICTIM_LIBS="-L$W/lib -ltlsvar -Wl,-rpath,$W/lib" build_victim libtls
	variant libtls v2 PRINT 'lib_bump(); printf("tick=%d lib=%d v=2\n", n, libcount);'
	${LIBTLS_CHECK:+"$LIBTLS_CHECK" "$OBJ"}	# what a caller asks of the patch object
	start_victim libtls
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["v"] == 2' "after the patch"
	# The library's counter goes on by 1 a line: the patch read the live one.
	check_steps 1 lib 1
	assert_alive "after the patch"
	pass
}

e2e_test t_install "make install PREFIX=DIR gives a working rewire" once
t_install() {
	local prefix=$W/prefix root=$RW_TESTS/..
	make -s -C "$root" install PREFIX="$prefix" >"$W/install.log" 2>&1 ||
		{ APPLY_OUT=$W/install.log APPLY_RC=-; fail "make install failed"; }
	[[ -x $prefix/bin/rewire && -f $prefix/lib/rewire/librewire.so ]] ||
		fail "make install did not install bin/rewire and lib/rewire/librewire.so"
	# The aarch64 agent beside it, when make built one (a cross compiler).
	[[ ! -f $root/build/aarch64/librewire.so || -f $prefix/lib/rewire/aarch64/librewire.so ]] ||
		fail "make install did not install lib/rewire/aarch64/librewire.so"
	# Moved elsewhere after installing: it finds its agent relative to itself.
	mv "$prefix" "$W/moved"
	REWIRE=$W/moved/bin/rewire
	build_victim body
	variant body v2 BODY 'return tick * 3;'
	start_victim body
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	local from
	from=$(lines "$LOG")
	apply_ok "$OBJ"
	check_after "$from" 'v["value"] == v["tick"] * 3' "after the patch"
	pass
}

e2e_test t_cxx "C++ methods, virtuals, templates, lambdas, new class"
t_cxx() {
	build_victim shapes
	start_victim shapes
	wait_lines "$LOG" 4 5 1 || fail "the victim printed fewer than 4 lines in 5 s"
	check_all 1 'v["area"] == 9 && v["twice"] == 2 * v["tick"] && v["lam"] == v["tick"] + 1 && v["inl"] == 100' \
		"before the patches"
	local from
	# A virtual function, reached through the vtable by unchanged code.
	variant shapes v1 AREA 'int area() const override { return s * s + 1; }'
	from=$(lines "$LOG"); apply_ok "$OBJ"
	check_after "$from" 'v["area"] == 10' "after patching Square::area"
	# A template instance, a lambda and an inline function.
	variant shapes v2 AREA 'int area() const override { return s * s + 1; }' \
		TWICE 'template <typename T> T twice(T x) { return x * 3; }' \
		LAMBDA 'auto lam = [n](int k) { return n + k * 10; };' \
		INLINE 'inline int offset() { return 200; }'
	from=$(lines "$LOG"); apply_ok "$OBJ"
	check_after "$from" 'v["twice"] == 3 * v["tick"] && v["lam"] == v["tick"] + 10 && v["inl"] == 200' \
		"after patching the template, the lambda and the inline function"
	# A member function: the object's state goes on.
	variant shapes v3 AREA 'int area() const override { return s * s + 1; }' \
		TWICE 'template <typename T> T twice(T x) { return x * 3; }' \
		LAMBDA 'auto lam = [n](int k) { return n + k * 10; };' \
		INLINE 'inline int offset() { return 200; }' \
		BUMP 'int bump() { return n += 1000; }'
	from=$(lines "$LOG"); apply_ok "$OBJ"
	# bump was the tick number (one more a tick): the new code's first tick
	# puts it 999 ahead, however long the program ran before.
	check_after "$from" 'v["bump"] - v["tick"] >= 999' "after patching Counter::bump"
	check_steps "$((FIRST_NEW - 1))" bump 1000
	# A new class with virtual functions, used by patched code.
	variant shapes v4 AREA 'int area() const override { return s * s + 1; }' \
		TWICE 'template <typename T> T twice(T x) { return x * 3; }' \
		LAMBDA 'auto lam = [n](int k) { return n + k * 10; };' \
		INLINE 'inline int offset() { return 200; }' \
		BUMP 'int bump() { return n += 1000; }' \
		CLASS 'struct Circle : Shape { int r; explicit Circle(int r) : r(r) {} int area() const override { return 3 * r * r; } };' \
		EXTRA '__attribute__((noinline)) static int extra() { Shape *c = new Circle(2); int a = c->area(); delete c; return a; }'
	from=$(lines "$LOG"); apply_ok "$OBJ"
	check_after "$from" 'v["extra"] == 12' "after adding class Circle"
	check_steps 1 tick 1
	assert_alive "after the patches"
	pass
}
