/* prefork.c: a server whose answers come from forked processes, as the
 * servers people run do (nginx, Apache prefork, PostgreSQL).
 *
 * A master listens on 127.0.0.1 (port from $PREFORK_PORT, else any) and
 * serves one line per connection: "pid=W v=V served=K\n", W the process
 * that answered, V = handle(), K how many that process served (its own
 * state). $PREFORK_MODE:
 *   steady   3 workers accept on the socket; one that ends is replaced
 *   churn    as steady, and every 10 ms a new worker is forked and the
 *            oldest told to go: workers are forked before, between and
 *            during patches
 *   percon   the master accepts, and forks a child to serve each one
 *   setuid   as steady; started as root, each worker becomes nobody
 *            (uid/gid 65534) right after fork, as servers drop privileges
 *   dropped  as steady; started as root, the master becomes nobody once
 *            it listens, before it forks a worker (as daemons that drop
 *            privileges at start do): every worker is forked by nobody
 *   exec     as steady, and a child that runs another program (sleep),
 *            forked and exec'd: "helper=H"
 *   stopper  as steady; the first worker stops itself (SIGSTOP) as soon
 *            as it is forked, before rewire has asked it anything
 * (@DECLS: where a test adds code, such as a constructor that runs in the
 * master only: getpid() == master.)
 *
 * Output: "pid=P" (the master), "port=N", then "worker=W" for each fork
 * and "crash=W sig=S" for a worker killed by a signal. A worker told to
 * go (SIGTERM) ends quietly. */
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 3
#define MAX_KIDS 64

static int served;
static volatile sig_atomic_t told_to_go;
pid_t master;		/* not static: only written, it would be optimised out */

__attribute__((noinline)) int handle(void)
{
	return 1; /* @HANDLE */
}

/* @DECLS */

static void serve(int fd)
{
	char buf[256];
	/* The request is one line: read it whole before answering. */
	size_t got = 0;
	while (got < sizeof buf - 1) {
		ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
		/* Told to go meanwhile (SIGTERM, no SA_RESTART): this request is
		 * still answered, whole, or the client sees its connection reset. */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	served++;
	int len = snprintf(buf, sizeof buf, "pid=%d v=%d served=%d\n", (int)getpid(), handle(), served);
	if (write(fd, buf, (size_t)len) < 0) {}
	close(fd);
}

static void on_term(int sig)
{
	(void)sig;
	told_to_go = 1;
}

static void drop_privileges(void)
{
	if (geteuid() != 0)
		return;
	if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0) {
		fprintf(stderr, "prefork: cannot become nobody: %s\n", strerror(errno));
		_exit(3);
	}
}

static void worker(int lfd, int setuid_mode)
{
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);	/* no SA_RESTART: accept returns */
	if (setuid_mode)
		drop_privileges();
	while (!told_to_go) {
		int fd = accept(lfd, NULL, NULL);
		if (fd >= 0)
			serve(fd);
	}
	_exit(0);
}

static pid_t kids[MAX_KIDS];
static int nkids;
static int stop_next;	/* the next worker stops itself at once */

static pid_t spawn(int lfd, int setuid_mode)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0 && stop_next)
		raise(SIGSTOP);
	if (pid == 0)
		worker(lfd, setuid_mode);
	stop_next = 0;
	if (pid > 0) {
		kids[nkids++] = pid;
		printf("worker=%d\n", (int)pid);
		fflush(stdout);
	}
	return pid;
}

static void forget(pid_t pid)
{
	for (int i = 0; i < nkids; i++)
		if (kids[i] == pid) {
			memmove(&kids[i], &kids[i + 1], (size_t)(nkids - i - 1) * sizeof *kids);
			nkids--;
			return;
		}
}

/* Reap the ended; 1 when one was a worker of ours. */
static int reap(void)
{
	int status, any = 0;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGTERM) {
			printf("crash=%d sig=%d\n", (int)pid, WTERMSIG(status));
			fflush(stdout);
		}
		forget(pid);
		any = 1;
	}
	return any;
}

static void per_connection(int lfd)
{
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		reap();
		if (fd < 0)
			continue;
		pid_t pid = fork();
		if (pid == 0) {
			close(lfd);
			serve(fd);
			_exit(0);
		}
		close(fd);
	}
}

int main(void)
{
	const char *mode = getenv("PREFORK_MODE");
	const char *port = getenv("PREFORK_PORT");
	if (!mode)
		mode = "steady";
	int churn = !strcmp(mode, "churn"), setuid_mode = !strcmp(mode, "setuid");
	stop_next = !strcmp(mode, "stopper");
	master = getpid();
	signal(SIGPIPE, SIG_IGN);
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port ? (unsigned short)atoi(port) : 0)};
	socklen_t len = sizeof sa;
	if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 128) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) < 0) {
		fprintf(stderr, "prefork: %s\n", strerror(errno));
		return 1;
	}
	printf("pid=%d\nport=%d\n", (int)getpid(), ntohs(sa.sin_port));
	fflush(stdout);
	if (!strcmp(mode, "dropped"))
		drop_privileges();
	if (!strcmp(mode, "percon"))
		per_connection(lfd);
	if (!strcmp(mode, "exec")) {
		pid_t h = fork();
		if (h == 0) {
			execlp("sleep", "sleep", "1000", (char *)NULL);
			_exit(127);
		}
		printf("helper=%d\n", (int)h);
		fflush(stdout);
	}
	for (;;) {
		while (nkids < WORKERS)
			if (spawn(lfd, setuid_mode) < 0)
				break;
		struct timespec t = {0, churn ? 10000000 : 20000000};
		nanosleep(&t, NULL);
		reap();
		if (churn && nkids == WORKERS && spawn(lfd, setuid_mode) > 0)
			kill(kids[0], SIGTERM), forget(kids[0]);
	}
}
