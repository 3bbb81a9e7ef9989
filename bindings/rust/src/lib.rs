//! Safe points, patch hooks and guarded calls for a program that runs under
//! `rewire run` (see include/rewire.h in rewire for the C side).
//!
//! No dependencies: the functions find rewire's agent in the process by
//! name (`dlsym`), and do nothing when the program runs without rewire, so
//! the calls can stay in release builds.
//!
//! ```no_run
//! rewire::on_patch(|p| eprintln!("patch {}: {:?}", p.version, p.functions().collect::<Vec<_>>()));
//! loop {
//!     // ... one frame, one request, one tick of work ...
//!     rewire::poll(); // patches are applied here, and only here
//! }
//! ```
use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::OnceLock;

mod lib_reload;
pub use lib_reload::{Lib, LibError};

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
    /// 1 for the first patch of the process.
    pub version: i32,
    funcs: &'a [*const c_char],
}

impl Patch<'_> {
    /// Linkage names of the functions the patch replaced.
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        // SAFETY: the agent gives NUL-terminated names that outlive the hook.
        self.funcs.iter().map(|&p| unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("?"))
    }
}

#[repr(C)]
struct RawPatch {
    version: c_int,
    nfuncs: usize,
    funcs: *const *const c_char,
}

type Hook = Box<dyn Fn(&Patch) + Send + Sync>;

extern "C" fn run_hook(info: *const RawPatch, ctx: *mut c_void) {
    // SAFETY: ctx is the leaked Box<Hook> given to the agent below; info is
    // valid for the call.
    let (hook, info) = unsafe { (&*(ctx as *const Hook), &*info) };
    let funcs = if info.nfuncs == 0 {
        &[][..]
    } else {
        // SAFETY: the agent's array of nfuncs names.
        unsafe { std::slice::from_raw_parts(info.funcs, info.nfuncs) }
    };
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        hook(&Patch { version: info.version, funcs })
    }));
}

/// Run `f` after each patch (inside [`poll`] when the program polls), to
/// rebuild what depends on code. Returns false when not under rewire or
/// when too many hooks are registered.
pub fn on_patch<F: Fn(&Patch) + Send + Sync + 'static>(f: F) -> bool {
    let Some(reg) = agent(&ON_PATCH, c"rewire_agent_on_patch") else {
        return false;
    };
    let ctx = Box::into_raw(Box::new(Box::new(f) as Hook)) as *mut c_void;
    type Reg = extern "C" fn(extern "C" fn(*const RawPatch, *mut c_void), *mut c_void) -> c_int;
    // SAFETY: the agent's `int rewire_agent_on_patch(fn, ctx)`.
    unsafe { std::mem::transmute::<usize, Reg>(reg)(run_hook, ctx) == 0 }
}

/// Patched code crashed inside [`call`]; its patch was rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crashed;

impl std::fmt::Display for Crashed {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("patched code crashed; its patch was rolled back")
    }
}

impl std::error::Error for Crashed {}

extern "C" fn call_boxed(arg: *mut c_void) {
    // SAFETY: arg is the &mut Option<&mut dyn FnMut()> made in `call`.
    let f = unsafe { &mut *(arg as *mut &mut dyn FnMut()) };
    f();
}

/// Run `f` guarded: when patched code crashes in it (SIGSEGV, SIGBUS,
/// SIGILL, SIGFPE, abort), rewire rolls that patch back, the previous
/// version runs from the next call on, and this returns `Err(Crashed)`.
/// What the frames inside `f` owned is leaked, not dropped. Without rewire
/// it just calls `f`.
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
    let mut dynf: &mut dyn FnMut() = &mut run;
    type Call = extern "C" fn(extern "C" fn(*mut c_void), *mut c_void) -> c_int;
    // SAFETY: the agent's `int rewire_agent_call(fn, arg)`; arg lives
    // across the call.
    let rc = unsafe {
        std::mem::transmute::<usize, Call>(guard)(call_boxed, &mut dynf as *mut _ as *mut c_void)
    };
    if rc == -2 {
        Err(Crashed)
    } else {
        Ok(())
    }
}
