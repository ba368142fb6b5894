/* SPDX-License-Identifier: MIT */
/*
 * The socket server (see server.h).
 *
 * libuv's stream writes cannot carry arbitrary fds (uv_write2 sends only libuv handles), so
 * every socket is a raw fd watched by a uv_poll_t, and the datagrams move with
 * sendmsg()/recvmsg() (proto/wire.c).
 *
 * Back-pressure: when a client's socket has no room for a response, the response is kept and
 * the connection stops being read until it has gone out. A client that sends requests and
 * never reads replies therefore costs one pending datagram, and blocks nobody else.
 *
 * Whatever a client sends that is not a well-formed request (bytes that do not parse, a
 * datagram over SMH_MSG_MAX, truncated control data, a request before the hello) drops that
 * client only, with one log line; its buffers are released as if it had closed. fds a client
 * sends are closed unread.
 *
 * Scrubbing (daemon/scrub.h): an allocation only memory being scrubbed could serve parks its
 * connection (the request is kept, the socket not read) until the scrubber's uv_async_t says
 * blocks came back; the loop frees them into the pool in bounded batches and hands the parked
 * requests again. A closed connection's holds are released in bounded slices (an idle
 * handle), so a client with a million buffers does not stall the others.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "common/log.h"
#include "common/proc.h"
#include "daemon/policy.h"
#include "daemon/requests.h"
#include "daemon/scrub.h"
#include "daemon/server.h"
#include "daemon/service.h"

/* Clients accepted per wake-up of the listening socket. */
#define ACCEPT_BATCH 16

/* Holds a closed connection releases per loop iteration. */
#define REAP_SLICE 1024

/* Scrubbed blocks freed into the pool per loop iteration. */
#define COLLECT_SLICE 4096

/* With no fd left for a new client, accepting pauses this long (or until a client leaves). */
#define ACCEPT_PAUSE_MS 200

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

/* Supplementary groups of a peer read without an allocation; more take one. */
#define PEER_GROUPS_SMALL 256

/* NGROUPS_MAX of the kernel: a larger answer is not believed. */
#define PEER_GROUPS_MAX 65536

_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gids are 32-bit");

struct server {
	uv_loop_t loop;
	uv_poll_t listen_poll;
	uv_timer_t accept_timer; /* resumes accepting after running out of fds */
	bool accept_paused;
	bool out_of_fds; /* logged; cleared by the next accept that succeeds */
	uv_signal_t sig[2];
	int listen_fd;
	char *path;
	bool owns_path; /* created the socket file (not socket-activated): removes it at exit */
	struct service service;
	struct broker *broker;
	struct policy *policy;
	struct backend *backend;
	struct list conns;
	struct scrub *scrub;
	uv_async_t scrub_async; /* the scrubber finished blocks */
	uv_idle_t reap_idle;    /* closed connections' holds are being released */
	struct list parked;     /* connections waiting for memory being scrubbed */
	bool stopping;
	unsigned char in[SMH_MSG_MAX];
	unsigned char out[SMH_MSG_MAX];
};

struct conn {
	struct server *srv;
	int fd;
	uv_poll_t poll;
	struct request_ctx ctx;
	struct list link;
	bool warned_fds;
	/* A response the socket had no room for; its fds are the backend's (borrowed). */
	unsigned char *pending;
	size_t pending_len;
	int pending_fds[WIRE_FDS_MAX];
	size_t n_pending_fds;
	bool close_after; /* after the pending response goes out */
	/* A request waiting for memory being scrubbed (the socket is not read meanwhile). */
	unsigned char *parked;
	size_t parked_len;
	struct list park_link; /* server's parked */
};

/* A new peer's supplementary groups (SO_PEERGROUPS), for the policy. */
struct peer_groups {
	struct policy_ids list; /* in small, or allocated */
	uint32_t small[PEER_GROUPS_SMALL];
};

static void on_conn_event(uv_poll_t *poll, int status, int events);
static void resume_accepting(struct server *srv);
static void reap(struct server *srv, struct broker_client *bc);

/*
 * Reads the supplementary groups of the peer on @fd, as they were when it connected. Without
 * them (a kernel before 4.13, no memory) the list is empty: the policy then judges the peer by
 * its uid and primary gid.
 */
static void read_groups(int fd, struct peer_groups *g)
{
	socklen_t len = sizeof(g->small);
	uint32_t *ids = g->small;

	g->list = (struct policy_ids){ 0 };
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ids, &len) < 0) {
		if (errno != ERANGE || len > PEER_GROUPS_MAX * sizeof(*ids) || !(ids = malloc(len)))
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ids, &len) < 0)
			len = 0;
	}
	g->list.ids = ids;
	g->list.n = len / sizeof(*ids);
}

static void groups_finish(struct peer_groups *g)
{
	if (g->list.ids != g->small)
		free(g->list.ids);
}

static void on_conn_closed(uv_handle_t *handle)
{
	struct conn *c = handle->data;

	close(c->fd);
	free(c->parked);
	free(c->pending);
	free(c->ctx.fd_sent);
	free(c);
}

/* Releases what the client holds and closes it. @why (NULL for a plain hang-up) is logged. */
static void conn_close(struct conn *c, const char *why)
{
	struct broker_client *bc = c->ctx.client;

	if (why)
		log_warning("Dropping client %llu (pid %d, %s): %s", (unsigned long long)bc->id,
			    (int)bc->pid, bc->comm, why);
	else
		log_debug("Client %llu (pid %d, %s) disconnected, releasing %llu buffers",
			  (unsigned long long)bc->id, (int)bc->pid, bc->comm,
			  (unsigned long long)bc->n_buffers);
	if (c->parked)
		list_remove(&c->park_link);
	reap(c->srv, bc);
	list_remove(&c->link);
	service_changed(&c->srv->service);
	resume_accepting(c->srv); /* an fd is free again */
	uv_poll_stop(&c->poll);
	uv_close((uv_handle_t *)&c->poll, on_conn_closed);
}

static void on_reap(uv_idle_t *idle)
{
	struct server *srv = idle->data;

	if (!broker_reap(srv->broker, REAP_SLICE))
		uv_idle_stop(idle);
}

/* Releases a slice of @bc's holds now, the rest on the next loop iterations. */
static void reap(struct server *srv, struct broker_client *bc)
{
	if (broker_client_retire(srv->broker, bc, REAP_SLICE) && !srv->stopping)
		uv_idle_start(&srv->reap_idle, on_reap);
}

static int watch(struct conn *c, int events)
{
	int ret = uv_poll_start(&c->poll, events | UV_DISCONNECT, on_conn_event);

	if (ret < 0)
		log_error("Could not watch client %llu: %s", (unsigned long long)c->ctx.client->id,
			  uv_strerror(ret));
	return ret;
}

/* Sends a response, or keeps it for when the socket has room. Returns 0 or a negative errno. */
static int respond(struct conn *c, const struct request_result *res)
{
	int ret = wire_send(c->fd, c->srv->out, res->len, res->fds, res->n_fds);

	if (ret != -EAGAIN)
		return ret;
	c->pending = malloc(res->len ? res->len : 1);
	if (!c->pending)
		return -ENOMEM;
	memcpy(c->pending, c->srv->out, res->len);
	c->pending_len = res->len;
	memcpy(c->pending_fds, res->fds, sizeof(res->fds));
	c->n_pending_fds = res->n_fds;
	c->close_after = res->close_after;
	return watch(c, UV_WRITABLE);
}

/* Keeps the request in srv->in and stops reading @c until a scrub ends (see the top). */
static void park(struct conn *c, size_t n)
{
	c->parked = malloc(n);
	if (!c->parked) {
		conn_close(c, "out of memory");
		return;
	}
	memcpy(c->parked, c->srv->in, n);
	c->parked_len = n;
	list_insert_before(&c->srv->parked, &c->park_link);
	if (watch(c, 0) < 0) /* a hang-up still shows */
		conn_close(c, "cannot watch the socket");
}

static void handle(struct conn *c, ssize_t n, size_t n_closed);

/* Hands the parked requests again: memory came back. */
static void unpark_all(struct server *srv)
{
	struct list todo, *pos, *tmp;

	list_init(&todo);
	list_for_each_safe(pos, tmp, &srv->parked)
	{
		list_remove(pos);
		list_insert_before(&todo, pos);
	}
	list_for_each_safe(pos, tmp, &todo)
	{
		struct conn *c = list_entry(pos, struct conn, park_link);
		size_t n = c->parked_len;

		list_remove(pos);
		memcpy(srv->in, c->parked, n);
		free(c->parked);
		c->parked = NULL;
		if (watch(c, UV_READABLE) < 0)
			conn_close(c, "cannot watch the socket");
		else
			handle(c, (ssize_t)n, 0);
	}
}

static void on_scrubbed(uv_async_t *async)
{
	struct server *srv = async->data;
	bool more;

	if (!srv->scrub)
		return;
	if (scrub_collect(srv->scrub, COLLECT_SLICE, &more) > 0) {
		service_changed(&srv->service);
		unpark_all(srv);
	}
	if (more) /* the rest on the next iteration, after the other clients */
		uv_async_send(async);
}

/* Called on the scrubber's thread. */
static void wake(void *data)
{
	struct server *srv = data;

	uv_async_send(&srv->scrub_async);
}

void server_set_scrub(struct server *srv, struct scrub *scrub)
{
	srv->scrub = scrub;
	scrub_set_wake(scrub, wake, srv);
}

/* Handles one datagram: answers it, or drops the client. */
static void handle(struct conn *c, ssize_t n, size_t n_closed)
{
	struct request_result res;
	int ret;

	if (n_closed > 0 && !c->warned_fds) {
		log_warning("Client %llu (pid %d) sent %zu file descriptors; closed them",
			    (unsigned long long)c->ctx.client->id, (int)c->ctx.client->pid,
			    n_closed);
		c->warned_fds = true;
	}
	requests_handle(&c->ctx, c->srv->in, (size_t)n, c->srv->out, &res);
	if (res.violation) {
		conn_close(c, res.violation);
		return;
	}
	if (res.park) {
		park(c, (size_t)n);
		return;
	}
	service_changed(&c->srv->service);
	ret = respond(c, &res);
	if (ret < 0)
		conn_close(c, ret == -EPIPE || ret == -ECONNRESET ? NULL : strerror(-ret));
	else if (res.close_after && !c->pending)
		conn_close(c, NULL);
}

/*
 * One datagram per wake-up: the poll is level-triggered, so more waiting datagrams wake us
 * again, after the other ready connections had their turn. A client doing one round trip at a
 * time so costs one recvmsg() and one sendmsg(), with no recvmsg() that finds nothing.
 */
static void on_readable(struct conn *c)
{
	size_t n_closed;
	ssize_t n = wire_recv(c->fd, c->srv->in, sizeof(c->srv->in), NULL, &n_closed);

	if (n == -EAGAIN)
		return;
	if (n == 0 || n == -ECONNRESET)
		conn_close(c, NULL);
	else if (n == -EMSGSIZE)
		conn_close(c, "a datagram larger than the protocol's 65536 bytes");
	else if (n == -EPROTO)
		conn_close(c, "truncated control data (too many file descriptors)");
	else if (n < 0)
		conn_close(c, strerror((int)-n));
	else
		handle(c, n, n_closed);
}

static void on_writable(struct conn *c)
{
	int ret = wire_send(c->fd, c->pending, c->pending_len, c->pending_fds, c->n_pending_fds);

	if (ret == -EAGAIN)
		return;
	free(c->pending);
	c->pending = NULL;
	if (ret < 0 || c->close_after) {
		conn_close(c,
			   ret < 0 && ret != -EPIPE && ret != -ECONNRESET ? strerror(-ret) : NULL);
		return;
	}
	if (watch(c, UV_READABLE) < 0)
		conn_close(c, "cannot watch the socket");
}

static void on_conn_event(uv_poll_t *poll, int status, int events)
{
	struct conn *c = poll->data;

	if (status < 0) {
		/* libuv reports EPOLLERR as UV_EBADF: the peer hung up with replies unread. */
		conn_close(c, status == UV_EBADF ? NULL : uv_strerror(status));
		return;
	}
	if (c->parked) {
		if (events & UV_DISCONNECT)
			conn_close(c, NULL);
		return;
	}
	if (c->pending && (events & UV_WRITABLE)) {
		on_writable(c);
		return;
	}
	if (events & UV_READABLE) {
		on_readable(c);
		return;
	}
	if (events & UV_DISCONNECT)
		conn_close(c, NULL);
}

/* "?" for a peer /proc does not show (gone already, or hidden by hidepid=). */
static void read_comm(pid_t pid, char *buf, size_t size)
{
	if (proc_comm(pid, buf, size) < 0)
		snprintf(buf, size, "?");
}

static int conn_add(struct server *srv, int fd)
{
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	size_t n_regions = pool_n_regions(srv->broker->pool);
	struct peer_groups groups;
	struct conn *c;
	char comm[32];
	int ret;

	/* Read once, now: the peer's identity as it was when it connected. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		log_warning("Could not read the credentials of a new client: %s", strerror(errno));
	read_comm(cred.pid, comm, sizeof(comm));
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ctx.fd_sent = calloc(n_regions ? n_regions : 1, sizeof(*c->ctx.fd_sent));
	if (!c->ctx.fd_sent) {
		ret = -ENOMEM;
		goto err_conn;
	}
	ret = uv_poll_init(&srv->loop, &c->poll, fd);
	if (ret < 0)
		goto err_conn;
	ret = broker_client_add(srv->broker, cred.pid, cred.uid, cred.gid, comm, &c->ctx.client);
	if (ret < 0) {
		/* The handle is initialised: it must be closed through the loop. */
		c->fd = fd;
		c->poll.data = c;
		uv_close((uv_handle_t *)&c->poll, on_conn_closed);
		return ret;
	}
	c->srv = srv;
	c->fd = fd;
	c->poll.data = c;
	c->ctx.broker = srv->broker;
	c->ctx.backend = srv->backend;
	c->ctx.policy = srv->policy;
	/* Read now too, with the credentials: its groups as they were when it connected. */
	read_groups(fd, &groups);
	/* A refused client is still accepted: its hello is answered with why, then it goes. */
	policy_admit(srv->policy, srv->broker, c->ctx.client, &groups.list, c->ctx.refusal,
		     sizeof(c->ctx.refusal));
	groups_finish(&groups);
	list_insert_before(&srv->conns, &c->link);
	if (watch(c, UV_READABLE) < 0) {
		conn_close(c, "cannot watch the socket");
		return 0;
	}
	log_debug("Client %llu connected: pid %d, uid %u, %s",
		  (unsigned long long)c->ctx.client->id, (int)cred.pid, (unsigned)cred.uid, comm);
	service_changed(&srv->service);
	return 0;

err_conn:
	free(c->ctx.fd_sent);
	free(c);
	close(fd);
	return ret;
}

static void on_listen(uv_poll_t *poll, int status, int events);

static void on_accept_timer(uv_timer_t *timer)
{
	resume_accepting(timer->data);
}

/*
 * Out of fds: the waiting client cannot be accepted, and the level-triggered poll would wake
 * us for it again at once. Stop watching the listening socket until a client leaves or a
 * short pause has passed; the waiting clients stay in the backlog meanwhile.
 */
static void pause_accepting(struct server *srv)
{
	if (srv->accept_paused)
		return;
	if (!srv->out_of_fds)
		log_warning("Out of file descriptors (%s): new clients wait until some leave",
			    strerror(errno));
	srv->out_of_fds = true;
	srv->accept_paused = true;
	uv_poll_stop(&srv->listen_poll);
	uv_timer_start(&srv->accept_timer, on_accept_timer, ACCEPT_PAUSE_MS, 0);
}

static void resume_accepting(struct server *srv)
{
	if (!srv->accept_paused || srv->stopping)
		return;
	srv->accept_paused = false;
	uv_timer_stop(&srv->accept_timer);
	if (uv_poll_start(&srv->listen_poll, UV_READABLE, on_listen) < 0)
		log_error("Could not watch the listening socket again");
}

static void on_listen(uv_poll_t *poll, int status, int events)
{
	struct server *srv = poll->data;

	if (status < 0) {
		log_error("Listening socket failed: %s", uv_strerror(status));
		return;
	}
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int ret;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				pause_accepting(srv);
			else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warning("Could not accept a client: %s", strerror(errno));
			return;
		}
		if (srv->out_of_fds) {
			log_info("Accepting clients again");
			srv->out_of_fds = false;
		}
		ret = conn_add(srv, fd);
		if (ret < 0)
			log_warning("Could not accept a client: %s", strerror(-ret));
	}
}

/* Creates the socket's directory if it is missing (one level, like RuntimeDirectory=). */
static int make_dir(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		log_error("Could not create the socket directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	return 0;
}

/*
 * Whoever may write to the socket's directory may bind our path once we stop (a sticky
 * directory such as /tmp only protects the file while it exists), and clients reconnecting
 * would talk to them. Such a directory is refused unless the administrator said otherwise
 * (--allow-shared-socket-dir); libsmh-client checks the server's uid in any case.
 */
static int check_dir(const char *path, bool shared_dir_ok)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = '\0';
	if (stat(dir, &st) < 0) {
		log_error("Could not check the socket directory %s: %s", dir, strerror(errno));
		return -errno;
	}
	if (!(st.st_mode & 022) && (st.st_uid == geteuid() || st.st_uid == 0))
		return 0;
	if (shared_dir_ok) {
		log_warning(
			"Others may write to the socket directory %s (mode %04o, owner uid %u): "
			"after smhd stops, they may listen on %s",
			dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, path);
		return 0;
	}
	log_error(
		"Others may write to the socket directory %s (mode %04o, owner uid %u): once smhd "
		"stops, they could listen on %s and receive its clients. Choose a directory only "
		"this user or root may write to, or pass --allow-shared-socket-dir",
		dir, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, path);
	return -EPERM;
}

/* A socket file left by a daemon that died is removed; one a live daemon listens on is not. */
static int clear_stale(const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret;

	if (lstat(addr->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("%s exists and is not a socket: remove it or choose another --socket",
			  addr->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	close(fd);
	if (ret == 0) {
		log_error("Another smhd is listening on %s", addr->sun_path);
		return -EADDRINUSE;
	}
	log_info("Removing the stale socket %s", addr->sun_path);
	if (unlink(addr->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

static int listen_on(struct server *srv, const char *path, bool shared_dir_ok)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	mode_t old_mask;
	int ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_error("Socket path %s is too long (at most %zu bytes)", path,
			  sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(addr.sun_path, path, strlen(path) + 1);
	ret = make_dir(path);
	if (ret == 0)
		ret = check_dir(path, shared_dir_ok);
	if (ret == 0)
		ret = clear_stale(&addr);
	if (ret < 0)
		return ret;
	srv->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0)
		return -errno;
	/* The socket file is created by bind(): the umask gives it mode 0660 from the start. */
	old_mask = umask(0117);
	ret = bind(srv->listen_fd, (const struct sockaddr *)&addr, sizeof(addr));
	umask(old_mask);
	if (ret < 0 || listen(srv->listen_fd, SOMAXCONN) < 0) {
		ret = -errno;
		log_error("Could not listen on %s: %s", path, strerror(errno));
		return ret;
	}
	srv->owns_path = true;
	return 0;
}

/*
 * The socket from the service manager: it is already bound and listening; it only needs to be
 * non-blocking, which systemd does not promise.
 */
static int adopt(struct server *srv, int fd)
{
	int flags = fcntl(fd, F_GETFL);

	srv->listen_fd = fd;
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		log_error("Could not set up the socket the service manager passed: %s",
			  strerror(errno));
		return -errno;
	}
	return 0;
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct server *srv = sig->data;
	struct list *pos, *tmp;

	if (srv->stopping)
		return;
	log_info("%s: shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
	srv->stopping = true;
	service_stopping(&srv->service);
	uv_close((uv_handle_t *)&srv->listen_poll, NULL);
	uv_close((uv_handle_t *)&srv->accept_timer, NULL);
	if (srv->scrub)
		scrub_set_wake(srv->scrub, NULL, NULL); /* before the handle goes */
	uv_close((uv_handle_t *)&srv->scrub_async, NULL);
	uv_close((uv_handle_t *)&srv->reap_idle, NULL); /* what is left: broker_finish() */
	for (int i = 0; i < 2; i++)
		uv_close((uv_handle_t *)&srv->sig[i], NULL);
	list_for_each_safe(pos, tmp, &srv->conns)
		conn_close(list_entry(pos, struct conn, link), NULL);
}

int server_create(const char *path, int listen_fd, bool shared_dir_ok, struct broker *broker,
		  struct policy *policy, struct backend *backend, struct server **serverp)
{
	static const int signums[2] = { SIGINT, SIGTERM };
	struct server *srv = calloc(1, sizeof(*srv));
	int ret;

	if (!srv || !(srv->path = strdup(path))) {
		ret = -ENOMEM;
		goto err_srv;
	}
	srv->listen_fd = -1;
	srv->broker = broker;
	srv->policy = policy;
	srv->backend = backend;
	list_init(&srv->conns);
	list_init(&srv->parked);
	ret = uv_loop_init(&srv->loop);
	if (ret < 0)
		goto err_srv;
	ret = listen_fd >= 0 ? adopt(srv, listen_fd) : listen_on(srv, path, shared_dir_ok);
	listen_fd = -1;
	if (ret < 0)
		goto err_loop;
	ret = uv_poll_init(&srv->loop, &srv->listen_poll, srv->listen_fd);
	if (ret < 0)
		goto err_loop;
	srv->listen_poll.data = srv;
	uv_timer_init(&srv->loop, &srv->accept_timer);
	srv->accept_timer.data = srv;
	uv_async_init(&srv->loop, &srv->scrub_async, on_scrubbed);
	srv->scrub_async.data = srv;
	uv_idle_init(&srv->loop, &srv->reap_idle);
	srv->reap_idle.data = srv;
	service_init(&srv->service, &srv->loop, broker);
	for (int i = 0; i < 2; i++) {
		uv_signal_init(&srv->loop, &srv->sig[i]);
		srv->sig[i].data = srv;
		ret = ret ? ret : uv_signal_start(&srv->sig[i], on_signal, signums[i]);
	}
	if (ret == 0)
		ret = uv_poll_start(&srv->listen_poll, UV_READABLE, on_listen);
	if (ret < 0) {
		log_error("Could not start serving: %s", uv_strerror(ret));
		on_signal(&srv->sig[0], SIGTERM);
		uv_run(&srv->loop, UV_RUN_DEFAULT);
		goto err_loop;
	}
	*serverp = srv;
	return 0;

err_loop:
	if (srv->owns_path)
		unlink(srv->path);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	uv_loop_close(&srv->loop);
err_srv:
	if (listen_fd >= 0)
		close(listen_fd);
	if (srv)
		free(srv->path);
	free(srv);
	return ret;
}

int server_run(struct server *srv)
{
	log_info("Listening on %s%s", srv->path,
		 srv->owns_path ? "" : " (socket passed by the service manager)");
	service_ready(&srv->service);
	return uv_run(&srv->loop, UV_RUN_DEFAULT) < 0 ? -EIO : 0;
}

uv_loop_t *server_loop(struct server *srv)
{
	return &srv->loop;
}

void server_destroy(struct server *srv)
{
	if (!srv)
		return;
	if (!srv->stopping) {
		on_signal(&srv->sig[0], SIGTERM);
		uv_run(&srv->loop, UV_RUN_DEFAULT);
	}
	if (srv->owns_path)
		unlink(srv->path);
	free(srv->path);
	close(srv->listen_fd);
	if (uv_loop_close(&srv->loop) < 0)
		log_warning("Some handles were still open at exit");
	free(srv);
}
