//! Libraries that use each other, in [`Libs`]: what a file's dynamic
//! section says (its soname, its DT_NEEDED), the copies' names, the order
//! of a reload, and the set itself. The Rust side of src/api/reload.c and
//! of the binding in src/api/version.c.
//!
//! What it relies on (glibc's loader): a DT_NEEDED names a library by its
//! soname, and glibc binds it to the first loaded object with that soname;
//! with two versions of a dependency loaded, that is the old one. So each
//! copy's soname is rewritten in place to a name of the same length that no
//! other object has (`^` and a process-wide counter over its first four
//! bytes), and a dependent's copy gets that name in its DT_NEEDED: glibc
//! binds it to exactly that copy, already loaded (copies are loaded
//! RTLD_LOCAL). The original files are never changed.
use super::*;

const HEAD: usize = 4; // bytes of a soname rewritten
static TOKENS: AtomicUsize = AtomicUsize::new(0);

/// A string of .dynstr: where its bytes are in the file, its offset in
/// .dynstr, and what it says.
#[derive(Clone, Default)]
pub(super) struct DynStr {
    off: usize,
    strx: u64,
    text: Vec<u8>,
}

/// What the dynamic section says, as built.
#[derive(Default)]
pub(super) struct Dynamic {
    soname: Option<DynStr>,
    needed: Vec<DynStr>,
    used: Vec<u64>, // .dynstr offsets of every name the loader reads
}

/// How a version's copy differs from its file, and what it was bound to.
#[derive(Default)]
pub(super) struct Link {
    patches: Vec<(usize, [u8; HEAD])>, // offset, the file's bytes there
    token: Option<Vec<u8>>,            // its soname as written in the copy
    pub(super) bound: Vec<(usize, i32)>, // the versions (Lib in the set, number) it needs
}

/// The dynamic section of b, as far as it can be read (b has passed
/// elf_check's bounds on headers and segments; each string is checked).
pub(super) fn elf_dynamic(b: &[u8]) -> Dynamic {
    let h = |off: u64, n| rd(b, off, n).unwrap_or(0);
    let (phoff, phnum) = (h(32, 8), h(56, 2));
    let mut loads = Vec::new();
    let mut dynseg = None;
    for i in 0..phnum {
        let p = phoff + i * 56;
        let (ty, off, va, filesz) = (h(p, 4), h(p + 8, 8), h(p + 16, 8), h(p + 32, 8));
        if ty == 1 {
            loads.push((va, off, filesz));
        } else if ty == 2 {
            dynseg = Some((off, filesz));
        }
    }
    let mut d = Dynamic::default();
    let Some((doff, dsz)) = dynseg else {
        return d;
    };
    let entries: Vec<(u64, u64)> = (0..dsz / 16)
        .map(|i| (h(doff + i * 16, 8), h(doff + i * 16 + 8, 8)))
        .take_while(|e| e.0 != 0)
        .collect();
    let tag = |t| entries.iter().find(|e| e.0 == t).map(|e| e.1);
    let file_off = |va: u64| {
        loads
            .iter()
            .find(|&&(v, _, fs)| va >= v && va - v < fs)
            .map(|&(v, o, _)| o + (va - v))
    };
    let (Some(stroff), Some(strsz)) = (tag(5).and_then(file_off), tag(10)) else {
        return d;
    };
    let string = |x: u64| -> Option<DynStr> {
        let start = usize::try_from(stroff.checked_add(x)?).ok()?;
        let end = usize::try_from(stroff.checked_add(strsz)?)
            .ok()?
            .min(b.len());
        let len = b.get(start..end)?.iter().position(|&c| c == 0)?;
        Some(DynStr {
            off: start,
            strx: x,
            text: b[start..start + len].to_vec(),
        })
    };
    for &(t, v) in &entries {
        match t {
            1 => d.needed.extend(string(v)),
            14 => d.soname = string(v),
            _ => {}
        }
        if matches!(t, 1 | 14 | 15 | 29) {
            d.used.push(v); // DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH
        }
    }
    d.used.extend(dynsym_names(b));
    d
}

/// The name offsets of .dynsym's symbols (from the section headers).
fn dynsym_names(b: &[u8]) -> Vec<u64> {
    let h = |off: u64, n| rd(b, off, n).unwrap_or(0);
    let (shoff, shnum) = (h(40, 8), h(60, 2));
    let mut names = Vec::new();
    for i in 0..shnum {
        let s = shoff + i * 64;
        if h(s + 4, 4) != 11 {
            continue; // SHT_DYNSYM
        }
        let (off, size) = (h(s + 24, 8), h(s + 32, 8));
        names.extend((0..size / 24).map(|k| h(off + k * 24, 4)));
    }
    names
}

/// Rewriting the first bytes of the string at strx would change another
/// name that is a suffix of it (linkers merge string tails).
fn tail_shared(d: &Dynamic, strx: u64) -> bool {
    d.used.iter().any(|&o| o > strx && o < strx + HEAD as u64)
}

fn patch(l: &mut Link, bytes: &mut [u8], off: usize, head: &[u8]) {
    let mut orig = [0u8; HEAD];
    orig.copy_from_slice(&bytes[off..off + HEAD]);
    bytes[off..off + HEAD].copy_from_slice(&head[..HEAD]);
    l.patches.push((off, orig));
}

/// A soname no other object has, of the same length.
fn give_token(l: &mut Link, bytes: &mut [u8], d: &Dynamic) {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let Some(so) = &d.soname else {
        return; // no soname: nothing can name it
    };
    if so.text.len() < HEAD || tail_shared(d, so.strx) {
        return;
    }
    let k = TOKENS.fetch_add(1, Ordering::Relaxed);
    if k >= 62 * 62 * 62 {
        return;
    }
    let head = [b'^', DIGITS[k / 3844], DIGITS[k / 62 % 62], DIGITS[k % 62]];
    patch(l, bytes, so.off, &head);
    let mut t = so.text.clone();
    t[..HEAD].copy_from_slice(&head);
    l.token = Some(t);
}

fn soname_of(lib: &Lib) -> Option<&[u8]> {
    let so = lib.cur.as_ref()?.seg.dynamic.soname.as_ref()?;
    Some(so.text.as_slice())
}

/// The DT_NEEDED n of set[i]'s new copy names the copy of the set's Lib
/// it means, if it means one.
fn bind(
    set: &[Lib],
    i: usize,
    (l, bytes, d): (&mut Link, &mut [u8], &Dynamic),
    n: &DynStr,
    fresh: &[(usize, Version)],
) -> Result<(), LibError> {
    let (lib, text) = (&set[i], String::from_utf8_lossy(&n.text));
    let Some(k) = (0..set.len()).find(|&k| k != i && soname_of(&set[k]) == Some(&n.text)) else {
        let by_file = (0..set.len()).find(|&k| {
            k != i
                && set[k].cur.is_some()
                && set[k].path.file_name().map(|f| f.as_encoded_bytes()) == Some(&n.text)
        });
        return match by_file {
            Some(k) => err(format!(
                "{} needs {text}, which has no DT_SONAME (or another): link {} with -Wl,-soname,{text} \
                 so that each version of {} can be bound to its copy",
                lib.name, set[k].name, lib.name
            )),
            None => Ok(()), // not a library reloaded here
        };
    };
    let fresh_k = fresh.iter().find(|(f, _)| *f == k).map(|(_, v)| v);
    let Some(to) = fresh_k.or(set[k].cur.as_ref()) else {
        return Ok(());
    };
    let Some(token) = to.link.token.as_ref().filter(|t| t.len() == n.text.len()) else {
        return err(format!(
            "{} needs {}, whose copy could not be given a name of its own",
            lib.name, set[k].name
        ));
    };
    if tail_shared(d, n.strx) {
        return err(format!(
            "{}: the name {text} in its DT_NEEDED shares bytes with another name: cannot make it \
             name the copy of {}",
            lib.name, set[k].name
        ));
    }
    let head = token[..HEAD].to_vec();
    patch(l, bytes, n.off, &head);
    l.bound.push((k, to.num));
    Ok(())
}

/// set[i]'s new copy, in bytes, given a soname of its own and bound to the
/// copies of the set's Libs it needs.
pub(super) fn link(
    set: &[Lib],
    i: usize,
    bytes: &mut [u8],
    d: &Dynamic,
    fresh: &[(usize, Version)],
) -> Result<Link, LibError> {
    let mut l = Link::default();
    give_token(&mut l, bytes, d);
    for n in &d.needed {
        bind(set, i, (&mut l, bytes, d), n, fresh)?;
    }
    Ok(l)
}

/// A version's bytes as built: its copy with the names put back.
fn pristine(lib: &Lib) -> Result<Source, LibError> {
    let Some(v) = lib.cur.as_ref() else {
        return err(format!("{}: not loaded", lib.name));
    };
    let mut bytes = fs::read(&v.copy).map_err(|e| {
        LibError(format!(
            "{}: cannot read {}: {e}",
            lib.name,
            v.copy.display()
        ))
    })?;
    for (off, orig) in &v.link.patches {
        if let Some(s) = bytes.get_mut(*off..off + HEAD) {
            s.copy_from_slice(orig);
        }
    }
    let seg = elf_check(&bytes).map_err(|why| LibError(format!("{}: {why}", v.copy.display())))?;
    Ok(Source {
        bytes,
        seg,
        id: None,
    })
}

/// x (its dynamic section d) needs y: names y's soname.
fn needs(d: &Dynamic, y: &Lib) -> bool {
    let Some(so) = soname_of(y) else {
        return false;
    };
    d.needed.iter().any(|n| n.text == so)
}

/// set[i] and every Lib of the set that needs it, directly or not.
fn dependents(set: &[Lib], i: usize) -> Vec<usize> {
    let mut out = vec![i];
    loop {
        let more: Vec<usize> = (0..set.len())
            .filter(|k| !out.contains(k))
            .filter(|&k| {
                let Some(c) = set[k].cur.as_ref() else {
                    return false;
                };
                out.iter().any(|&m| needs(&c.seg.dynamic, &set[m]))
            })
            .collect();
        if more.is_empty() {
            return out;
        }
        out.extend(more);
    }
}

/// What a Lib of the set is (about to be): its dynamic section.
type DynamicOf<'d> = dyn Fn(usize) -> Option<&'d Dynamic> + 'd;

/// members ordered so that each comes after those it needs (dynamic(k):
/// what k is about to be). A cycle is refused, naming a Lib in it.
fn order<'d>(
    set: &[Lib],
    members: &[usize],
    dynamic: &DynamicOf<'d>,
) -> Result<Vec<usize>, LibError> {
    type Cx<'a, 'd> = (&'a [Lib], &'a [usize], &'a DynamicOf<'d>);
    fn visit<'d>(
        k: usize,
        cx: Cx<'_, 'd>,
        mark: &mut Vec<(usize, u8)>,
        out: &mut Vec<usize>,
    ) -> Result<(), LibError> {
        let (set, members, dynamic) = cx;
        match mark.iter().find(|m| m.0 == k).map(|m| m.1) {
            Some(2) => return Ok(()),
            Some(_) => return err(format!(
                "{}: its libraries depend on each other in a cycle: cannot reload them in order",
                set[k].name
            )),
            None => mark.push((k, 1)),
        }
        for &j in members {
            if j != k && dynamic(k).is_some_and(|d| needs(d, &set[j])) {
                visit(j, cx, mark, out)?;
            }
        }
        if let Some(m) = mark.iter_mut().find(|m| m.0 == k) {
            m.1 = 2;
        }
        out.push(k);
        Ok(())
    }
    let (mut mark, mut out) = (Vec::new(), Vec::new());
    for &k in members {
        visit(k, (set, members, dynamic), &mut mark, &mut out)?;
    }
    Ok(out)
}

/// Every Lib of the set, dependencies first (by what they are now); index
/// order when they form a cycle.
fn all_in_order(set: &[Lib]) -> Vec<usize> {
    let all: Vec<usize> = (0..set.len()).collect();
    let now = |k: usize| set[k].cur.as_ref().map(|v| &v.seg.dynamic);
    order(set, &all, &now).unwrap_or(all)
}

/// What a reload of set[i] (from first, its file just read) loads, in
/// order: set[i] and the Libs that need it, each from its file when that
/// changed and is complete, else from the bytes its current version was
/// made from. None when a before_reload callback postpones it.
pub(super) fn plan(
    set: &mut [Lib],
    i: usize,
    first: Source,
) -> Result<Option<Vec<(usize, Source)>>, LibError> {
    let members = dependents(set, i);
    let mut srcs = vec![(i, first)];
    for &k in &members[1..] {
        let fresh = match set[k].changed() {
            true => match set[k].read() {
                Ok(Fetch::Ready(bytes, seg, id)) => Some(Source {
                    bytes,
                    seg,
                    id: Some(id),
                }),
                _ => None,
            },
            false => None,
        };
        let src = match fresh {
            Some(s) => s,
            None => pristine(&set[k])?,
        };
        srcs.push((k, src));
    }
    let dynamic = |k: usize| srcs.iter().find(|s| s.0 == k).map(|s| &s.1.seg.dynamic);
    let ord = order(set, &members, &dynamic)?;
    let mut planned = Vec::new();
    for k in ord {
        if let Some(p) = srcs.iter().position(|s| s.0 == k) {
            planned.push(srcs.swap_remove(p));
        }
    }
    for (k, _) in &planned {
        let num = set[*k].next_num;
        if let Some(f) = set[*k].before.as_mut() {
            if !f(num) {
                set[i].status = Status::Postponed;
                return Ok(None);
            }
        }
    }
    Ok(Some(planned))
}

// -------------------------------------------------------------- Libs

/// Libraries that may use each other, reloaded together: the role of the
/// C library's list of open libraries (include/rewire_lib.h).
///
/// Open a library before those that use it. When one is reloaded, every
/// `Lib` of the set that needs it (its `DT_NEEDED` names the library's
/// soname) is reloaded with it, after it, in one transaction: all load and
/// accept, or none. A crash in [`Libs::call`] rolls back every `Lib` the
/// crashing version's reload brought in, and those bound to it.
///
/// ```no_run
/// # use std::ffi::c_void;
/// let mut libs = rewire::Libs::new();
/// let physics = libs.open("target/debug/libphysics.so", std::ptr::null_mut())?;
/// let game = libs.open("target/debug/libgame.so", std::ptr::null_mut())?;
/// // SAFETY: the plugin's `frame` has this signature.
/// let frame: extern "C" fn(u64) -> u64 = unsafe { libs.sym(game, "frame")? };
/// loop {
///     libs.update_all()?;               // dependencies first
///     let n = libs.call(|| frame(1))?;  // a crash rolls back
/// #   break;
/// }
/// # Ok::<(), rewire::LibError>(())
/// ```
#[derive(Default)]
pub struct Libs {
    libs: Vec<Lib>,
}

impl Libs {
    pub fn new() -> Libs {
        Libs::default()
    }

    /// Opens `path` as [`Lib::open`] does, bound to the Libs of the set it
    /// needs: its index in the set.
    pub fn open(&mut self, path: impl AsRef<Path>, state: *mut c_void) -> Result<usize, LibError> {
        self.libs.push(Lib::new(path.as_ref(), state));
        let i = self.libs.len() - 1;
        if let Err(e) = open_in(&mut self.libs, i) {
            self.libs.pop();
            return Err(e);
        }
        Ok(i)
    }

    /// The `Lib` at index i (from [`Libs::open`]).
    pub fn get(&self, i: usize) -> Option<&Lib> {
        self.libs.get(i)
    }

    /// The `Lib` at index i, for its callbacks. Reload it through the set
    /// ([`Libs::update`]), so that the Libs that need it come along.
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Lib> {
        self.libs.get_mut(i)
    }

    pub fn len(&self) -> usize {
        self.libs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.libs.is_empty()
    }

    /// [`Lib::sym`] of the `Lib` at index i.
    ///
    /// # Safety
    /// As for [`Lib::sym`]; the pointer must not be called after the set
    /// is dropped.
    pub unsafe fn sym<F: Copy>(&mut self, i: usize, name: &str) -> Result<F, LibError> {
        match self.libs.get_mut(i) {
            // SAFETY: the caller's promise, passed on.
            Some(lib) => unsafe { lib.sym(name) },
            None => err(format!("no library {i} in the set")),
        }
    }

    /// Reloads the `Lib` at index i when its file changed, with the Libs
    /// that need it: as [`Lib::update`].
    pub fn update(&mut self, i: usize) -> Result<bool, LibError> {
        if i >= self.libs.len() {
            return err(format!("no library {i} in the set"));
        }
        update_in(&mut self.libs, i).map(|n| n > 0)
    }

    /// Updates every `Lib` of the set, dependencies first: how many were
    /// reloaded. When some failed, `Err` says why for each (each one's
    /// [`Lib::error`] too); the others were reloaded.
    pub fn update_all(&mut self) -> Result<usize, LibError> {
        let (mut n, mut why) = (0, Vec::new());
        for i in all_in_order(&self.libs) {
            match update_in(&mut self.libs, i) {
                Ok(k) => n += k,
                Err(e) => why.push(e.0),
            }
        }
        if why.is_empty() {
            Ok(n)
        } else {
            err(why.join("; "))
        }
    }

    /// `f()`, guarded, as [`Lib::call`]: a crash in any `Lib` of the set
    /// rolls back the reload that brought the crashing version in, with
    /// every `Lib` it reloaded and those bound to them.
    pub fn call<R>(&mut self, f: impl FnOnce() -> R) -> Result<R, LibError> {
        crash::call_in(&mut self.libs, None, f)
    }

    /// [`Lib::unload_old`] for every `Lib`, dependents first: how many
    /// images glibc kept.
    pub fn unload_old(&mut self) -> usize {
        let order = all_in_order(&self.libs);
        order.iter().rev().map(|&i| self.libs[i].unload_old()).sum()
    }
}

impl Drop for Libs {
    /// Dependents first.
    fn drop(&mut self) {
        let order = all_in_order(&self.libs);
        let mut libs: Vec<Option<Lib>> = self.libs.drain(..).map(Some).collect();
        for i in order.into_iter().rev() {
            drop(libs[i].take());
        }
    }
}
