/* SPDX-License-Identifier: MIT */
/*
 * libsmh-client's connection: connect and hello, the round trip, the fds replies bring, the
 * registry of live clients, diagnostics and error strings.
 *
 * A round trip is one Request datagram and the one Response with the same id, under the
 * client's lock, so a client is usable from several threads without interleaving. The socket
 * blocks, so a round trip is one sendmsg() and one recvmsg(); poll() is only a fallback for
 * an -EAGAIN (a socket someone made non-blocking). Every reply is checked before anything in it is used: a malformed one, an id
 * that does not match, fds that do not match fd_regions, a region index out of range are
 * protocol errors, after which the connection is considered dead (the request and response
 * streams can no longer be trusted to line up) and every call on it returns -EPROTO.
 *
 * A Response's fds are region fds: the daemon sends each at most once per connection. They are
 * kept in `slots`, indexed by region, until disconnect. Slots live under the process-wide
 * registry lock because smh_map(), which gets only a buffer, finds its region through them.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client/client-internal.h"

/* Bytes of a Hello's client_name (smh.proto). */
#define CLIENT_NAME_MAX 64

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct smh_client *registry;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static void (*log_handler)(enum smh_log_level level, const char *msg, void *data);
static void *log_data;

/*
 * The daemon's message for the last refusal in this thread, and the client it came from:
 * per thread so that concurrent callers do not overwrite each other's message.
 */
static _Thread_local char last_error[256];
static _Thread_local const struct smh_client *last_error_client;

/* ---------------------------------------------------------------- diagnostics */

void smh_set_log_handler(void (*handler)(enum smh_log_level level, const char *msg, void *data),
			 void *data)
{
	pthread_mutex_lock(&log_lock);
	log_handler = handler;
	log_data = data;
	pthread_mutex_unlock(&log_lock);
}

void client_log(enum smh_log_level level, const char *fmt, ...)
{
	void (*handler)(enum smh_log_level, const char *, void *);
	char msg[512];
	va_list ap;
	void *data;

	pthread_mutex_lock(&log_lock);
	handler = log_handler;
	data = log_data;
	pthread_mutex_unlock(&log_lock);
	if (!handler)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Outside the lock: the handler may set another handler. */
	handler(level, msg, data);
}

const char *smh_strerror(int err)
{
	const char *s;

	if (err == 0)
		return "Success";
	if (err == INT_MIN)
		return "Unknown error";
	/* strerrordesc_np() returns static strings: thread-safe, no buffer needed. */
	s = strerrordesc_np(err < 0 ? -err : err);
	return s ? s : "Unknown error";
}

const char *smh_last_error(struct smh_client *client)
{
	return client && client == last_error_client ? last_error : "";
}

static void set_last_error(const struct smh_client *client, const char *msg)
{
	snprintf(last_error, sizeof(last_error), "%s", msg ? msg : "");
	last_error_client = client;
}

/* ---------------------------------------------------------------- registry and locking */

void client_registry_lock(void)
{
	pthread_mutex_lock(&registry_lock);
}

void client_registry_unlock(void)
{
	pthread_mutex_unlock(&registry_lock);
}

static void registry_add(struct smh_client *client)
{
	pthread_mutex_lock(&registry_lock);
	client->next = registry;
	registry = client;
	pthread_mutex_unlock(&registry_lock);
}

static void registry_remove(struct smh_client *client)
{
	pthread_mutex_lock(&registry_lock);
	for (struct smh_client **p = &registry; *p; p = &(*p)->next) {
		if (*p == client) {
			*p = client->next;
			break;
		}
	}
	pthread_mutex_unlock(&registry_lock);
}

struct smh_client *client_find_fd(int fd, uint32_t *regionp)
{
	if (fd < 0)
		return NULL;
	for (struct smh_client *c = registry; c; c = c->next) {
		for (uint32_t i = 0; i < c->n_regions; i++) {
			if (c->slots[i].fd == fd) {
				*regionp = i;
				return c;
			}
		}
	}
	return NULL;
}

/*
 * Bumped in the child at every fork(): a client whose generation differs was made by an
 * ancestor. Cheaper than getpid() on every call (glibc does not cache it), and not fooled by
 * pid reuse.
 */
static _Atomic unsigned fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	fork_generation++;
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

int client_begin(struct smh_client *client)
{
	if (!client)
		return -EINVAL;
	if (client->generation != fork_generation)
		return -ECHILD;
	pthread_mutex_lock(&client->lock);
	if (client->dead && client_transport_lost(client->dead))
		client_reconnect(client);
	if (client->dead) {
		int err = client->dead;

		pthread_mutex_unlock(&client->lock);
		return err;
	}
	if (last_error_client == client)
		set_last_error(NULL, "");
	return 0;
}

void client_end(struct smh_client *client)
{
	pthread_mutex_unlock(&client->lock);
}

int client_proto_error(struct smh_client *client, const char *what)
{
	client_log(SMH_LOG_ERROR, "smh: protocol error from the daemon: %s", what);
	client->dead = -EPROTO;
	return -EPROTO;
}

/* ---------------------------------------------------------------- the round trip */

/* Waits until @sock is ready for @events. */
static int wait_for(int sock, short events)
{
	struct pollfd pfd = { .fd = sock, .events = events };

	for (;;) {
		int n = poll(&pfd, 1, -1);

		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

/* The daemon went away or the socket broke: the connection is over. */
static int transport_error(struct smh_client *client, int err)
{
	if (err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN)
		client_log(SMH_LOG_ERROR, "smh: the daemon closed the connection");
	else
		client_log(SMH_LOG_ERROR, "smh: socket error: %s", smh_strerror(err));
	client->dead = err;
	return err;
}

static int send_request(struct smh_client *client, Smh__Request *req)
{
	ssize_t len;
	int err;

	req->id = ++client->next_id;
	len = wire_pack_request(req, client->msg);
	if (len < 0)
		return (int)len; /* -EMSGSIZE: ours, the connection is fine */
	while ((err = wire_send(client->sock, client->msg, (size_t)len, NULL, 0)) == -EAGAIN) {
		err = wait_for(client->sock, POLLOUT);
		if (err < 0)
			break;
	}
	return err < 0 ? transport_error(client, err) : 0;
}

static ssize_t recv_datagram(struct smh_client *client, struct wire_fds *fds)
{
	ssize_t n;

	while ((n = wire_recv(client->sock, client->msg, sizeof(client->msg), fds, NULL)) ==
	       -EAGAIN) {
		int err = wait_for(client->sock, POLLIN);

		if (err < 0)
			return transport_error(client, err);
	}
	if (n == 0)
		return transport_error(client, -ECONNRESET);
	if (n == -EMSGSIZE || n == -EPROTO)
		return client_proto_error(client, "a datagram too long or with truncated fds");
	if (n < 0)
		return transport_error(client, (int)n);
	return n;
}

/* Keeps the fds @resp brings in their regions' slots; closes duplicates. Consumes @fds. */
static int take_fds(struct smh_client *client, const Smh__Response *resp, struct wire_fds *fds)
{
	if (fds->n_closed || fds->n != resp->n_fd_regions) {
		wire_fds_close(fds);
		return client_proto_error(client, "fds attached do not match fd_regions");
	}
	for (size_t i = 0; i < fds->n; i++) {
		if (resp->fd_regions[i] >= client->n_regions) {
			wire_fds_close(fds);
			return client_proto_error(client, "an fd for a region that does not exist");
		}
	}
	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < fds->n; i++)
		client_slot_set_fd(client, resp->fd_regions[i], fds->fds[i]);
	pthread_mutex_unlock(&registry_lock);
	fds->n = 0;
	return 0;
}

/* Receives the Response to request @id. */
static int recv_response(struct smh_client *client, uint64_t id, Smh__Response **respp)
{
	struct wire_fds fds = { .n = 0 };
	Smh__Response *resp;
	ssize_t n;
	int err;

	n = recv_datagram(client, &fds);
	if (n < 0)
		return (int)n;
	resp = wire_unpack_response(client->msg, (size_t)n);
	if (!resp) {
		wire_fds_close(&fds);
		return client_proto_error(client, "a reply that is not a Response");
	}
	if (resp->id != id) {
		wire_fds_close(&fds);
		wire_free_response(resp);
		return client_proto_error(client, "a reply to another request");
	}
	err = take_fds(client, resp, &fds);
	if (err < 0) {
		wire_free_response(resp);
		return err;
	}
	*respp = resp;
	return 0;
}

/* A refusal: the daemon's errno and message. */
static int refusal(struct smh_client *client, Smh__Response *resp)
{
	int status = resp->status;

	if (status > 0 || status < -4095) {
		wire_free_response(resp);
		return client_proto_error(client, "a status that is not a negative errno");
	}
	set_last_error(client, resp->message);
	client_log(SMH_LOG_DEBUG, "smh: the daemon refused: %s (%s)", resp->message,
		   smh_strerror(status));
	wire_free_response(resp);
	return status;
}

int client_call(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		Smh__Response **respp)
{
	Smh__Response *resp = NULL;
	int err;

	*respp = NULL;
	client->resent = 0;
	err = send_request(client, req);
	if (err == 0)
		err = recv_response(client, req->id, &resp);
	/* The daemon went away: once reconnected (and resumed), the request goes again, once. */
	if (err < 0 && client_transport_lost(err)) {
		int rerr = client_reconnect(client);

		if (rerr == 0) {
			client->resent = 1;
			err = send_request(client, req);
			if (err == 0)
				err = recv_response(client, req->id, &resp);
		} else if (rerr == -ESTALE) {
			err = rerr; /* back, but without our buffers: say that, not "gone" */
		}
	}
	if (err < 0)
		return err;
	if (resp->status != 0)
		return refusal(client, resp);
	if (expect != SMH__RESPONSE__BODY__NOT_SET && resp->body_case != expect) {
		wire_free_response(resp);
		return client_proto_error(client, "a reply with the wrong body");
	}
	*respp = resp;
	return 0;
}

/* ---------------------------------------------------------------- connect and disconnect */

static const char *socket_path(const char *path)
{
	if (path)
		return path;
	path = getenv(SMH_SOCKET_ENV);
	return path && *path ? path : SMH_DEFAULT_SOCKET;
}

int client_open_socket(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int sock;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	while (connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = -errno;

		if (err == -EINTR)
			continue;
		close(sock);
		return err;
	}
	return sock;
}

/* Our program name, cut to CLIENT_NAME_MAX bytes on a UTF-8 character boundary. */
static void client_name(char *name)
{
	size_t n;

	snprintf(name, CLIENT_NAME_MAX + 1, "%s", program_invocation_short_name);
	n = strlen(name);
	if (n == CLIENT_NAME_MAX) {
		while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
			n--;
		name[n] = '\0';
	}
}

static int check_hello(struct smh_client *client, const Smh__HelloReply *hello)
{
	if (hello->version != SMH_PROTOCOL_VERSION) {
		client_log(SMH_LOG_ERROR, "smh: the daemon speaks protocol %u, we speak %d",
			   hello->version, SMH_PROTOCOL_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (hello->granule == 0 || (hello->granule & (hello->granule - 1)) ||
	    hello->n_regions > CLIENT_REGIONS_MAX)
		return client_proto_error(client, "a hello with a bad granule or region count");
	/* A reconnection: the slots are sized for the regions we knew. */
	if (client->slots && hello->n_regions != client->n_regions) {
		client_log(SMH_LOG_ERROR, "smh: the restarted daemon serves %u regions, not %u",
			   hello->n_regions, client->n_regions);
		return -ECONNRESET;
	}
	/*
	 * A reconnection that did not get all our holds back (the state was lost, or the grace
	 * period released them): the memory we map may be someone else's now. Going on would
	 * let us write into it; the connection is over instead.
	 */
	if (client->slots && client->n_held > 0 &&
	    (hello->session != client->session ||
	     hello->n_reclaimed + (client->freeing ? 1 : 0) < client->n_held)) {
		client_log(SMH_LOG_ERROR,
			   "smh: the restarted daemon gave back %llu of this connection's %llu "
			   "buffers; the others are lost: connect again",
			   (unsigned long long)(hello->session == client->session
							? hello->n_reclaimed
							: 0),
			   (unsigned long long)client->n_held);
		return -ESTALE;
	}
	client->granule = hello->granule;
	client->client_id = hello->client_id;
	client->n_regions = hello->n_regions;
	client->session = hello->session;
	client->n_reclaimed = hello->n_reclaimed;
	return 0;
}

int client_hello(struct smh_client *client)
{
	char name[CLIENT_NAME_MAX + 1];
	Smh__Hello body = SMH__HELLO__INIT;
	Smh__Request req = SMH__REQUEST__INIT;
	Smh__Response *resp;
	int err;

	client_name(name);
	body.version = SMH_PROTOCOL_VERSION;
	body.client_name = name;
	body.resume_session = client->session;
	req.body_case = SMH__REQUEST__BODY_HELLO;
	req.hello = &body;
	err = client_call(client, &req, SMH__RESPONSE__BODY_HELLO, &resp);
	if (err < 0) {
		if (last_error_client == client)
			client_log(SMH_LOG_ERROR, "smh: hello refused: %s", last_error);
		return err;
	}
	err = check_hello(client, resp->hello);
	wire_free_response(resp);
	return err;
}

static int make_slots(struct smh_client *client)
{
	client->slots = calloc(client->n_regions ? client->n_regions : 1, sizeof(*client->slots));
	if (!client->slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < client->n_regions; i++)
		client->slots[i].fd = -1;
	return 0;
}

int smh_connect(const char *path, struct smh_client **clientp)
{
	struct smh_client *client;
	int err;

	if (!clientp)
		return -EINVAL;
	client = calloc(1, sizeof(*client));
	if (!client)
		return -ENOMEM;
	err = pthread_mutex_init(&client->lock, NULL);
	if (err)
		goto err_free;
	pthread_once(&atfork_once, register_atfork);
	client->generation = fork_generation;
	client->sock = client_open_socket(socket_path(path));
	if (client->sock < 0) {
		err = client->sock;
		goto err_mutex;
	}
	err = client_reconnect_init(client, socket_path(path));
	if (err == 0)
		err = client_hello(client);
	if (err < 0)
		goto err_sock;
	err = make_slots(client);
	if (err < 0)
		goto err_sock;
	registry_add(client);
	*clientp = client;
	return 0;

err_sock:
	free(client->path);
	close(client->sock);
err_mutex:
	pthread_mutex_destroy(&client->lock);
err_free:
	if (last_error_client == client)
		last_error_client = NULL;
	free(client);
	return err > 0 ? -err : err;
}

void smh_disconnect(struct smh_client *client)
{
	if (!client)
		return;
	registry_remove(client);
	for (uint32_t i = 0; i < client->n_regions; i++) {
		struct client_slot *slot = &client->slots[i];

		if (slot->map)
			munmap(slot->map, slot->map_len);
		if (slot->fd >= 0)
			close(slot->fd);
	}
	client_retired_finish(client);
	free(client->slots);
	free(client->regions);
	free(client->path);
	close(client->sock);
	pthread_mutex_destroy(&client->lock);
	if (last_error_client == client)
		last_error_client = NULL;
	free(client);
}

uint64_t smh_client_id(const struct smh_client *client)
{
	return client ? client->client_id : 0;
}

uint64_t smh_granule(const struct smh_client *client)
{
	return client ? client->granule : 0;
}
