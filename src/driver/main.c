/* rewire: hot-patch running native programs. The command line. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "driver.h"
#include "front/cargo.h"

#define VERSION "0.1.0"

/* The help of each command: `rewire --help` and `rewire help` show them
 * all, `rewire help COMMAND` and `rewire COMMAND --help` one. */
static const char help_run[] =
	"  rewire run [-v] [--restart] [--no-follow] [--exe EXECUTABLE] [-p BUILD_DIR] [--]\n"
	"             PROGRAM [ARGS...]\n"
	"      Run PROGRAM with rewire's agent inside, so it can be patched while it runs.\n"
	"      With a compile_commands.json (in BUILD_DIR, the current directory or a\n"
	"      parent, or beside PROGRAM), watch the program's sources and headers: each\n"
	"      save is recompiled, diffed and patched in. PROGRAM's output passes\n"
	"      through; rewire exits with its status. --restart: when the program dies of\n"
	"      a crash, start it again with the patches (as built, if it crashes again\n"
	"      within 5 s). Every process forked from PROGRAM is patched too, and one\n"
	"      that runs PROGRAM's executable again gets every patch (--no-follow: not).\n"
	"      --exe: the executable a wrapper script PROGRAM runs with exec. -v: the\n"
	"      patch line names every function patched, not only those of your own\n"
	"      files and crates first and \"and N other instances\".\n"
	"      An aarch64 PROGRAM on x86-64 runs under qemu-aarch64 (qemu-user), its\n"
	"      libraries from $QEMU_LD_PREFIX or /usr/aarch64-linux-gnu.\n"
	"\n"
	"  rewire run [--restart] -- cargo run [CARGO ARGS] [-- PROGRAM ARGS]\n"
	"      Rust: rewire builds with cargo, recording each workspace crate, starts the\n"
	"      binary, and patches each save of any workspace crate.\n"
	"\n"
	"  rewire run [--restart] --watch-objects FILE.o... -- PROGRAM [ARGS...]\n"
	"      The same for any build system: watch the objects your own build\n"
	"      writes (make in another terminal) and patch from them.\n";

static const char help_apply[] =
	"  rewire apply --pid PID FILE.o... [LIBRARY.a|LIBRARY.rlib...]\n"
	"      Link the objects into the running process PID (started by `rewire run`,\n"
	"      or attached with `rewire attach`):\n"
	"      every function they define that the process has is replaced for all\n"
	"      callers, their data binds to the process's live storage, and new code and\n"
	"      data are added. All or nothing: a refused patch changes nothing.\n"
	"      Static libraries given (the program's .a or Rust .rlib): what the objects\n"
	"      need that the program left out is taken from them.\n"
	"      Exit status: 0 applied, 1 refused, 2 usage, 3 bad input file, 4 process\n"
	"      or agent unreachable.\n";

static const char help_attach[] =
	"  rewire attach [-p BUILD_DIR | --watch-objects FILE.o... --] PID\n"
	"  rewire attach PID -- cargo build [CARGO ARGS]\n"
	"      Load rewire's agent into PID, a program started without rewire (ptrace,\n"
	"      then dlopen), and the processes it forked that run the same program;\n"
	"      then watch and patch as `rewire run` does, until Ctrl-C, SIGTERM or the\n"
	"      program's end: the program runs on, with its patches. Without sources\n"
	"      to watch, rewire exits once the agent is in: use `rewire apply`.\n"
	"      Rust: give the cargo arguments PID was built with; rewire builds as\n"
	"      `rewire run -- cargo run` does, and refuses if the binary is not PID's.\n"
	"      Exit status: 0 attached (then detached, or the program ended), 1 refused\n"
	"      (the process is unchanged), 2 usage, 3 bad input file, 4 no such process.\n";

static const char help_status[] =
	"  rewire status [PID]\n"
	"      What a running program holds: its patches in order (when, the functions\n"
	"      each replaced, whether it was rolled back), the versions of each\n"
	"      function, the memory the patches use. Without PID: every process of\n"
	"      yours that runs rewire's agent.\n";

static const char help_revert[] =
	"  rewire revert PID [N]\n"
	"      Take back the newest patch of the program PID belongs to, or every patch\n"
	"      after its patch N (as `rewire status PID` numbers them): each function\n"
	"      runs the version it had before, in every process of the program, and\n"
	"      the hooks are told. The session follows: the next save of a file taken\n"
	"      back patches it again. Exit status: 0 taken back (or nothing to take\n"
	"      back), 1 refused (nothing changed), 2 usage, 4 process unreachable.\n";

static const struct {
	const char *name, *text;
} commands[] = {{"run", help_run}, {"apply", help_apply}, {"attach", help_attach},
		{"status", help_status}, {"revert", help_revert}};

static void show_help(FILE *f, const char *only)
{
	if (!only)
		fputs("usage: rewire COMMAND [ARGS]\n\n", f);
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
		if (only && strcmp(only, commands[i].name))
			continue;
		fputs(commands[i].text, f);
		if (!only)
			fputs("\n", f);
	}
	if (!only)
		fputs("  rewire help [COMMAND] | --help | --version\n", f);
}

static int is_command(const char *name)
{
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(name, commands[i].name))
			return 1;
	return 0;
}

/* `rewire COMMAND ... --help ...`: among the command's own options, before
 * the program and its arguments (`rewire run -- prog --help` runs prog). */
static int asks_help(int argc, char **argv)
{
	for (int i = 2; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
	return 0;
}

int main(int argc, char **argv)
{
	/* A program that dies mid-patch closes the channel: that is an error
	 * to report, not a reason for rewire to die. */
	signal(SIGPIPE, SIG_IGN);
	/* rewire is also cargo's rustc, its replay, and the crates' linker. */
	if (getenv("REWIRE_CARGO") && getenv("REWIRE_RUSTC"))
		return cargo_rustc_main(argc, argv);
	if (getenv("REWIRE_CARGO") && argc > 1)
		return cargo_wrapper_main(argc, argv);
	if (getenv("REWIRE_LINK_OUT"))
		return cargo_linker_main(argc, argv);
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		show_help(argc < 2 ? stderr : stdout, NULL);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc > 2 && !is_command(argv[2])) {
			rw_say_error("no command '%s' (see rewire --help)", argv[2]);
			return EXIT_USAGE;
		}
		show_help(stdout, argc > 2 ? argv[2] : NULL);
		return 0;
	}
	if (is_command(argv[1]) && asks_help(argc, argv)) {
		show_help(stdout, argv[1]);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("rewire %s\n", VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(argv[1], "apply"))
		return cmd_apply(argc - 1, argv + 1);
	if (!strcmp(argv[1], "attach"))
		return cmd_attach(argc - 1, argv + 1);
	if (!strcmp(argv[1], "status"))
		return cmd_status(argc - 1, argv + 1);
	if (!strcmp(argv[1], "revert"))
		return cmd_revert(argc - 1, argv + 1);
	rw_say_error("unknown command '%s' (see rewire --help)", argv[1]);
	return EXIT_USAGE;
}
