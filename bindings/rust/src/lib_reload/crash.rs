//! Crashes in library code, for [`Lib::call`] and [`Libs::call`]: what a
//! crash the guard caught (crate::lib_guard) says, and the rollback of the
//! reload that loaded the version that crashed. The Rust side of
//! src/api/crash.c.
use super::*;
use crate::lib_guard::{Caught, SIGABRT, SIGBUS, SIGSEGV};

#[repr(C)]
struct DlInfo {
    fname: *const c_char,
    fbase: usize,
    sname: *const c_char,
    saddr: usize,
}

extern "C" {
    fn dladdr(addr: *const c_void, info: *mut DlInfo) -> c_int;
}

/// f() guarded, for set (called: the Lib it was called on, if one).
pub(super) fn call_in<R>(
    set: &mut [Lib],
    called: Option<usize>,
    f: impl FnOnce() -> R,
) -> Result<R, LibError> {
    match lib_guard::run(f) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(c)) => Err(on_crash(set, called, &c)),
        Err(why) => {
            let who = called.map_or("rewire::Libs::call".into(), |i| set[i].name.clone());
            let e = format!("{who}: cannot guard the call ({why}): not called");
            if let Some(i) = called {
                set[i].error = e.clone();
            }
            err(e)
        }
    }
}

pub(super) fn call_shared<R>(lib: &Mutex<Lib>, f: impl FnOnce() -> R) -> Result<R, LibError> {
    let caught = match lib_guard::run(f) {
        Ok(Ok(r)) => return Ok(r),
        Ok(Err(c)) => Ok(c),
        Err(why) => Err(why),
    };
    let mut l = lib.lock().unwrap_or_else(|p| p.into_inner());
    match caught {
        Ok(c) => Err(on_crash(std::slice::from_mut(&mut *l), Some(0), &c)),
        Err(why) => {
            let e = format!("{}: cannot guard the call ({why}): not called", l.name);
            l.error = e.clone();
            err(e)
        }
    }
}

/// A hook of v, guarded when the handlers can be installed (else as
/// before there was a guard): what it returned, or how it crashed.
pub(super) fn hook<R>(v: &Version, f: impl FnOnce() -> R) -> Result<R, String> {
    if lib_guard::install().is_err() {
        return Ok(f());
    }
    match lib_guard::run(f) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(c)) => Err(describe(&c, Some(v))),
        Err(why) => Err(why),
    }
}

/// The Lib of the set and the version whose code holds pc.
fn version_at(set: &[Lib], pc: usize) -> Option<(usize, &Version)> {
    set.iter().enumerate().find_map(|(k, l)| {
        l.cur
            .iter()
            .chain(l.old.iter())
            .find(|v| v.has_code(pc))
            .map(|v| (k, v))
    })
}

fn on_crash(set: &mut [Lib], called: Option<usize>, c: &Caught) -> LibError {
    let found = version_at(set, c.culprit).map(|(k, v)| (k, v.num, describe(c, Some(v))));
    let msg = match found {
        None => format!(
            "library code crashed: {} (not a version of {}: nothing rolled back)",
            describe(c, None),
            called.map_or("these libraries".into(), |i| set[i].name.clone())
        ),
        Some((k, num, why)) => {
            let mut m = format!("{} version {num} crashed: {why}", set[k].name);
            if set[k].version() == num {
                rollback(set, k, &mut m);
            } else {
                m.push_str(" (not the current version: nothing to roll back)");
            }
            set[k].error = m.clone();
            set[k].status = Status::Crashed(m.clone());
            m
        }
    };
    if let Some(i) = called {
        set[i].error = msg.clone();
        set[i].status = Status::Crashed(msg.clone());
    }
    let _ = writeln!(std::io::stderr(), "rewire: {msg}");
    LibError(msg)
}

fn is_bad(lib: &Lib, num: i32) -> bool {
    lib.cur
        .iter()
        .chain(lib.old.iter())
        .any(|v| v.num == num && v.bad)
}

/// Roll back the reload that brought set[k]'s current version in: every
/// Lib it reloaded, and those bound to one undone, go back to their
/// versions before it; say so in msg.
fn rollback(set: &mut [Lib], k: usize, msg: &mut String) {
    let Some(txn) = set[k].cur.as_ref().map(|v| v.txn) else {
        return;
    };
    let mut undo = vec![false; set.len()];
    undo[k] = true;
    loop {
        let more: Vec<usize> = (0..set.len())
            .filter(|&j| !undo[j])
            .filter(|&j| {
                set[j].cur.as_ref().is_some_and(|c| {
                    c.txn == txn
                        || c.link.bound.iter().any(|&(l, num)| {
                            (undo[l] && set[l].version() == num) || is_bad(&set[l], num)
                        })
                })
            })
            .collect();
        if more.is_empty() {
            break;
        }
        more.into_iter().for_each(|j| undo[j] = true);
    }
    for (j, lib) in set.iter_mut().enumerate() {
        if let (true, Some(c)) = (undo[j], lib.cur.as_mut()) {
            c.bad = true; // not gone back to, and its file not loaded again until it changes
        }
    }
    for (j, lib) in set.iter_mut().enumerate() {
        if undo[j] {
            go_back(lib, txn, msg);
        }
    }
}

/// lib's current version replaced by the newest one loaded before
/// transaction txn that can run.
fn go_back(lib: &mut Lib, txn: u64, msg: &mut String) {
    let to = (0..lib.old.len())
        .filter(|&i| lib.old[i].txn < txn && !lib.old[i].bad)
        .max_by_key(|&i| lib.old[i].txn);
    let Some(to) = to else {
        msg.push_str(&format!(
            "; {} has no earlier version to go back to: version {} stays",
            lib.name,
            lib.version()
        ));
        return;
    };
    let to = lib.old.remove(to);
    let missing = lib
        .syms
        .iter()
        .filter(|(n, _)| to.own(n, true).is_none())
        .count();
    if let Some(bad) = lib.make_current(to) {
        lib.old.push(bad); // a thread may still run in it
    }
    let num = lib.version();
    msg.push_str(&format!(
        "; {} rolled back to version {num}{}",
        lib.name,
        if missing > 0 {
            " (some of its functions are newer: they stay)"
        } else {
            ""
        }
    ));
    if let Some(cur) = lib.cur.as_ref() {
        let _ = lib.load_hook(cur); // it accepted once; it hears of coming back
    }
    lib.updated = true;
    if let Some(f) = lib.after.as_mut() {
        f(num);
    }
}

/// What a crash was: the signal (or a panic), where, the bad address.
fn describe(c: &Caught, v: Option<&Version>) -> String {
    let trail = &c.trail[..c.ntrail.min(c.trail.len())];
    let place = place(c.culprit, trail);
    let mut s = if c.sig == SIGABRT && v.is_some_and(|v| panicked(v, trail)) {
        format!("a panic (SIGABRT){place}")
    } else {
        format!("{}{place}", lib_guard::signal_name(c.sig))
    };
    if c.sig == SIGSEGV || c.sig == SIGBUS {
        s.push_str(&format!(", bad address {:#x}", c.addr));
    }
    s
}

fn dl_info(a: usize) -> Option<DlInfo> {
    let mut di = DlInfo {
        fname: std::ptr::null(),
        fbase: 0,
        sname: std::ptr::null(),
        saddr: 0,
    };
    // SAFETY: dladdr only reads the loader's tables.
    (unsafe { dladdr(a as *const c_void, &mut di) } != 0 && !di.fname.is_null()).then_some(di)
}

/// " in step+0x1c": the innermost exported function of the culprit's
/// library on the way to the fault; else its offset in the file.
fn place(culprit: usize, trail: &[usize]) -> String {
    let Some(home) = dl_info(culprit) else {
        return String::new();
    };
    for &a in trail.iter().chain([&culprit]) {
        if let Some(di) = dl_info(a).filter(|d| d.fbase == home.fbase && !d.sname.is_null()) {
            // SAFETY: dladdr's name, NUL-terminated.
            let name = unsafe { CStr::from_ptr(di.sname) }.to_string_lossy();
            return format!(" in {name}+{:#x}", a - di.saddr);
        }
    }
    format!(" at offset {:#x} of its file", culprit - home.fbase)
}

/// Whether the version's own symbols (.symtab, when not stripped) put a
/// panic on the way to the abort: core's or std's `panicking`, or the
/// start of an unwind.
fn panicked(v: &Version, trail: &[usize]) -> bool {
    let Ok(b) = fs::read(&v.copy) else {
        return false;
    };
    let h = |off: u64, n| rd(&b, off, n).unwrap_or(0);
    let (shoff, shnum) = (h(40, 8), h(60, 2));
    let addrs: Vec<u64> = trail
        .iter()
        .map(|&a| a.wrapping_sub(v.base) as u64)
        .collect();
    for i in 0..shnum {
        let s = shoff + i * 64;
        if h(s + 4, 4) != 2 {
            continue; // SHT_SYMTAB
        }
        let (off, size, link) = (h(s + 24, 8), h(s + 32, 8), h(s + 40, 4));
        let stroff = h(shoff + link * 64 + 24, 8);
        for k in 0..size / 24 {
            let e = off + k * 24;
            let (name, value, sz) = (h(e, 4), h(e + 8, 8), h(e + 16, 8));
            if h(e + 4, 1) & 0xf != 2 || !addrs.iter().any(|&a| a >= value && a - value < sz) {
                continue; // not a function holding one of the addresses
            }
            let start = (stroff + name) as usize;
            let text = b.get(start..).unwrap_or(&[]);
            let text = &text[..text.iter().position(|&c| c == 0).unwrap_or(0)];
            let has = |w: &[u8]| text.windows(w.len()).any(|x| x == w);
            if has(b"9panicking") || has(b"rust_start_panic") || has(b"panic_cannot_unwind") {
                return true;
            }
        }
    }
    false
}
