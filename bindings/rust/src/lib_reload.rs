//! Reloading a plugin library while the program runs: [`Lib`], the Rust side
//! of include/rewire_lib.h (open, sym, update, version, error), written with
//! std only. It needs neither rewire's agent nor its C library.
//!
//! The host:
//!
//! ```no_run
//! # use std::ffi::c_void;
//! let mut state = 0u64; // owned by the host, given to every version
//! let mut lib = rewire::Lib::open("target/debug/libplugin.so", &mut state as *mut u64 as *mut c_void)?;
//! // SAFETY: the plugin's `step` has this signature.
//! let step: extern "C" fn(*mut c_void, u64) -> u64 = unsafe { lib.sym("step")? };
//! loop {
//!     if let Err(e) = lib.update() {
//!         eprintln!("{e}"); // the previous version keeps running
//!     }
//!     step(&mut state as *mut u64 as *mut c_void, 1); // the newest version
//! #   break;
//! }
//! # Ok::<(), rewire::LibError>(())
//! ```
//!
//! The plugin, a `cdylib` crate (`crate-type = ["cdylib"]`), exports C
//! functions, and may define the hooks (`0`: accept; anything else refuses
//! the version, which is then not used):
//!
//! ```ignore
//! #[no_mangle]
//! pub extern "C" fn rewire_lib_load(state: *mut c_void, version: c_int) -> c_int { 0 }
//! #[no_mangle]
//! pub extern "C" fn rewire_lib_unload(state: *mut c_void, version: c_int) {}
//! ```
//!
//! What it does, as the C library does:
//! - [`Lib::open`] loads a private copy of the file (never the file itself:
//!   a build rewriting it would change code under the running program)
//!   under a name never reused, in a private 0700 directory
//!   (`$XDG_RUNTIME_DIR/rewire` or `/tmp/rewire-UID`, then `lib-PID-XXXXXX`).
//! - [`Lib::sym`] gives a pointer to a trampoline (`jmp *slot`) that a reload
//!   retargets: it stays valid across reloads, while the `Lib` lives.
//!   Functions only: data would stay on the old version.
//! - [`Lib::update`] reloads when the file changed and is a complete ELF
//!   shared object that stopped changing; the new version must define every
//!   symbol handed out and its load hook must accept, before any trampoline
//!   moves. Otherwise the old version stays, and the file is not tried again
//!   until it changes.
//! - Old versions stay loaded (a thread may still run in them) until
//!   [`Lib::unload_old`] or until the `Lib` is dropped.
//!
//! - [`Lib::status`] says what the last update found; [`Lib::before_reload`]
//!   (which may postpone it) and [`Lib::after_reload`] tell the host of a
//!   reload; [`Lib::was_updated`] says once that one happened;
//!   [`Lib::watch`] updates from a thread of its own.
//! - [`Lib::call`] runs a closure guarded: when a version's code crashes
//!   or panics in it, the call returns `Err`, and the reload that brought
//!   that version in is rolled back (lib_reload/crash.rs, over the guard
//!   in lib_guard.rs).
//! - [`Libs`] holds libraries that use each other (`DT_NEEDED`): one is
//!   reloaded with those that need it, dependencies first, as one
//!   transaction, and a crash rolls them back together
//!   (lib_reload/deps.rs).
//! - [`hot_module!`](crate::hot_module) writes typed wrappers for the
//!   plugin's functions, and guarded ones.
//!
//! x86-64 Linux with glibc.
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use crate::lib_guard;

mod crash;
mod deps;
pub use deps::Libs;

const RTLD_NOW: c_int = 2;
const RTLD_DI_LINKMAP: c_int = 2;
const PROT_READ: c_int = 1;
const PROT_WRITE: c_int = 2;
const PROT_EXEC: c_int = 4;
const MAP_PRIVATE: c_int = 2;
const MAP_ANONYMOUS: c_int = 0x20;
const LOCK_EX: c_int = 2;
const LOCK_NB: c_int = 4;
const TRAMP: usize = 16;
const RECENT: Duration = Duration::from_millis(100);
const SETTLE: Duration = Duration::from_millis(5);
const QUIET: Duration = Duration::from_millis(5000);

extern "C" {
    fn dlopen(file: *const c_char, mode: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, name: *const c_char) -> *mut c_void;
    fn dlclose(handle: *mut c_void) -> c_int;
    fn dlerror() -> *const c_char;
    fn dlinfo(handle: *mut c_void, request: c_int, arg: *mut c_void) -> c_int;
    fn dl_iterate_phdr(
        cb: extern "C" fn(*mut PhdrInfo, usize, *mut c_void) -> c_int,
        data: *mut c_void,
    ) -> c_int;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn mprotect(addr: *mut c_void, len: usize, prot: c_int) -> c_int;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn mkdtemp(template: *mut c_char) -> *mut c_char;
    fn getuid() -> u32;
    fn flock(fd: c_int, op: c_int) -> c_int;
}

#[repr(C)]
struct PhdrInfo {
    addr: usize,
    name: *const c_char,
}

#[repr(C)]
struct LinkMap {
    l_addr: usize,
    l_name: *const c_char,
}

/// Why a [`Lib`] call failed: the file, the symbol, the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibError(String);

impl std::fmt::Display for LibError {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LibError {}

fn err<T>(msg: String) -> Result<T, LibError> {
    Err(LibError(msg))
}

// ------------------------------------------------------------ ELF checks

fn rd(b: &[u8], off: u64, n: usize) -> Option<u64> {
    let off = usize::try_from(off).ok()?;
    let s = b.get(off..off.checked_add(n)?)?;
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(s);
    Some(u64::from_le_bytes(v))
}

fn in_file(len: usize, off: u64, size: u64) -> bool {
    off <= len as u64 && size <= len as u64 - off
}

struct Segments {
    exec: Vec<(u64, u64)>,
    image: (u64, u64),
    dynamic: deps::Dynamic,
}

/// The loadable segments, or why `b` is not a complete x86-64 shared object
/// (a file still being written fails: linkers write headers last).
fn elf_check(b: &[u8]) -> Result<Segments, &'static str> {
    if b.len() < 64 {
        return Err("shorter than an ELF header");
    }
    if &b[..4] != b"\x7fELF" {
        return Err("no ELF magic");
    }
    let h = |off, n| rd(b, off, n).unwrap_or(0);
    if b[4] != 2 || b[5] != 1 || h(18, 2) != 62 {
        return Err("not an ELF object for x86-64");
    }
    if h(16, 2) != 3 {
        return Err("not a shared object");
    }
    let (phoff, phnum, shoff, shnum) = (h(32, 8), h(56, 2), h(40, 8), h(60, 2));
    if h(54, 2) != 56 || !in_file(b.len(), phoff, phnum * 56) {
        return Err("program headers past the end of the file");
    }
    if shoff != 0 && (h(58, 2) != 64 || !in_file(b.len(), shoff, shnum * 64)) {
        return Err("section headers past the end of the file");
    }
    let mut seg = Segments {
        exec: Vec::new(),
        image: (u64::MAX, 0),
        dynamic: deps::elf_dynamic(b),
    };
    let mut dynamic = false;
    for i in 0..phnum {
        let p = phoff + i * 56;
        let (ty, flags, off, va, filesz, memsz) = (
            h(p, 4),
            h(p + 4, 4),
            h(p + 8, 8),
            h(p + 16, 8),
            h(p + 32, 8),
            h(p + 40, 8),
        );
        if (ty == 1 || ty == 2) && !in_file(b.len(), off, filesz) {
            return Err("a segment ends past the end of the file");
        }
        dynamic |= ty == 2;
        if ty == 1 {
            seg.image = (seg.image.0.min(va), seg.image.1.max(va + memsz));
            if flags & 1 != 0 {
                seg.exec.push((va, va + memsz));
            }
        }
    }
    for i in 0..shnum {
        let s = shoff + i * 64;
        let ty = h(s + 4, 4);
        if ty != 0 && ty != 8 && !in_file(b.len(), h(s + 24, 8), h(s + 32, 8)) {
            return Err("a section ends past the end of the file");
        }
    }
    if dynamic {
        Ok(seg)
    } else {
        Err("no dynamic segment")
    }
}

// ----------------------------------------------------- private directory

struct Dir {
    path: PathBuf,
    pid: u32,
    _lock: File,
}

static DIR: Mutex<Option<Dir>> = Mutex::new(None);
static COPIES: AtomicU64 = AtomicU64::new(0);

fn usable_base(dir: &Path) -> Result<(), String> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(format!("cannot create {}: {e}", dir.display()))
        }
        _ => {}
    }
    let m = fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // SAFETY: getuid has no preconditions.
    if !m.is_dir() || m.uid() != unsafe { getuid() } || m.mode() & 0o077 != 0 {
        return Err(format!(
            "{} must be a directory owned by you with mode 0700: refusing to use it",
            dir.display()
        ));
    }
    Ok(())
}

/// lib-* directories whose owner died (its lock can be taken) go; see the C
/// library (src/api/files.c), which uses the same layout.
fn sweep(base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with("lib-") {
            continue;
        }
        let gone = match File::open(e.path().join("lock")) {
            // SAFETY: flock on an open file.
            Ok(f) => (unsafe { flock(f.as_raw_fd(), LOCK_EX | LOCK_NB) }) == 0,
            Err(_) => e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60)),
        };
        if gone {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn make_dir(base: &Path) -> Result<Dir, String> {
    sweep(base);
    let template = CString::new(format!(
        "{}/lib-{}-XXXXXX",
        base.display(),
        std::process::id()
    ))
    .map_err(|_| "bad directory name".to_string())?;
    let raw = template.into_raw();
    // SAFETY: a writable NUL-terminated template, taken back right after.
    let made = !unsafe { mkdtemp(raw) }.is_null();
    // SAFETY: raw comes from into_raw above.
    let path = PathBuf::from(
        unsafe { CString::from_raw(raw) }
            .into_string()
            .unwrap_or_default(),
    );
    if !made {
        return Err(format!(
            "cannot create {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    let lock = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path.join("lock"));
    // SAFETY: flock on an open file; held while the process lives.
    match lock {
        Ok(f) if unsafe { flock(f.as_raw_fd(), LOCK_EX) } == 0 => Ok(Dir {
            path,
            pid: std::process::id(),
            _lock: f,
        }),
        _ => Err(format!("cannot lock {}/lock", path.display())),
    }
}

fn private_dir() -> Result<PathBuf, String> {
    let mut d = DIR.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(dir) = d.as_ref().filter(|d| d.pid == std::process::id()) {
        return Ok(dir.path.clone());
    }
    let mut why = String::from("no candidate");
    let xdg = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty());
    // SAFETY: getuid has no preconditions.
    let tmp = PathBuf::from(format!("/tmp/rewire-{}", unsafe { getuid() }));
    for base in xdg
        .map(|x| Path::new(&x).join("rewire"))
        .into_iter()
        .chain([tmp])
    {
        match usable_base(&base).and_then(|_| make_dir(&base)) {
            Ok(dir) => {
                let p = dir.path.clone();
                *d = Some(dir);
                return Ok(p);
            }
            Err(e) => why = e,
        }
    }
    Err(why)
}

// ------------------------------------------------------------ trampolines

/// Pages of trampolines: `endbr64; jmp *slot(%rip)`, code page read+exec,
/// the slots in the page after it (never writable and executable at once).
struct Chunk {
    code: *mut u8,
}

fn page() -> usize {
    4096
}

impl Chunk {
    fn new() -> Result<Chunk, String> {
        let pg = page();
        // SAFETY: a fresh private anonymous mapping.
        let m = unsafe {
            mmap(
                std::ptr::null_mut(),
                2 * pg,
                PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if m as isize == -1 {
            return Err(format!(
                "no memory for trampolines: {}",
                std::io::Error::last_os_error()
            ));
        }
        let m = m as *mut u8;
        for i in 0..pg / TRAMP {
            let disp = (pg + i * 8 - (i * TRAMP + 10)) as i32;
            let mut t = [0xccu8; TRAMP];
            t[..6].copy_from_slice(&[0xf3, 0x0f, 0x1e, 0xfa, 0xff, 0x25]);
            t[6..10].copy_from_slice(&disp.to_le_bytes());
            // SAFETY: inside the code page, still writable.
            unsafe { std::ptr::copy_nonoverlapping(t.as_ptr(), m.add(i * TRAMP), TRAMP) };
        }
        // SAFETY: the first page of the mapping made above.
        if unsafe { mprotect(m as *mut c_void, pg, PROT_READ | PROT_EXEC) } != 0 {
            // SAFETY: the mapping made above.
            unsafe { munmap(m as *mut c_void, 2 * pg) };
            return Err("cannot make trampolines executable".into());
        }
        Ok(Chunk { code: m })
    }

    fn slot(&self, i: usize) -> &AtomicUsize {
        // SAFETY: slot i of the data page, 8-aligned, living as long as self.
        unsafe { &*(self.code.add(page() + i * 8) as *const AtomicUsize) }
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: the mapping made in Chunk::new.
        unsafe { munmap(self.code as *mut c_void, 2 * page()) };
    }
}

// ---------------------------------------------------------------- versions

struct Version {
    num: i32,
    txn: u64,  // the reload that loaded it
    bad: bool, // crashed in a guarded call, or undone with one that did
    handle: *mut c_void,
    base: usize,
    copy: PathBuf,
    seg: Segments,
    slots: Vec<usize>, // its code in the fault handler's table
    link: deps::Link,  // its soname and DT_NEEDED as rewritten in the copy
}

extern "C" fn find_name(info: *mut PhdrInfo, _size: usize, data: *mut c_void) -> c_int {
    // SAFETY: the loader's info for the call; data is the (&CStr, bool) below.
    let (info, want) = unsafe { (&*info, &mut *(data as *mut (&CStr, bool))) };
    // SAFETY: dlpi_name is a NUL-terminated string (maybe empty) or null.
    if !info.name.is_null() && unsafe { CStr::from_ptr(info.name) } == want.0 {
        want.1 = true;
    }
    want.1 as c_int
}

fn still_mapped(copy: &Path) -> bool {
    let Ok(name) = CString::new(copy.as_os_str().as_encoded_bytes()) else {
        return true;
    };
    let mut want = (name.as_c_str(), false);
    // SAFETY: the callback only reads the loader's info and writes `want`.
    unsafe { dl_iterate_phdr(find_name, &mut want as *mut _ as *mut c_void) };
    want.1
}

impl Version {
    /// name, defined by this version itself (dlsym also finds what its
    /// dependencies define), in its code when `code`.
    fn own(&self, name: &CStr, code: bool) -> Option<usize> {
        // SAFETY: a live handle and a NUL-terminated name.
        let p = unsafe { dlsym(self.handle, name.as_ptr()) } as usize;
        let a = p.checked_sub(self.base)? as u64;
        let inside = |r: &(u64, u64)| a >= r.0 && a < r.1;
        let ok = if code {
            self.seg.exec.iter().any(inside)
        } else {
            inside(&self.seg.image)
        };
        (p != 0 && ok).then_some(p)
    }

    /// Whether pc is in this version's code.
    fn has_code(&self, pc: usize) -> bool {
        let a = pc.wrapping_sub(self.base) as u64;
        self.seg.exec.iter().any(|r| a >= r.0 && a < r.1)
    }

    /// Tells the fault handler whether this version is current.
    fn set_current(&self, cur: bool) {
        for &s in &self.slots {
            lib_guard::range_current(s, cur);
        }
    }

    fn close(self) {
        for &s in &self.slots {
            lib_guard::range_del(s);
        }
        // SAFETY: the handle from dlopen, closed once.
        unsafe { dlclose(self.handle) };
        if !still_mapped(&self.copy) {
            let _ = fs::remove_file(&self.copy);
        } // else glibc kept it (e.g. thread_local destructors): its file stays for debuggers
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string.
    let e = unsafe { dlerror() };
    if e.is_null() {
        "dlopen failed".into()
    } else {
        // SAFETY: checked non-null above.
        unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
    }
}

static TXNS: AtomicU64 = AtomicU64::new(0);

fn next_txn() -> u64 {
    TXNS.fetch_add(1, Ordering::Relaxed) + 1
}

// --------------------------------------------------------------------- Lib

/// A shared library loaded as a private copy and reloaded when its file
/// changes. See the [module](self) documentation.
pub struct Lib {
    path: PathBuf,
    name: String,
    state: *mut c_void,
    seen: Option<FileId>,
    partial: Option<(FileId, Instant)>, // the file as first seen incomplete, when
    cur: Option<Version>,
    old: Vec<Version>,
    next_num: i32,
    syms: Vec<(CString, usize)>, // name, trampoline index
    chunks: Vec<Chunk>,
    error: String,
    status: Status,
    updated: bool, // reloaded since was_updated() last said so
    before: Option<Box<dyn FnMut(i32) -> bool + Send>>,
    after: Option<Box<dyn FnMut(i32) + Send>>,
}

/// What the last [`Lib::update`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// The file is as it was when last tried (or as loaded at open).
    NotChanged,
    /// Reloaded: this version runs.
    Updated(i32),
    /// Refused, with the reason: the previous version runs, and the file is
    /// not tried again until it changes.
    Refused(String),
    /// The file is not whole yet (a build writing it), with what is awaited.
    Waiting(String),
    /// The [`Lib::before_reload`] callback said not now: tried again at the
    /// next update.
    Postponed,
    /// A version crashed in [`Lib::call`], with what happened: the reload
    /// that brought it in was rolled back (if it was current), and its file
    /// is not tried again until it changes.
    Crashed(String),
}

// SAFETY: the raw pointers are the loader's handles and our own mappings;
// the state pointer is the host's, which vouches for it at `open`.
unsafe impl Send for Lib {}

type LoadHook = extern "C" fn(*mut c_void, c_int) -> c_int;
type UnloadHook = extern "C" fn(*mut c_void, c_int);

/// What tells one state of a file from another: device, inode, size, time.
type FileId = (u64, u64, u64, i64, i64);

fn file_id(m: &fs::Metadata) -> FileId {
    (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec())
}

/// The file read: whole and complete, or what is awaited.
enum Fetch {
    Ready(Vec<u8>, Segments, FileId),
    Wait(String),
}

impl Lib {
    fn new(path: &Path, state: *mut c_void) -> Lib {
        let abs = std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf());
        Lib {
            path: abs,
            name: path.display().to_string(),
            state,
            seen: None,
            partial: None,
            cur: None,
            old: Vec::new(),
            next_num: 1,
            syms: Vec::new(),
            chunks: Vec::new(),
            error: String::new(),
            status: Status::NotChanged,
            updated: false,
            before: None,
            after: None,
        }
    }

    /// Loads a copy of `path` and runs its `rewire_lib_load(state, 1)`.
    /// `state` is the host's, given to every version's hooks.
    pub fn open(path: impl AsRef<Path>, state: *mut c_void) -> Result<Lib, LibError> {
        let mut set = [Lib::new(path.as_ref(), state)];
        open_in(&mut set, 0)?;
        let [lib] = set;
        Ok(lib)
    }

    /// A function pointer to `name` that always reaches its current version:
    /// a trampoline, valid while this `Lib` lives (the same one for the same
    /// name). Refused for a name the library does not define as a function.
    ///
    /// # Safety
    /// `F` must be the function's true type (an `extern "C" fn` of pointer
    /// size), in this version and every later one; and the pointer must not
    /// be called after the `Lib` is dropped.
    pub unsafe fn sym<F: Copy>(&mut self, name: &str) -> Result<F, LibError> {
        assert_eq!(
            std::mem::size_of::<F>(),
            std::mem::size_of::<usize>(),
            "F must be a function pointer"
        );
        let t = self.tramp(name).inspect_err(|e| self.error = e.0.clone())?;
        // SAFETY: F is pointer-sized (asserted); the caller vouches for its type.
        Ok(unsafe { std::mem::transmute_copy::<usize, F>(&t) })
    }

    /// Reloads when the file changed and is complete: `Ok(true)` reloaded,
    /// `Ok(false)` unchanged or still being written ([`Lib::error`] then says
    /// what is awaited), `Err` refused: the previous version keeps running.
    pub fn update(&mut self) -> Result<bool, LibError> {
        update_in(std::slice::from_mut(self), 0).map(|n| n > 0)
    }

    /// `f()`, guarded: when code of a version of this library crashes in it
    /// (SIGSEGV, SIGBUS, SIGILL, SIGFPE, abort; at the fault or in a
    /// function it called, such as abort after a panic in an `extern "C"`
    /// function), this returns `Err` saying which version, function and
    /// signal, and if that version is current, the reload that brought it
    /// in is rolled back: the previous version runs again (its load hook
    /// runs again, with its own number), and the crashed file is not loaded
    /// again until it changes. [`Lib::status`] is then
    /// [`Status::Crashed`]. What the frames inside `f` held (locks, memory)
    /// is not released. A fault that is not in library code goes on as
    /// without rewire (the program's handler, or the default action), and a
    /// panic of the program's own code unwinds out of `call`.
    ///
    /// When the signal handlers cannot be installed, `f` is not called and
    /// the error says why.
    pub fn call<R>(&mut self, f: impl FnOnce() -> R) -> Result<R, LibError> {
        crash::call_in(std::slice::from_mut(self), Some(0), f)
    }

    /// [`Lib::call`] for a `Lib` shared with a watcher ([`Lib::watch`]):
    /// `f` runs without the lock, which is taken only after a crash.
    pub fn call_shared<R>(lib: &Mutex<Lib>, f: impl FnOnce() -> R) -> Result<R, LibError> {
        crash::call_shared(lib, f)
    }

    /// Unloads the versions before the current one (`dlclose`): call it
    /// once no thread runs in them and no pointer into them is kept (the
    /// pointers from [`Lib::sym`] are the trampolines: they stay good).
    /// Returns how many glibc kept mapped all the same; [`Lib::error`] then
    /// names them. Without it, old versions stay until the `Lib` is dropped.
    /// A crash in the current version can then no longer be rolled back.
    pub fn unload_old(&mut self) -> usize {
        let mut kept = Vec::new();
        for v in self.old.drain(..).rev() {
            let (num, copy) = (v.num, v.copy.clone());
            v.close();
            if still_mapped(&copy) {
                kept.push(num.to_string());
            }
        }
        if !kept.is_empty() {
            self.error = format!(
                "{} version {} stays mapped after dlclose: glibc keeps a library that registered \
                 thread_local destructors (while the thread lives), was linked -z nodelete, \
                 defines unique (C++ inline or template static) symbols, or is still needed by \
                 another one",
                self.name,
                kept.join(", ")
            );
        }
        kept.len()
    }

    /// What the last [`Lib::update`] found: unlike [`Lib::error`], which keeps
    /// the last refusal, this says "not changed" once the file is tried.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// Whether a reload (or a rollback) happened since this was last asked
    /// (true once per reload, whichever thread updated).
    pub fn was_updated(&mut self) -> bool {
        std::mem::take(&mut self.updated)
    }

    /// Called by [`Lib::update`] with the number of the version about to be
    /// loaded, before anything of it is: the host may save or serialise
    /// what the new version will read. Returning false postpones the reload
    /// ([`Status::Postponed`]): the next update tries again.
    pub fn before_reload(&mut self, f: impl FnMut(i32) -> bool + Send + 'static) {
        self.before = Some(Box::new(f));
    }

    /// Called by [`Lib::update`] with the new version's number once it runs
    /// (its load hook has accepted, every pointer from [`Lib::sym`] reaches
    /// it); and after a rollback, with the number of the version that runs
    /// again.
    pub fn after_reload(&mut self, f: impl FnMut(i32) + Send + 'static) {
        self.after = Some(Box::new(f));
    }

    /// A thread that calls [`Lib::update`] every `every`, for hosts without a
    /// loop of their own to call it from. It ends when the `Lib` is dropped
    /// (it holds it weakly). Calls through pointers from [`Lib::sym`] take no
    /// lock, so they never wait for it.
    pub fn watch(lib: &Arc<Mutex<Lib>>, every: Duration) -> std::thread::JoinHandle<()> {
        let weak: Weak<Mutex<Lib>> = Arc::downgrade(lib);
        std::thread::Builder::new()
            .name("rewire-lib-watch".into())
            .spawn(move || {
                while let Some(lib) = weak.upgrade() {
                    let _ = lib.lock().unwrap_or_else(|p| p.into_inner()).update();
                    drop(lib);
                    std::thread::sleep(every);
                }
            })
            .expect("cannot start the watcher thread")
    }

    /// The current version: 1 after open, one more after each reload (a
    /// rollback brings an earlier number back).
    pub fn version(&self) -> i32 {
        self.cur.as_ref().map_or(0, |v| v.num)
    }

    /// Why the last call failed (or what `update` waits for), if anything.
    pub fn error(&self) -> Option<&str> {
        (!self.error.is_empty()).then_some(self.error.as_str())
    }

    /// Whether the file changed since it was last tried.
    fn changed(&self) -> bool {
        fs::metadata(&self.path).map_or(true, |m| Some(file_id(&m)) != self.seen)
    }

    /// Whether the file, incomplete as `id` says, has stood still `QUIET`
    /// as `update` watched it. Not from its time alone: a truncation sets
    /// the size before the time, so a file emptied by a build that is about
    /// to write it can look incomplete and long untouched, for a moment.
    fn incomplete_for_long(&mut self, id: FileId) -> bool {
        match self.partial {
            Some((p, since)) if p == id => since.elapsed() >= QUIET,
            _ => {
                self.partial = Some((id, Instant::now()));
                false
            }
        }
    }

    /// The file, whole and complete, or why not yet.
    fn read(&mut self) -> Result<Fetch, LibError> {
        let name = &self.name.clone(); // self is borrowed below
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Fetch::Wait(format!("{name}: {e}")))
            }
            Err(e) => return err(format!("{name}: {e}")),
        };
        let m = f.metadata().map_err(|e| LibError(format!("{name}: {e}")))?;
        let mut bytes = Vec::with_capacity(m.len() as usize);
        f.read_to_end(&mut bytes)
            .map_err(|e| LibError(format!("{name}: read: {e}")))?;
        let age = m
            .modified()
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .unwrap_or_default();
        if age < RECENT {
            std::thread::sleep(SETTLE);
        }
        let again = f.metadata().map_err(|e| LibError(format!("{name}: {e}")))?;
        if file_id(&again) != file_id(&m) || bytes.len() as u64 != m.len() {
            return Ok(Fetch::Wait(format!("{name}: still being written; waiting")));
        }
        match elf_check(&bytes) {
            Ok(seg) => Ok(Fetch::Ready(bytes, seg, file_id(&m))),
            Err(why) if !self.incomplete_for_long(file_id(&m)) => Ok(Fetch::Wait(format!(
                "{name}: {why} (still being written?); waiting"
            ))),
            Err(why) => {
                self.seen = Some(file_id(&m)); // refused: not again until it changes
                err(format!("{name}: {why}"))
            }
        }
    }

    fn write_copy(&self, bytes: &[u8]) -> Result<PathBuf, LibError> {
        let dir = private_dir().map_err(|e| {
            LibError(format!(
                "{}: no private directory for its copies: {e}",
                self.name
            ))
        })?;
        let base = self
            .path
            .file_name()
            .map_or("lib.so".into(), |n| n.to_string_lossy().into_owned());
        let copy = dir.join(format!(
            "{base}.{}",
            COPIES.fetch_add(1, Ordering::Relaxed) + 1
        ));
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .and_then(|mut f| f.write_all(bytes))
            .map_err(|e| {
                LibError(format!(
                    "{}: cannot write {}: {e}",
                    self.name,
                    copy.display()
                ))
            })?;
        Ok(copy)
    }

    /// The copy at `copy` loaded as version num of transaction txn, its code
    /// known to the fault handler; not yet accepted.
    fn dlopen_copy(
        &self,
        copy: PathBuf,
        seg: Segments,
        num: i32,
        txn: u64,
        link: deps::Link,
    ) -> Result<Version, LibError> {
        let c = CString::new(copy.as_os_str().as_encoded_bytes())
            .map_err(|_| LibError("bad path".into()))?;
        // SAFETY: a NUL-terminated path.
        let handle = unsafe { dlopen(c.as_ptr(), RTLD_NOW) };
        if handle.is_null() {
            let _ = fs::remove_file(&copy);
            return err(format!("{}: version {num}: {}", self.name, dl_error()));
        }
        let mut lm: *mut LinkMap = std::ptr::null_mut();
        // SAFETY: RTLD_DI_LINKMAP writes a link_map pointer.
        let base = if unsafe { dlinfo(handle, RTLD_DI_LINKMAP, &mut lm as *mut _ as *mut c_void) }
            == 0
            && !lm.is_null()
        {
            // SAFETY: the loader's link_map for this handle.
            unsafe { (*lm).l_addr }
        } else {
            0
        };
        let slots = seg
            .exec
            .iter()
            .filter_map(|&(lo, hi)| lib_guard::range_add(base + lo as usize, base + hi as usize))
            .collect();
        Ok(Version {
            num,
            txn,
            bad: false,
            handle,
            base,
            copy,
            seg,
            slots,
            link,
        })
    }

    /// Every symbol handed out is in v, and v's load hook accepts.
    fn accept(&self, v: &Version) -> Result<(), LibError> {
        for (name, _) in &self.syms {
            if v.own(name, true).is_none() {
                return err(format!(
                    "{}: version {} does not define {}, which the program uses: refused",
                    self.name,
                    v.num,
                    name.to_string_lossy()
                ));
            }
        }
        match self.load_hook(v) {
            Ok(0) => Ok(()),
            Ok(rc) => err(format!(
                "{}: version {}: rewire_lib_load refused it (returned {rc})",
                self.name, v.num
            )),
            Err(why) => err(format!(
                "{}: version {}: rewire_lib_load crashed: {why}",
                self.name, v.num
            )),
        }
    }

    /// v's load hook, guarded: what it returned (0 when it has none), or
    /// how it crashed.
    fn load_hook(&self, v: &Version) -> Result<c_int, String> {
        let Some(hook) = v.own(c"rewire_lib_load", true) else {
            return Ok(0);
        };
        // SAFETY: the library's `int rewire_lib_load(void *, int)`.
        let hook = unsafe { std::mem::transmute::<usize, LoadHook>(hook) };
        let (state, num) = (self.state as usize, v.num);
        crash::hook(v, move || hook(state as *mut c_void, num))
    }

    /// v's unload hook, guarded; a crash in it is recorded in the error.
    fn unload_hook(&mut self, v: &Version) {
        if let Some(hook) = v.own(c"rewire_lib_unload", true) {
            // SAFETY: the library's `void rewire_lib_unload(void *, int)`.
            let hook = unsafe { std::mem::transmute::<usize, UnloadHook>(hook) };
            let (state, num) = (self.state as usize, v.num);
            if let Err(why) = crash::hook(v, move || hook(state as *mut c_void, num)) {
                self.error = format!(
                    "{}: version {}: rewire_lib_unload crashed: {why}",
                    self.name, v.num
                );
            }
        }
    }

    /// Every trampoline to v: how many of its functions v lacks (only when
    /// going back to a version older than the function).
    fn retarget(&self, v: &Version) -> usize {
        let per = page() / TRAMP;
        let mut missing = 0;
        for (name, t) in &self.syms {
            match v.own(name, true) {
                Some(a) => self.chunks[t / per]
                    .slot(t % per)
                    .store(a, Ordering::Release),
                None => missing += 1,
            }
        }
        missing
    }

    /// v becomes the current version: every trampoline moves to it.
    fn make_current(&mut self, v: Version) -> Option<Version> {
        self.retarget(&v);
        if let Some(c) = &self.cur {
            c.set_current(false);
        }
        v.set_current(true);
        self.next_num = self.next_num.max(v.num + 1);
        self.cur.replace(v)
    }

    fn tramp(&mut self, name: &str) -> Result<usize, LibError> {
        let cname = CString::new(name)
            .map_err(|_| LibError(format!("{}: bad symbol name {name:?}", self.name)))?;
        let per = page() / TRAMP;
        if let Some(&(_, t)) = self.syms.iter().find(|(n, _)| *n == cname) {
            return Ok(self.chunks[t / per].code as usize + t % per * TRAMP);
        }
        let Some(cur) = self.cur.as_ref() else {
            return err(format!("{}: not loaded", self.name));
        };
        let Some(addr) = cur.own(&cname, true) else {
            return err(if cur.own(&cname, false).is_some() {
                format!(
                    "{}: {name} is data, not a function: sym gives functions only",
                    self.name
                )
            } else {
                format!("{}: no function {name} in it", self.name)
            });
        };
        let t = self.syms.len();
        if t / per == self.chunks.len() {
            self.chunks
                .push(Chunk::new().map_err(|e| LibError(format!("{}: {e}", self.name)))?);
        }
        let chunk = &self.chunks[t / per];
        chunk.slot(t % per).store(addr, Ordering::Release);
        self.syms.push((cname, t));
        Ok(chunk.code as usize + t % per * TRAMP)
    }
}

impl Drop for Lib {
    /// Runs the current version's unload hook and unloads every version:
    /// the pointers from [`Lib::sym`] become invalid.
    fn drop(&mut self) {
        if let Some(v) = self.cur.take() {
            self.unload_hook(&v);
            self.old.push(v);
        }
        for v in self.old.drain(..).rev() {
            v.close();
        }
    }
}

// ------------------------------------------------------------ reloading

/// A library's bytes to load: from its file (with the file's id), or its
/// current version's, when it comes along with one it needs.
struct Source {
    bytes: Vec<u8>,
    seg: Segments,
    id: Option<FileId>,
}

/// Opens set[i], not loaded yet, binding it to the set's Libs it needs.
fn open_in(set: &mut [Lib], i: usize) -> Result<(), LibError> {
    let (bytes, seg, id) = match set[i].read()? {
        Fetch::Ready(b, s, id) => (b, s, id),
        Fetch::Wait(why) => return err(why),
    };
    set[i].seen = Some(id);
    let v = load(set, i, bytes, seg, 1, next_txn(), &[])?;
    set[i].make_current(v);
    Ok(())
}

/// A new version of set[i] from bytes: its soname given a name of its own,
/// its DT_NEEDED naming the copies of the set's Libs it needs (their
/// versions in `fresh` when this transaction loads them), loaded, resolved
/// and accepted; not yet current.
fn load(
    set: &[Lib],
    i: usize,
    mut bytes: Vec<u8>,
    seg: Segments,
    num: i32,
    txn: u64,
    fresh: &[(usize, Version)],
) -> Result<Version, LibError> {
    let lib = &set[i];
    let link = deps::link(set, i, &mut bytes, &seg.dynamic, fresh)?;
    let copy = lib.write_copy(&bytes)?;
    let v = lib.dlopen_copy(copy, seg, num, txn, link)?;
    if let Err(e) = lib.accept(&v) {
        v.close();
        return Err(e);
    }
    Ok(v)
}

/// set[i] updated (with the Libs that need it): how many were reloaded.
fn update_in(set: &mut [Lib], i: usize) -> Result<usize, LibError> {
    match update_inner(set, i) {
        Err(e) => {
            set[i].error = e.0.clone();
            set[i].status = Status::Refused(e.0.clone());
            Err(e)
        }
        Ok(done) => {
            for &k in &done {
                let lib = &mut set[k];
                lib.error.clear();
                lib.status = Status::Updated(lib.version());
                lib.updated = true;
                let v = lib.version();
                if let Some(f) = lib.after.as_mut() {
                    f(v);
                }
            }
            Ok(done.len())
        }
    }
}

/// The Libs reloaded (none: unchanged, awaited or postponed, as set[i]'s
/// status says).
fn update_inner(set: &mut [Lib], i: usize) -> Result<Vec<usize>, LibError> {
    if !set[i].changed() {
        set[i].status = Status::NotChanged;
        return Ok(Vec::new());
    }
    let (bytes, seg, id) = match set[i].read()? {
        Fetch::Ready(b, s, id) => (b, s, id),
        Fetch::Wait(why) => {
            set[i].error = why.clone();
            set[i].status = Status::Waiting(why);
            return Ok(Vec::new());
        }
    };
    let first = Source {
        bytes,
        seg,
        id: Some(id),
    };
    let plan = deps::plan(set, i, first);
    if let Ok(None) = plan {
        return Ok(Vec::new()); // postponed: asked again at the next update
    }
    set[i].seen = Some(id); // tried: not again until it changes
    run_txn(set, plan?.unwrap_or_default())
}

/// Loads every Lib of the plan in order, then makes them all current; or,
/// when one fails, none (the versions loaded go again).
fn run_txn(set: &mut [Lib], plan: Vec<(usize, Source)>) -> Result<Vec<usize>, LibError> {
    let txn = next_txn();
    let mut fresh: Vec<(usize, Version)> = Vec::new();
    let mut ids = Vec::new();
    for (k, src) in plan {
        ids.push((k, src.id));
        match load(set, k, src.bytes, src.seg, set[k].next_num, txn, &fresh) {
            Ok(v) => fresh.push((k, v)),
            Err(e) => {
                for (k, v) in fresh.into_iter().rev() {
                    set[k].unload_hook(&v); // its load hook had accepted
                    v.close();
                }
                for &(k, _) in &ids {
                    set[k].error = e.0.clone();
                }
                return Err(e);
            }
        }
    }
    let mut replaced = Vec::new();
    for (k, v) in fresh {
        if let Some(old) = set[k].make_current(v) {
            replaced.push((k, old));
        }
    }
    for &(k, id) in &ids {
        if id.is_some() {
            set[k].seen = id;
        }
    }
    for (k, old) in replaced.into_iter().rev() {
        set[k].unload_hook(&old);
        set[k].old.push(old);
    }
    Ok(ids.into_iter().map(|(k, _)| k).collect())
}

// ------------------------------------------------------------ hot_module!

/// Typed, callable wrappers for a plugin's functions: the role of
/// hot-lib-reloader's `#[hot_module]` and `hot_functions_from_file!`,
/// with `macro_rules!` only.
///
/// ```ignore
/// rewire::hot_module! {
///     pub mod game("target/debug/libgame.so") {
///         fn step(n: u64) -> u64;
///         unsafe fn draw(state: *mut State);
///     }
/// }
/// game::init(std::ptr::null_mut())?;      // optional: the state the hooks get
/// game::watch(Duration::from_millis(20)); // optional: update from a thread
/// loop {
///     game::update()?;                     // or this, from the host's loop
///     let n = game::step(1);               // always the newest version
/// }
/// ```
///
/// Each declared function must be the plugin's `#[no_mangle] extern "C"`
/// function of that name and type, in every version: the declaration is
/// the promise an `extern` block makes. Declare `unsafe fn` for one whose
/// callers must uphold something (a pointer it reads). A call goes through
/// a trampoline, with no lock: one indirect jump.
///
/// The module also has `init(state)`, `lib()` (the [`Lib`], locked),
/// `update()`, `status()`, `version()`, `was_updated()`, `before_reload(f)`,
/// `after_reload(f)` and `watch(every)`. The library is opened at `init` or
/// at the first use; a failure to open it then panics with the reason.
///
/// Its module `guarded` has the same functions, called through
/// [`Lib::call_shared`]: each returns `Result<R, LibError>`, `Err` when the
/// plugin crashed or panicked in it (the reload that brought the crashing
/// version in is then rolled back) or could not be opened:
/// `game::guarded::step(1)?`.
#[macro_export]
macro_rules! hot_module {
    ($vis:vis mod $m:ident($path:expr) { $($body:tt)* }) => {
        $vis mod $m {
            #[allow(unused_imports)]
            use super::*;
            $crate::__hot_lib!($path);
            $crate::__hot_functions!($($body)*);

            /// The same functions, called through `Lib::call_shared`.
            pub mod guarded {
                #[allow(unused_imports)]
                use super::*;
                $crate::__hot_guarded!($($body)*);
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __hot_lib {
    ($path:expr) => {
        static LIB: ::std::sync::OnceLock<::std::sync::Arc<::std::sync::Mutex<$crate::Lib>>> =
            ::std::sync::OnceLock::new();

        fn open(state: *mut ::std::ffi::c_void) -> Result<&'static ::std::sync::Arc<::std::sync::Mutex<$crate::Lib>>, $crate::LibError> {
            if let Some(l) = LIB.get() {
                return Ok(l);
            }
            let lib = $crate::Lib::open($path, state)?;
            Ok(LIB.get_or_init(|| ::std::sync::Arc::new(::std::sync::Mutex::new(lib))))
        }

        /// Opens the library with the state its hooks get (else the first
        /// use opens it with none).
        #[allow(dead_code)]
        pub fn init(state: *mut ::std::ffi::c_void) -> Result<(), $crate::LibError> {
            open(state).map(|_| ())
        }

        /// The library, locked.
        #[allow(dead_code)]
        pub fn lib() -> ::std::sync::MutexGuard<'static, $crate::Lib> {
            let l = open(::std::ptr::null_mut()).unwrap_or_else(|e| panic!("{e}"));
            l.lock().unwrap_or_else(|p| p.into_inner())
        }

        #[allow(dead_code)]
        pub fn update() -> Result<bool, $crate::LibError> {
            lib().update()
        }

        #[allow(dead_code)]
        pub fn status() -> $crate::Status {
            lib().status().clone()
        }

        #[allow(dead_code)]
        pub fn version() -> i32 {
            lib().version()
        }

        #[allow(dead_code)]
        pub fn was_updated() -> bool {
            lib().was_updated()
        }

        #[allow(dead_code)]
        pub fn before_reload(f: impl FnMut(i32) -> bool + Send + 'static) {
            lib().before_reload(f)
        }

        #[allow(dead_code)]
        pub fn after_reload(f: impl FnMut(i32) + Send + 'static) {
            lib().after_reload(f)
        }

        #[allow(dead_code)]
        pub fn watch(every: ::std::time::Duration) -> ::std::thread::JoinHandle<()> {
            let l = open(::std::ptr::null_mut()).unwrap_or_else(|e| panic!("{e}"));
            $crate::Lib::watch(l, every)
        }

        /// The trampoline of name, looked up once.
        fn try_tramp(
            slot: &::std::sync::atomic::AtomicUsize,
            name: &str,
        ) -> Result<usize, $crate::LibError> {
            let p = slot.load(::std::sync::atomic::Ordering::Acquire);
            if p != 0 {
                return Ok(p);
            }
            let l = open(::std::ptr::null_mut())?;
            // SAFETY: usize is pointer-sized; the caller transmutes it to
            // the declared type.
            let p: usize = unsafe {
                l.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .sym::<usize>(name)
            }?;
            slot.store(p, ::std::sync::atomic::Ordering::Release);
            Ok(p)
        }

        fn tramp(slot: &::std::sync::atomic::AtomicUsize, name: &str) -> usize {
            try_tramp(slot, name).unwrap_or_else(|e| panic!("{e}"))
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __hot_functions {
    () => {};
    ($(#[$a:meta])* unsafe fn $f:ident($($p:ident : $t:ty),* $(,)?) $(-> $r:ty)?; $($rest:tt)*) => {
        $(#[$a])*
        #[allow(dead_code)]
        /// # Safety
        /// As the plugin's function requires.
        pub unsafe fn $f($($p: $t),*) $(-> $r)? {
            static SLOT: ::std::sync::atomic::AtomicUsize = ::std::sync::atomic::AtomicUsize::new(0);
            let at = tramp(&SLOT, stringify!($f));
            // SAFETY: the declaration is the plugin's function's type.
            let f = unsafe { ::std::mem::transmute::<usize, unsafe extern "C" fn($($t),*) $(-> $r)?>(at) };
            unsafe { f($($p),*) }
        }
        $crate::__hot_functions!($($rest)*);
    };
    ($(#[$a:meta])* fn $f:ident($($p:ident : $t:ty),* $(,)?) $(-> $r:ty)?; $($rest:tt)*) => {
        $(#[$a])*
        #[allow(dead_code)]
        pub fn $f($($p: $t),*) $(-> $r)? {
            static SLOT: ::std::sync::atomic::AtomicUsize = ::std::sync::atomic::AtomicUsize::new(0);
            let at = tramp(&SLOT, stringify!($f));
            // SAFETY: the declaration is the plugin's function's type.
            let f = unsafe { ::std::mem::transmute::<usize, extern "C" fn($($t),*) $(-> $r)?>(at) };
            f($($p),*)
        }
        $crate::__hot_functions!($($rest)*);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __hot_guarded {
    () => {};
    ($(#[$a:meta])* unsafe fn $f:ident($($p:ident : $t:ty),* $(,)?) $(-> $r:ty)?; $($rest:tt)*) => {
        $(#[$a])*
        #[allow(dead_code, unused_parens)]
        /// # Safety
        /// As the plugin's function requires.
        pub unsafe fn $f($($p: $t),*) -> ::std::result::Result<($($r)?), $crate::LibError> {
            static SLOT: ::std::sync::atomic::AtomicUsize = ::std::sync::atomic::AtomicUsize::new(0);
            let at = try_tramp(&SLOT, stringify!($f))?;
            // SAFETY: the declaration is the plugin's function's type ("C"
            // may be called as "C-unwind").
            let f = unsafe { ::std::mem::transmute::<usize, unsafe extern "C-unwind" fn($($t),*) $(-> $r)?>(at) };
            $crate::Lib::call_shared(open(::std::ptr::null_mut())?, move || unsafe { f($($p),*) })
        }
        $crate::__hot_guarded!($($rest)*);
    };
    ($(#[$a:meta])* fn $f:ident($($p:ident : $t:ty),* $(,)?) $(-> $r:ty)?; $($rest:tt)*) => {
        $(#[$a])*
        #[allow(dead_code, unused_parens)]
        pub fn $f($($p: $t),*) -> ::std::result::Result<($($r)?), $crate::LibError> {
            static SLOT: ::std::sync::atomic::AtomicUsize = ::std::sync::atomic::AtomicUsize::new(0);
            let at = try_tramp(&SLOT, stringify!($f))?;
            // SAFETY: as above.
            let f = unsafe { ::std::mem::transmute::<usize, extern "C-unwind" fn($($t),*) $(-> $r)?>(at) };
            $crate::Lib::call_shared(open(::std::ptr::null_mut())?, move || f($($p),*))
        }
        $crate::__hot_guarded!($($rest)*);
    };
}
