//! Crashes in plugin code, for [`Lib::call`](crate::Lib::call): the
//! executable ranges of every loaded version, which the fault handler reads
//! without a lock to tell plugin code from the program's; the guarded call;
//! and the fault handler. The Rust side of src/guard/guard.c and the fault
//! ranges of src/api/crash.c, std only (it links neither).
//!
//! How a crash ends the call (x86-64 Linux, glibc):
//! - `guard_call` (assembly below) saves the callee-saved registers, the
//!   stack pointer and its return address in the [`Guard`], then calls the
//!   job. The handler (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT; on an
//!   alternate stack) finds the faulting pc, or a return address between the
//!   fault's stack pointer and the guard's frame, in a loaded version's code;
//!   then it edits the interrupted context (glibc's `ucontext_t`: `gregs` at
//!   byte 40, `REG_RDI` 8, `REG_RSP` 15, `REG_RIP` 16) so that returning from
//!   the handler resumes at `guard_land` with the guard in rdi: it restores
//!   the registers and returns 1 from `guard_call`, with the signal mask from
//!   before the fault (the kernel restores it from the context). glibc's
//!   abort() releases its lock before raising SIGABRT, so leaving it there is
//!   what the C library does too. Without shadow stacks (Rust programs are
//!   not built for them), nothing else tracks the frames given up.
//! - Any other fault goes to the handler the program had, or to the default
//!   action, as if this one were not there.
//! - Panics: a panic leaving a plugin's `extern "C"` function aborts inside
//!   the plugin, which is a SIGABRT in its code. One unwinding out of an
//!   `extern "C-unwind"` function is another std's (or C++'s) exception: the
//!   program's std cannot catch it and would abort in its own code. So
//!   `guard_call`'s frame has a personality routine that stops the search
//!   for a handler there unless the program's own std is panicking: the
//!   plugin's std (or C++ runtime) then aborts, in the plugin, with its
//!   frames still on the stack. The program's own panics unwind through as
//!   through any frame.
use std::cell::{Cell, UnsafeCell};
use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

pub(crate) const SIGSEGV: c_int = 11;
pub(crate) const SIGBUS: c_int = 7;
const SIGILL: c_int = 4;
const SIGFPE: c_int = 8;
pub(crate) const SIGABRT: c_int = 6;
const SIGS: [c_int; 5] = [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT];
const SA_SIGINFO: c_int = 4;
const SA_ONSTACK: c_int = 0x0800_0000;
const SA_NODEFER: c_int = 0x4000_0000;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
const SS_DISABLE: c_int = 2;
const GREGS: usize = 40;
const REG_RDI: usize = 8;
const REG_RSP: usize = 15;
const REG_RIP: usize = 16;
const ALT_STACK: usize = 64 << 10;
const MAX_RANGES: usize = 4096;
/// Return addresses into plugin code kept per crash: which function, and
/// whether a panic made it abort.
pub(crate) const TRAIL: usize = 32;

#[repr(C)]
struct SigAction {
    handler: usize,
    mask: [u64; 16],
    flags: c_int,
    restorer: usize,
}

#[repr(C)]
struct StackT {
    sp: *mut c_void,
    flags: c_int,
    size: usize,
}

#[repr(C)]
struct SigInfo {
    signo: c_int,
    errno: c_int,
    code: c_int,
    pad: c_int,
    addr: usize,
}

extern "C" {
    fn sigaction(sig: c_int, act: *const SigAction, old: *mut SigAction) -> c_int;
    fn sigaltstack(ss: *const StackT, old: *mut StackT) -> c_int;
    fn raise(sig: c_int) -> c_int;
    fn mmap(
        a: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn munmap(a: *mut c_void, len: usize) -> c_int;
}

// ------------------------------------------------------------ fault ranges
// Each entry has a sequence number, odd while it is being written, and says
// whether its version is current. Writers hold WRITERS; the handler reads.

struct Range {
    seq: AtomicU32,
    lo: AtomicUsize,
    hi: AtomicUsize,
    cur: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // only to fill RANGES
const FREE: Range = Range {
    seq: AtomicU32::new(0),
    lo: AtomicUsize::new(0),
    hi: AtomicUsize::new(0),
    cur: AtomicBool::new(false),
};
static RANGES: [Range; MAX_RANGES] = [FREE; MAX_RANGES];
static NRANGES: AtomicUsize = AtomicUsize::new(0);
static WRITERS: Mutex<()> = Mutex::new(());

/// Code at [lo, hi) is a version's: its slot, or None when the table is
/// full (that version's crashes are then not caught).
pub(crate) fn range_add(lo: usize, hi: usize) -> Option<usize> {
    let _w = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let n = NRANGES.load(Ordering::Acquire);
    let i = (0..n)
        .find(|&i| RANGES[i].hi.load(Ordering::Relaxed) == 0)
        .unwrap_or(n);
    let r = RANGES.get(i)?;
    r.seq.fetch_add(1, Ordering::SeqCst);
    r.lo.store(lo, Ordering::Relaxed);
    r.hi.store(hi, Ordering::Relaxed);
    r.cur.store(false, Ordering::Relaxed);
    r.seq.fetch_add(1, Ordering::SeqCst);
    if i == n {
        NRANGES.store(n + 1, Ordering::Release);
    }
    Some(i)
}

pub(crate) fn range_del(i: usize) {
    let _w = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
    let r = &RANGES[i];
    r.seq.fetch_add(1, Ordering::SeqCst);
    r.lo.store(0, Ordering::Relaxed);
    r.hi.store(0, Ordering::Relaxed);
    r.cur.store(false, Ordering::Relaxed);
    r.seq.fetch_add(1, Ordering::SeqCst);
}

pub(crate) fn range_current(i: usize, cur: bool) {
    RANGES[i].cur.store(cur, Ordering::Relaxed);
}

/// 0: not plugin code; 1: a version's; 2: a current version's.
/// Async-signal-safe.
fn lib_code(pc: usize) -> u8 {
    for r in &RANGES[..NRANGES.load(Ordering::Acquire).min(MAX_RANGES)] {
        let s = r.seq.load(Ordering::SeqCst);
        let (lo, hi) = (r.lo.load(Ordering::Relaxed), r.hi.load(Ordering::Relaxed));
        let cur = r.cur.load(Ordering::Relaxed);
        if s & 1 == 0 && s == r.seq.load(Ordering::SeqCst) && pc >= lo && pc < hi {
            return 1 + cur as u8;
        }
    }
    0
}

// ------------------------------------------------------------- the guard

/// One guarded call. `regs` is laid out for the assembly: rbx, rbp, r12,
/// r13, r14, r15, the stack pointer after `guard_call` returns, and its
/// return address.
#[repr(C)]
struct Guard {
    regs: [usize; 8],
    prev: *mut Guard,
    busy: bool,
    caught: Caught,
}

/// How a guarded call ended by a crash.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Caught {
    pub sig: c_int,
    /// The bad address of SIGSEGV and SIGBUS.
    pub addr: usize,
    /// The plugin code found responsible: the faulting pc, or the return
    /// address (minus one) of the call that failed.
    pub culprit: usize,
    /// Addresses in plugin code from the fault outwards (innermost first).
    pub trail: [usize; TRAIL],
    pub ntrail: usize,
}

thread_local! {
    static TOP: Cell<*mut Guard> = const { Cell::new(std::ptr::null_mut()) };
}

std::arch::global_asm!(
    ".pushsection .text.rewire_lib_guard,\"ax\",@progbits",
    ".p2align 4",
    ".globl rewire_lib_guard_call_v1",
    ".hidden rewire_lib_guard_call_v1",
    ".type rewire_lib_guard_call_v1,@function",
    "rewire_lib_guard_call_v1:",
    ".cfi_startproc",
    ".cfi_personality 0x1b, {pers}",
    "endbr64",
    "mov qword ptr [rdi], rbx",
    "mov qword ptr [rdi + 8], rbp",
    "mov qword ptr [rdi + 16], r12",
    "mov qword ptr [rdi + 24], r13",
    "mov qword ptr [rdi + 32], r14",
    "mov qword ptr [rdi + 40], r15",
    "lea rax, [rsp + 8]",
    "mov qword ptr [rdi + 48], rax",
    "mov rax, qword ptr [rsp]",
    "mov qword ptr [rdi + 56], rax",
    "sub rsp, 8",
    ".cfi_adjust_cfa_offset 8",
    "mov rax, rsi",
    "mov rdi, rdx",
    "call rax",
    "add rsp, 8",
    ".cfi_adjust_cfa_offset -8",
    "xor eax, eax",
    "ret",
    ".cfi_endproc",
    ".size rewire_lib_guard_call_v1, . - rewire_lib_guard_call_v1",
    "",
    ".p2align 4",
    ".globl rewire_lib_guard_land_v1",
    ".hidden rewire_lib_guard_land_v1",
    ".type rewire_lib_guard_land_v1,@function",
    "rewire_lib_guard_land_v1:",
    "endbr64",
    "mov rbx, qword ptr [rdi]",
    "mov rbp, qword ptr [rdi + 8]",
    "mov r12, qword ptr [rdi + 16]",
    "mov r13, qword ptr [rdi + 24]",
    "mov r14, qword ptr [rdi + 32]",
    "mov r15, qword ptr [rdi + 40]",
    "mov rsp, qword ptr [rdi + 48]",
    "cld",
    "mov eax, 1",
    "jmp qword ptr [rdi + 56]",
    ".size rewire_lib_guard_land_v1, . - rewire_lib_guard_land_v1",
    ".popsection",
    pers = sym guard_personality,
);

type Job = unsafe extern "C-unwind" fn(*mut c_void);

extern "C-unwind" {
    /// job(arg): 0 when it returned, 1 when the handler ended it.
    fn rewire_lib_guard_call_v1(g: *mut Guard, job: Job, arg: *mut c_void) -> c_int;
}

extern "C" {
    fn rewire_lib_guard_land_v1();
}

const UA_SEARCH_PHASE: c_int = 1;
const URC_FATAL_PHASE1_ERROR: c_int = 3;
const URC_CONTINUE_UNWIND: c_int = 8;

/// The personality of `guard_call`'s frame: the program's own panics
/// unwind through it; another runtime's exception (a plugin's panic out of
/// an `extern "C-unwind"` function, a C++ exception) finds no handler here,
/// so its runtime aborts in the plugin's code, where the guard catches it.
extern "C" fn guard_personality(
    _version: c_int,
    actions: c_int,
    _class: u64,
    _exc: *mut c_void,
    _ctx: *mut c_void,
) -> c_int {
    if actions & UA_SEARCH_PHASE != 0 && !std::thread::panicking() {
        URC_FATAL_PHASE1_ERROR
    } else {
        URC_CONTINUE_UNWIND
    }
}

// --------------------------------------------------------- the handler

struct Prev(UnsafeCell<[SigAction; 5]>);
// SAFETY: written under INSTALL before the handler that reads it goes in.
unsafe impl Sync for Prev {}

#[allow(clippy::declare_interior_mutable_const)]
const NO_ACTION: SigAction = SigAction {
    handler: SIG_DFL,
    mask: [0; 16],
    flags: 0,
    restorer: 0,
};
static PREV: Prev = Prev(UnsafeCell::new([NO_ACTION; 5]));
static INSTALL: Mutex<bool> = Mutex::new(false);
static READY: AtomicBool = AtomicBool::new(false);

/// The return addresses into plugin code in [sp, top): the first into a
/// current version is the culprit (frames that returned leave theirs below
/// the live ones, maybe of an older version), else the innermost.
fn scan(sp: usize, top: usize, c: &mut Caught) -> usize {
    let (mut first, mut cur) = (0, 0);
    let mut p = (sp + 7) & !7;
    while p + 8 <= top {
        // SAFETY: [sp, top) is the live stack between the fault and the guard.
        let v = unsafe { *(p as *const usize) };
        let code = lib_code(v.wrapping_sub(1)); // inside the call: a noreturn one may end its function
        if code != 0 {
            if c.ntrail < TRAIL {
                c.trail[c.ntrail] = v - 1;
                c.ntrail += 1;
            }
            if first == 0 {
                first = v - 1;
            }
            if code == 2 && cur == 0 {
                cur = v - 1;
            }
        }
        p += 8;
    }
    if cur != 0 {
        cur
    } else {
        first
    }
}

/// Whether the fault at pc (stack at sp) is plugin code's in g's call; if
/// so it is recorded in g. Async-signal-safe.
fn catch(g: &mut Guard, sig: c_int, pc: usize, sp: usize, addr: usize) -> bool {
    let top = g.regs[6].wrapping_sub(8); // guard_call's return address
    if g.busy || g.regs[6] == 0 {
        return false; // a fault in this handler, or before the call began
    }
    g.busy = true;
    let mut c = Caught {
        sig,
        addr,
        culprit: 0,
        trail: [0; TRAIL],
        ntrail: 0,
    };
    if lib_code(pc) != 0 {
        c.culprit = pc;
        c.trail[0] = pc;
        c.ntrail = 1;
    }
    // A stack overflow faults next to sp: scan only a stack that is there.
    let overflow = sig == SIGSEGV && addr.wrapping_add(4096) >= sp && addr <= sp.wrapping_add(4096);
    if !overflow && sp < top && top - sp < (256 << 20) {
        let found = scan(sp, top, &mut c);
        if c.culprit == 0 {
            c.culprit = found;
        }
    }
    g.busy = false;
    if c.culprit == 0 {
        return false;
    }
    g.caught = c;
    true
}

/// Not plugin code, or no guard: as if this handler were not there.
fn chain(sig: c_int, si: *mut SigInfo, uc: *mut c_void) {
    let Some(i) = SIGS.iter().position(|&s| s == sig) else {
        return;
    };
    // SAFETY: written before this handler was installed, then only read.
    let old = unsafe { &(*PREV.0.get())[i] };
    if old.handler != SIG_DFL && old.handler != SIG_IGN {
        if old.flags & SA_SIGINFO != 0 {
            // SAFETY: the program's own handler, as it asked to be called.
            let f: extern "C" fn(c_int, *mut SigInfo, *mut c_void) =
                unsafe { std::mem::transmute(old.handler) };
            f(sig, si, uc);
        } else {
            // SAFETY: as above.
            let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(old.handler) };
            f(sig);
        }
        return;
    }
    // The default: uninstall, and let the fault happen again (or raise a
    // signal that was sent, not caused).
    // SAFETY: a valid action; the siginfo is the kernel's.
    unsafe {
        sigaction(sig, &NO_ACTION, std::ptr::null_mut());
        if si.is_null() || (*si).code <= 0 || sig == SIGABRT {
            raise(sig);
        }
    }
}

extern "C" fn on_fault(sig: c_int, si: *mut SigInfo, uc: *mut c_void) {
    let gregs = (uc as usize + GREGS) as *mut usize;
    // SAFETY: uc is the kernel's ucontext_t for this signal.
    let (pc, sp) = unsafe { (*gregs.add(REG_RIP), *gregs.add(REG_RSP)) };
    // SAFETY: as above; si is the kernel's siginfo_t.
    let addr = if si.is_null() {
        0
    } else {
        unsafe { (*si).addr }
    };
    let g = TOP.try_with(|t| t.get()).unwrap_or(std::ptr::null_mut());
    // SAFETY: g is the innermost live guard of this thread (run's frame).
    if !g.is_null() && catch(unsafe { &mut *g }, sig, pc, sp, addr) {
        // SAFETY: as above: resume at the landing, which returns 1 from
        // guard_call with the registers it saved.
        unsafe {
            *gregs.add(REG_RIP) = rewire_lib_guard_land_v1 as *const () as usize;
            *gregs.add(REG_RDI) = g as usize;
            *gregs.add(REG_RSP) = (*g).regs[6];
        }
        return;
    }
    chain(sig, si, uc);
}

fn sig_name(sig: c_int) -> &'static str {
    match sig {
        SIGSEGV => "SIGSEGV",
        SIGBUS => "SIGBUS",
        SIGILL => "SIGILL",
        SIGFPE => "SIGFPE",
        SIGABRT => "SIGABRT",
        _ => "a signal",
    }
}

pub(crate) fn signal_name(sig: c_int) -> &'static str {
    sig_name(sig)
}

/// Puts the handlers in, once per process: all five, or none (each one
/// already in is taken out again).
pub(crate) fn install() -> Result<(), String> {
    if READY.load(Ordering::Acquire) {
        return Ok(());
    }
    let mut done = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return Ok(());
    }
    let ours = SigAction {
        handler: on_fault as *const () as usize,
        mask: [0; 16],
        flags: SA_SIGINFO | SA_ONSTACK | SA_NODEFER,
        restorer: 0,
    };
    // SAFETY: PREV is written only here, under INSTALL, before each of our
    // handlers is in; the actions passed are valid.
    let prev = unsafe { &mut *PREV.0.get() };
    for (i, &sig) in SIGS.iter().enumerate() {
        // Read the old action first: our handler may run on another thread
        // as soon as it is in, and reads it.
        let ok = unsafe { sigaction(sig, std::ptr::null(), &mut prev[i]) == 0 }
            && unsafe { sigaction(sig, &ours, std::ptr::null_mut()) == 0 };
        if !ok {
            let e = std::io::Error::last_os_error();
            for k in 0..i {
                // SAFETY: the actions read above.
                unsafe { sigaction(SIGS[k], &prev[k], std::ptr::null_mut()) };
            }
            return Err(format!(
                "cannot install a handler for {}: {e}",
                sig_name(sig)
            ));
        }
    }
    *done = true;
    READY.store(true, Ordering::Release);
    Ok(())
}

/// A stack overflow is caught too, on a stack of its own per thread (the
/// thread's own, when it has one: Rust's threads do).
struct AltStack(Cell<*mut c_void>);

impl Drop for AltStack {
    fn drop(&mut self) {
        let m = self.0.get();
        if m.is_null() {
            return;
        }
        let off = StackT {
            sp: std::ptr::null_mut(),
            flags: SS_DISABLE,
            size: 0,
        };
        let mut cur = StackT {
            sp: std::ptr::null_mut(),
            flags: 0,
            size: 0,
        };
        // SAFETY: the thread ends; the stack is ours only if still in place.
        unsafe {
            if sigaltstack(std::ptr::null(), &mut cur) == 0 && cur.sp == m {
                sigaltstack(&off, std::ptr::null_mut());
            }
            if sigaltstack(std::ptr::null(), &mut cur) == 0 && cur.sp != m {
                munmap(m, ALT_STACK);
            }
        }
    }
}

thread_local! {
    static ALT: AltStack = const { AltStack(Cell::new(std::ptr::null_mut())) };
}

fn ensure_alt_stack() {
    let mut cur = StackT {
        sp: std::ptr::null_mut(),
        flags: 0,
        size: 0,
    };
    // SAFETY: reads the thread's alternate stack.
    if unsafe { sigaltstack(std::ptr::null(), &mut cur) } == 0 && cur.flags & SS_DISABLE == 0 {
        return;
    }
    let _ = ALT.try_with(|a| {
        if !a.0.get().is_null() {
            return;
        }
        // SAFETY: a fresh private anonymous mapping (read+write).
        let m = unsafe { mmap(std::ptr::null_mut(), ALT_STACK, 3, 0x22, -1, 0) };
        if m as isize == -1 {
            return; // then only a stack overflow goes uncaught
        }
        let ss = StackT {
            sp: m,
            flags: 0,
            size: ALT_STACK,
        };
        // SAFETY: the mapping made above, kept until the thread ends.
        if unsafe { sigaltstack(&ss, std::ptr::null_mut()) } == 0 {
            a.0.set(m);
        } else {
            // SAFETY: not in use.
            unsafe { munmap(m, ALT_STACK) };
        }
    });
}

// ---------------------------------------------------------- the call

struct Work<F, R> {
    f: Option<F>,
    out: Option<R>,
}

unsafe extern "C-unwind" fn work<F: FnOnce() -> R, R>(p: *mut c_void) {
    // SAFETY: p is the &mut Work made in run, alive across the call.
    let w = unsafe { &mut *(p as *mut Work<F, R>) };
    if let Some(f) = w.f.take() {
        w.out = Some(f());
    }
}

/// Puts the thread's previous guard back however run ends (a panic of the
/// program's own unwinds through).
struct Pop(*mut Guard);

impl Drop for Pop {
    fn drop(&mut self) {
        let _ = TOP.try_with(|t| t.set(self.0));
    }
}

/// f(), guarded: Ok(Ok(value)) when it returned, Ok(Err(how)) when plugin
/// code crashed in it (what its frames held is leaked, not dropped), Err
/// when the handlers cannot be installed (f is not called).
pub(crate) fn run<R, F: FnOnce() -> R>(f: F) -> Result<Result<R, Caught>, String> {
    install()?;
    ensure_alt_stack();
    let mut w = Work {
        f: Some(f),
        out: None,
    };
    let mut g = Guard {
        regs: [0; 8],
        prev: TOP.try_with(|t| t.get()).unwrap_or(std::ptr::null_mut()),
        busy: false,
        caught: Caught {
            sig: 0,
            addr: 0,
            culprit: 0,
            trail: [0; TRAIL],
            ntrail: 0,
        },
    };
    let pop = Pop(g.prev);
    TOP.try_with(|t| t.set(&mut g))
        .map_err(|_| "the thread is ending: no guarded calls".to_string())?;
    let job = work::<F, R> as Job;
    // SAFETY: g and w live across the call; job matches w's type.
    let rc =
        unsafe { rewire_lib_guard_call_v1(&mut g, job, &mut w as *mut Work<F, R> as *mut c_void) };
    drop(pop);
    if rc == 0 {
        return w
            .out
            .take()
            .map(Ok)
            .ok_or_else(|| "the guarded call gave no value".into());
    }
    std::mem::forget(w); // what a crashed call left is not dropped
    Ok(Err(g.caught))
}
