// rust_plugin: the cdylib rust_host reloads (tests/e2e/dylib.sh edits it at
// the markers: BODY, and SIG for step's signature). step counts its calls
// in the host's state; the load hook records the version it is given.
use std::ffi::{c_int, c_void};

#[repr(C)]
pub struct State {
    count: i64,
    loaded: i32,
    loads: i32,
}

/// # Safety
/// state is the host's State.
#[no_mangle]
pub unsafe extern "C" fn step(state: *mut c_void, n: i64) -> i64 { /* @SIG */
    let s = unsafe { &mut *(state as *mut State) };
    s.count += 1;
    n * 2 /* @BODY */
}

/// # Safety
/// state is the host's State.
#[no_mangle]
pub unsafe extern "C" fn rewire_lib_load(state: *mut c_void, version: c_int) -> c_int {
    let s = unsafe { &mut *(state as *mut State) };
    s.loaded = version;
    s.loads += 1;
    0
}
