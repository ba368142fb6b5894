/* SPDX-License-Identifier: MIT */
/*
 * The keeper (see keeper.h).
 *
 * Its protocol is two requests on a SOCK_SEQPACKET connection, one datagram each way:
 *   "GET"                  -> "FDS PID\n" + one label per line, the fds attached in order
 *   "PUT\n" + labels + fds -> "OK PID"
 * PID is the keeper's own (SO_PEERCRED would name the daemon that created the socket). The fds
 * travel through common/fdpass.c; fetch_on(), store_on() and serve_one() speak the protocol on
 * any connected socket (tests/test-keeper.c drives them over a socketpair).
 * The keeper is started by fork() and exec() of the daemon's own executable, not by fork()
 * alone: it then carries none of the daemon's memory (and no tool that runs the daemon, such
 * as valgrind, follows it). It needs no more than the fds it holds, its socket and a timer:
 * the daemon it serves is watched by polling its pid once a second (with its start time, so
 * a reused pid does not fool it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fdpass.h"
#include "common/log.h"
#include "common/proc.h"
#include "daemon/restart/keeper.h"

#define MSG_MAX (KEEPER_FDS_MAX * (DT_LABEL_MAX + 1) + 16)

_Static_assert(KEEPER_FDS_MAX <= FDPASS_FDS_MAX, "one datagram carries all the held fds");

void keeper_fds_close(struct keeper_fds *fds)
{
	for (size_t i = 0; i < fds->n; i++)
		close(fds->fds[i]);
	fds->n = 0;
}

static int socket_path(const char *dir, struct sockaddr_un *addr)
{
	*addr = (struct sockaddr_un){ .sun_family = AF_UNIX };
	if (snprintf(addr->sun_path, sizeof(addr->sun_path), "%s/smhd.keeper", dir) >=
	    (int)sizeof(addr->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

static int send_text(int sock, const char *text, const int *fds, size_t n_fds)
{
	return fdpass_send(sock, text, strlen(text), fds, n_fds);
}

/*
 * Receives one datagram, NUL-terminated into @text (@size bytes), and the fds it carries into
 * @fds (the caller owns them then); when @fds is NULL, a datagram with fds is refused. Returns
 * the text's length or a negative errno (no fd left open).
 */
static int recv_text(int sock, char *text, size_t size, struct keeper_fds *fds)
{
	size_t n_none;
	ssize_t n = fds ? fdpass_recv(sock, text, size - 1, fds->fds, KEEPER_FDS_MAX, &fds->n, NULL)
			: fdpass_recv(sock, text, size - 1, NULL, 0, &n_none, NULL);

	text[n < 0 ? 0 : n] = '\0';
	return (int)n;
}

/* Labels one per line after the first line of @text; as many as there are fds. */
static int parse_names(char *text, struct keeper_fds *fds)
{
	char *save, *line = strtok_r(text, "\n", &save);
	size_t i = 0;

	for (line = strtok_r(NULL, "\n", &save); line && i < fds->n;
	     line = strtok_r(NULL, "\n", &save))
		snprintf(fds->names[i++], DT_LABEL_MAX, "%s", line);
	return i == fds->n && !line ? 0 : -EPROTO;
}

static void format_names(const struct keeper_fds *fds, const char *head, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "%s", head);

	for (size_t i = 0; i < fds->n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "\n%s", fds->names[i]);
}

/* ---------------------------------------------------------------- the daemon's side */

static int connect_keeper(const char *dir)
{
	struct sockaddr_un addr;
	int sock, ret = socket_path(dir, &addr);

	if (ret < 0)
		return ret;
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	if (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		ret = -errno;
		close(sock);
		return ret;
	}
	/* The memfds go only to a keeper of ours, and a silent one cannot hang the start. */
	{
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct timeval tv = { .tv_sec = 2 };

		if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    (cred.uid != geteuid() && cred.uid != 0)) {
			log_warning("%s is not smhd's keeper (uid %u): ignored", addr.sun_path,
				    (unsigned)cred.uid);
			close(sock);
			return -EPERM;
		}
		setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	return sock;
}

/* GET on @sock: the keeper's fds into @fds (the caller owns them), its pid into *pidp. */
static int fetch_on(int sock, char *text, struct keeper_fds *fds, pid_t *pidp)
{
	int pid = 0, ret = send_text(sock, "GET", NULL, 0);

	fds->n = 0;
	if (ret == 0)
		ret = recv_text(sock, text, MSG_MAX, fds);
	if (ret >= 0 &&
	    (sscanf(text, "FDS %d", &pid) != 1 || pid <= 0 || parse_names(text, fds) < 0)) {
		keeper_fds_close(fds);
		ret = -EPROTO;
	}
	if (ret < 0)
		return ret;
	*pidp = pid;
	return 0;
}

int keeper_fetch(const char *dir, struct keeper_fds *fds, pid_t *pidp)
{
	char *text = malloc(MSG_MAX);
	int sock = connect_keeper(dir), ret;

	fds->n = 0;
	if (!text || sock < 0) {
		free(text);
		if (sock >= 0)
			close(sock);
		return sock == -ENOENT || sock == -ECONNREFUSED ? 0 : sock < 0 ? sock : -ENOMEM;
	}
	ret = fetch_on(sock, text, fds, pidp);
	close(sock);
	free(text);
	if (ret < 0) {
		log_warning("The region keeper in %s did not answer as it should: %s", dir,
			    strerror(-ret));
		return ret;
	}
	return 1;
}

/* Starts a keeper listening on @dir/smhd.keeper. */
static int spawn(const char *dir)
{
	char exe[PATH_MAX];
	struct sockaddr_un addr;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int lfd, ret = socket_path(dir, &addr);
	pid_t pid;

	if (ret < 0)
		return ret;
	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	unlink(addr.sun_path); /* stale: no keeper answered on it */
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		return -errno;
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 4) < 0) {
		ret = -errno;
		close(lfd);
		return ret;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		if (dup2(lfd, 3) < 0 || (lfd == 3 && fcntl(3, F_SETFD, 0) < 0))
			_exit(126);
		execl(exe, "smhd", "--keeper", (char *)NULL);
		_exit(127);
	}
	ret = pid < 0 ? -errno : 0;
	close(lfd);
	return ret;
}

/* PUT of @fds (borrowed) on @sock; the keeper's pid into *pidp. */
static int store_on(int sock, char *text, const struct keeper_fds *fds, pid_t *pidp)
{
	int pid = 0, ret;

	format_names(fds, "PUT", text, MSG_MAX);
	ret = send_text(sock, text, fds->fds, fds->n);
	if (ret == 0)
		ret = recv_text(sock, text, MSG_MAX, NULL);
	if (ret >= 0)
		ret = sscanf(text, "OK %d", &pid) == 1 && pid > 0 ? 0 : -EPROTO;
	if (ret == 0)
		*pidp = pid;
	return ret;
}

int keeper_store(const char *dir, const struct keeper_fds *fds, pid_t *pidp)
{
	char *text = malloc(MSG_MAX);
	int sock = connect_keeper(dir), ret;

	if (!text) {
		ret = -ENOMEM;
		goto out;
	}
	if (sock < 0) {
		ret = spawn(dir);
		if (ret == 0)
			sock = connect_keeper(dir);
		if (sock < 0) {
			ret = ret < 0 ? ret : sock;
			goto out;
		}
	}
	ret = store_on(sock, text, fds, pidp);
out:
	if (ret < 0)
		log_error("Could not hand the regions to a keeper in %s: %s; they will not survive "
			  "a crash of smhd",
			  dir, strerror(-ret));
	if (sock >= 0)
		close(sock);
	free(text);
	return ret;
}

/* Whether @pid runs `smhd --keeper` (a pid is never signalled on trust alone). */
static bool is_keeper(pid_t pid)
{
	char path[64], cmd[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return false;
	cmd[n] = '\0';
	return (size_t)n > strlen(cmd) + 1 && strcmp(cmd + strlen(cmd) + 1, "--keeper") == 0;
}

void keeper_stop(const char *dir, pid_t pid)
{
	struct sockaddr_un addr;

	if (pid > 0 && is_keeper(pid) && kill(pid, SIGTERM) == 0) {
		/* Ours when this daemon started it: reap it. */
		for (int i = 0; i < 100 && waitpid(pid, NULL, WNOHANG) == 0; i++)
			usleep(10000);
	}
	if (socket_path(dir, &addr) == 0)
		unlink(addr.sun_path);
}

/* ---------------------------------------------------------------- the keeper process */

struct keeper {
	struct keeper_fds held;
	pid_t daemon;
	uint64_t daemon_start;
	time_t deadline; /* while no daemon is watched: exit then */
};

static void serve_one(struct keeper *k, int sock)
{
	static char text[MSG_MAX];
	struct keeper_fds got;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
	    (cred.uid != getuid() && cred.uid != 0))
		return;
	if (recv_text(sock, text, sizeof(text), &got) < 0)
		return;
	if (strcmp(text, "GET") == 0) {
		char head[32];

		keeper_fds_close(&got);
		snprintf(head, sizeof(head), "FDS %d", (int)getpid());
		format_names(&k->held, head, text, sizeof(text));
		if (send_text(sock, text, k->held.fds, k->held.n) < 0)
			return;
	} else if (strncmp(text, "PUT", 3) == 0 && parse_names(text, &got) == 0) {
		keeper_fds_close(&k->held);
		k->held = got;
		snprintf(text, sizeof(text), "OK %d", (int)getpid());
		if (send_text(sock, text, NULL, 0) < 0)
			return;
	} else {
		keeper_fds_close(&got);
		return;
	}
	k->daemon = cred.pid;
	k->daemon_start = proc_start_time(cred.pid);
}

static bool daemon_alive(const struct keeper *k)
{
	if (k->daemon <= 0)
		return false;
	if (kill(k->daemon, 0) < 0 && errno != EPERM)
		return false;
	return proc_start_time(k->daemon) == k->daemon_start;
}

int keeper_main(void)
{
	struct keeper k = { .deadline = time(NULL) + KEEPER_LINGER_S };
	struct pollfd pfd = { .fd = 3, .events = POLLIN };

	log_set_prog("smhd-keeper");
	setsid();
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int n = poll(&pfd, 1, 1000);

		if (n > 0) {
			int sock = accept4(3, NULL, NULL, SOCK_CLOEXEC);

			if (sock >= 0) {
				serve_one(&k, sock);
				close(sock);
			}
		}
		if (daemon_alive(&k))
			continue;
		if (k.daemon > 0) {
			log_info("smhd (pid %d) is gone: keeping %zu region(s) for %d s for the "
				 "next one",
				 (int)k.daemon, k.held.n, KEEPER_LINGER_S);
			k.daemon = 0;
			k.deadline = time(NULL) + KEEPER_LINGER_S;
		}
		if (time(NULL) > k.deadline)
			break;
	}
	keeper_fds_close(&k.held);
	{
		struct sockaddr_un addr;
		socklen_t len = sizeof(addr);

		/* Nobody came: the socket goes too (a later daemon starts a keeper anew). */
		if (getsockname(3, (struct sockaddr *)&addr, &len) == 0 && addr.sun_path[0])
			unlink(addr.sun_path);
	}
	return 0;
}
