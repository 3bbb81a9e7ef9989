//! Safe points, patch hooks and guarded calls for a program that runs under
//! `rewire run` (see include/rewire.h in rewire for the C side).
//!
//! No dependencies: the functions find rewire's agent in the process by
//! name (`dlsym`), and do nothing when the program runs without rewire, so
//! the calls can stay in release builds.
//!
//! ```no_run
//! rewire::on_patch(|p| eprintln!("patch {}: {:?}", p.version, p.names().collect::<Vec<_>>()));
//! loop {
//!     // ... one frame, one request, one tick of work ...
//!     rewire::poll(); // patches are applied here, and only here
//! }
//! ```
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};

mod lib_guard;
mod lib_reload;
pub use lib_reload::{Lib, LibError, Libs, Status};

extern "C" {
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}

/// The agent's entry point `name`, looked up once.
fn agent(cache: &OnceLock<usize>, name: &CStr) -> Option<usize> {
    // SAFETY: dlsym with RTLD_DEFAULT (null) and a NUL-terminated name.
    let p = *cache.get_or_init(|| unsafe { dlsym(std::ptr::null_mut(), name.as_ptr()) } as usize);
    (p != 0).then_some(p)
}

static POLL: OnceLock<usize> = OnceLock::new();
static ON_PATCH: OnceLock<usize> = OnceLock::new();
static CALL: OnceLock<usize> = OnceLock::new();

/// Whether the process runs under rewire.
pub fn active() -> bool {
    agent(&POLL, c"rewire_agent_poll").is_some()
}

/// The program's quiescent moment (its tick). Once a program has called it,
/// rewire applies patches only inside this call, on the calling thread.
/// Returns whether a patch was applied.
pub fn poll() -> bool {
    match agent(&POLL, c"rewire_agent_poll") {
        // SAFETY: the agent's `int rewire_agent_poll(void)`.
        Some(f) => unsafe { std::mem::transmute::<usize, extern "C" fn() -> c_int>(f)() > 0 },
        None => false,
    }
}

/// What a patch replaced, given to [`on_patch`] hooks.
pub struct Patch<'a> {
    /// 1 for the first patch of the process; after `rewire revert`, the
    /// version that runs now (0: as built), the functions those taken back.
    pub version: i32,
    funcs: &'a [*const c_char],
    names: &'a [*const c_char],
}

fn strs(p: &[*const c_char]) -> impl Iterator<Item = &str> {
    // SAFETY: the agent gives NUL-terminated names that outlive the hook.
    p.iter().map(|&p| unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("?"))
}

impl Patch<'_> {
    /// Linkage names of the functions the patch replaced (as in the
    /// symbol table: `_ZN4game6update17h…E`).
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        strs(self.funcs)
    }

    /// The same functions' names for people, demangled (`game::update`).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        strs(self.names)
    }
}

#[repr(C)]
struct RawPatch {
    version: c_int,
    nfuncs: usize,
    funcs: *const *const c_char,
    names: *const *const c_char,
}

type Hook = Box<dyn Fn(&Patch) + Send + Sync>;

extern "C" fn run_hook(info: *const RawPatch, ctx: *mut c_void) {
    // SAFETY: ctx is the leaked Box<Hook> given to the agent below; info is
    // valid for the call.
    let (hook, info) = unsafe { (&*(ctx as *const Hook), &*info) };
    let names = |p: *const *const c_char| {
        if info.nfuncs == 0 || p.is_null() {
            &[][..]
        } else {
            // SAFETY: the agent's array of nfuncs names.
            unsafe { std::slice::from_raw_parts(p, info.nfuncs) }
        }
    };
    let (funcs, names) = (names(info.funcs), names(info.names));
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hook(&Patch { version: info.version, funcs, names })
    }));
}

/// Run `f` after each patch (inside [`poll`] when the program polls), to
/// rebuild what depends on code. Returns false when too many hooks are
/// registered (16); true otherwise, as `rewire_on_patch` returns 0: also
/// when not under rewire, where `f` never runs (there are no patches).
pub fn on_patch<F: Fn(&Patch) + Send + Sync + 'static>(f: F) -> bool {
    let Some(reg) = agent(&ON_PATCH, c"rewire_agent_on_patch") else {
        return true;
    };
    let ctx = Box::into_raw(Box::new(Box::new(f) as Hook)) as *mut c_void;
    type Reg = extern "C" fn(extern "C" fn(*const RawPatch, *mut c_void), *mut c_void) -> c_int;
    // SAFETY: the agent's `int rewire_agent_on_patch(fn, ctx)`.
    unsafe { std::mem::transmute::<usize, Reg>(reg)(run_hook, ctx) == 0 }
}

/// Patched code crashed or panicked inside [`call`]; its patch was rolled
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Crashed {
    /// A crash: SIGSEGV, SIGBUS, SIGILL, SIGFPE or abort (the reason is on
    /// stderr).
    Signal,
    /// A panic, with its message (`"Box<dyn Any>"` for a payload that is
    /// not a string).
    Panic(String),
}

impl std::fmt::Display for Crashed {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Crashed::Signal => f.write_str("patched code crashed; its patch was rolled back"),
            Crashed::Panic(m) => write!(f, "patched code panicked: {m}; its patch was rolled back"),
        }
    }
}

impl std::error::Error for Crashed {}

static PANICKING: OnceLock<usize> = OnceLock::new();
static UNWOUND: OnceLock<usize> = OnceLock::new();
/// The address of the panic hook [`watch_panics`] installed (its box), 0
/// before; CHECK_HOOK: a panic in a guard went unseen, look again.
static OUR_HOOK: AtomicUsize = AtomicUsize::new(0);
static CHECK_HOOK: AtomicBool = AtomicBool::new(false);
static HOOK_LOCK: Mutex<()> = Mutex::new(());

type PanicHook = Box<dyn Fn(&std::panic::PanicHookInfo) + Sync + Send + 'static>;

/// Puts a panic hook in front of the program's, so that the agent sees the
/// panicking stack whole (by the time the trampoline catches the panic,
/// the frames that raised it are gone). Once, and again when a panic
/// inside [`call`] went unseen because the program set its own hook since.
fn watch_panics() {
    let fresh = OUR_HOOK.load(SeqCst) == 0;
    if !(fresh || CHECK_HOOK.swap(false, SeqCst)) || std::thread::panicking() {
        return;
    }
    let Some(seen) = agent(&PANICKING, c"rewire_agent_panicking") else {
        return;
    };
    let _one = HOOK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if fresh && OUR_HOOK.load(SeqCst) != 0 {
        return; // another thread was first
    }
    let prev = std::panic::take_hook();
    if fresh || hook_addr(&prev) != OUR_HOOK.load(SeqCst) {
        let ours: PanicHook = Box::new(move |info| {
            // SAFETY: the agent's `void rewire_agent_panicking(void)`.
            unsafe { std::mem::transmute::<usize, extern "C" fn()>(seen)() };
            prev(info)
        });
        OUR_HOOK.store(hook_addr(&ours), SeqCst);
        std::panic::set_hook(ours);
    } else {
        std::panic::set_hook(prev); // ours is still in place
    }
}

fn hook_addr(h: &PanicHook) -> usize {
    &**h as *const _ as *const () as usize
}

/// What [`call`] hands to the trampoline through the agent.
struct Guarded<'a> {
    f: &'a mut dyn FnMut(),
    panic: Option<Box<dyn std::any::Any + Send>>,
}

extern "C" fn call_boxed(arg: *mut c_void) {
    // SAFETY: arg is the &mut Guarded made in `call`, alive across it.
    let g = unsafe { &mut *(arg as *mut Guarded) };
    // A panic must not unwind into the agent's C frame: caught here, it
    // ends the guarded call, and `call` decides what it was.
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (g.f)())) {
        g.panic = Some(p);
        if let Some(unwound) = agent(&UNWOUND, c"rewire_agent_unwound") {
            // SAFETY: the agent's `int rewire_agent_unwound(void)`.
            if unsafe { std::mem::transmute::<usize, extern "C" fn() -> c_int>(unwound)() } == 0 {
                CHECK_HOOK.store(true, SeqCst);
            }
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    match (p.downcast_ref::<&str>(), p.downcast_ref::<String>()) {
        (Some(s), _) => s.to_string(),
        (_, Some(s)) => s.clone(),
        _ => "Box<dyn Any>".to_string(),
    }
}

/// Run `f` guarded: when patched code crashes in it (SIGSEGV, SIGBUS,
/// SIGILL, SIGFPE, abort) or panics (patch code on the stack between the
/// panic and this call), rewire rolls that patch back, the previous version
/// runs from the next call on, and this returns `Err` ([`Crashed::Signal`],
/// or [`Crashed::Panic`] with the panic's message). After a crash, what the
/// frames inside `f` owned is leaked, not dropped; a panic unwinds them
/// first. A panic that is not a patch's goes on unwinding out of `call`,
/// as it would without rewire. Without rewire it just calls `f`.
///
/// Under rewire, the first call puts a panic hook in front of the
/// program's (which still runs); a hook the program sets later without
/// chaining to the previous one is wrapped again at the next call.
pub fn call<F: FnOnce()>(f: F) -> Result<(), Crashed> {
    let mut once = Some(f);
    let mut run = || {
        if let Some(f) = once.take() {
            f()
        }
    };
    let Some(guard) = agent(&CALL, c"rewire_agent_call") else {
        run();
        return Ok(());
    };
    watch_panics();
    let mut g = Guarded { f: &mut run, panic: None };
    type Call = extern "C" fn(extern "C" fn(*mut c_void), *mut c_void) -> c_int;
    // SAFETY: the agent's `int rewire_agent_call(fn, arg)`; g lives
    // across the call.
    let rc = unsafe {
        std::mem::transmute::<usize, Call>(guard)(call_boxed, &mut g as *mut Guarded as *mut c_void)
    };
    match (rc, g.panic) {
        (-2, Some(p)) => Err(Crashed::Panic(panic_message(&*p))),
        (-2, None) => Err(Crashed::Signal),
        (_, Some(p)) => std::panic::resume_unwind(p),
        _ => Ok(()),
    }
}
