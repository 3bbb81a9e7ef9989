/* The Rust front-end: cargo with rewire as rustc wrapper and linker. */
#ifndef RW_CARGO_H
#define RW_CARGO_H
#include <stddef.h>
#include "cc.h"

/* rewire replaying a crate's rustc (argv: rewire RUSTC ARGS...). */
int cargo_wrapper_main(int argc, char **argv);
/* rewire as cargo's RUSTC (argv: rewire ARGS..., the real one in REWIRE_RUSTC). */
int cargo_rustc_main(int argc, char **argv);
/* rewire as the crate's linker (REWIRE_LINK_OUT set). */
int cargo_linker_main(int argc, char **argv);
/* cargo build ARGS; the binary's path, and the crate as a unit. */
int cargo_prepare(char **cargo_args, int nargs, char *exe, size_t cap, struct cc_db *db);

#endif
