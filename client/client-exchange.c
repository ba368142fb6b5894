/* SPDX-License-Identifier: MIT */
/*
 * One round trip on a client's socket, and the connection's state.
 *
 * A round trip is one Request datagram and the one Response with the same id, under the
 * client's lock, so a client is usable from several threads without interleaving. The socket
 * blocks, so a round trip is one sendmsg() and one recvmsg(); poll() is only a fallback for an
 * -EAGAIN (a socket someone made non-blocking). Every reply is checked before anything in it is
 * used: a malformed one, an id that does not match, fds that do not match fd_regions, a region
 * index out of range are protocol errors, after which the connection is dead (the request and
 * response streams can no longer be trusted to line up) and every call on it returns -EPROTO.
 *
 * A round trip is bounded by client->timeout_ms (default 5 s): the socket's SO_SNDTIMEO and
 * SO_RCVTIMEO make a blocked send or receive give up (so the fast path stays one sendmsg()
 * and one recvmsg()), and the poll() fallback waits only until the round trip's deadline.
 * After a time-out the connection is dead (-ETIMEDOUT), not lost: the daemon may still answer
 * the request late, and that reply must never be read as the answer to another one; closing
 * the socket and reconnecting would instead make a live daemon release our buffers while
 * their mappings are still in use. The socket stays open until smh_disconnect().
 *
 * This level does not reconnect: a hang-up only moves the client to CLIENT_LOST, and the
 * callers above (client.c's call loop, client-reconnect.c's hello) decide what comes next.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/client-internal.h"
#include "common/clock.h"

/* ---------------------------------------------------------------- state */

void client_set_state(struct smh_client *client, enum client_state state, int error)
{
	client->state = state;
	client->error = state == CLIENT_CONNECTED ? 0 : error;
}

int client_proto_error(struct smh_client *client, const char *what)
{
	client_log(SMH_LOG_ERROR, "smh: protocol error from the daemon: %s", what);
	client_set_state(client, CLIENT_DEAD, -EPROTO);
	return -EPROTO;
}

bool client_transport_lost(int err)
{
	return err == -EPIPE || err == -ECONNRESET || err == -ENOTCONN;
}

/* The daemon went away or the socket broke: the connection is over. */
static int transport_error(struct smh_client *client, int err)
{
	if (err == -ETIMEDOUT) {
		client_log(SMH_LOG_ERROR,
			   "smh: smhd at %s did not answer within %d ms: the connection is "
			   "unusable, disconnect",
			   client->path ? client->path : "?", client->timeout_ms);
		client_set_state(client, CLIENT_DEAD, err);
	} else if (client_transport_lost(err)) {
		client_log(SMH_LOG_ERROR, "smh: the daemon closed the connection");
		client_set_state(client, CLIENT_LOST, err);
	} else {
		client_log(SMH_LOG_ERROR, "smh: socket error: %s", smh_strerror(err));
		client_set_state(client, CLIENT_DEAD, err);
	}
	return err;
}

int client_check_server(struct smh_client *client, int sock)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	/* The first daemon found, root included, names the uid every reconnection must reach. */
	if (client->server_uid < 0)
		client->server_uid = cred.uid;
	if (cred.uid == 0 || (int64_t)cred.uid == client->server_uid)
		return 0;
	client_log(SMH_LOG_ERROR,
		   "smh: the process listening on %s (pid %d) runs as uid %u, not as smhd's uid "
		   "%lld or root: refusing it",
		   client->path, (int)cred.pid, (unsigned)cred.uid, (long long)client->server_uid);
	return -EPERM;
}

int client_socket_timeout(int sock, int timeout_ms)
{
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };

	if (setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	return 0;
}

int client_open_socket(const char *path, int timeout_ms)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int sock, err;

	if (strlen(path) >= sizeof(addr.sun_path))
		return -ENAMETOOLONG;
	strcpy(addr.sun_path, path);
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	/* SO_SNDTIMEO bounds the connect too: a listener that never accepts fills its backlog. */
	err = client_socket_timeout(sock, timeout_ms);
	while (err == 0 && connect(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err = -errno;
		if (err == -EINTR)
			err = 0;
		else if (err == -EAGAIN)
			err = -ETIMEDOUT;
	}
	if (err < 0) {
		close(sock);
		return err;
	}
	return sock;
}

/* ---------------------------------------------------------------- datagrams */

/* The end of a round trip starting now (-1: none). */
static int64_t deadline_of(const struct smh_client *client)
{
	return client->timeout_ms > 0 ? clock_ms() + client->timeout_ms : -1;
}

/* Waits until @sock is ready for @events, until @deadline (-1: none): 0 or -ETIMEDOUT. */
static int wait_for(int sock, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = sock, .events = events };

	for (;;) {
		int64_t left = deadline < 0 ? -1 : deadline - clock_ms();
		int n;

		if (deadline >= 0 && left <= 0)
			return -ETIMEDOUT;
		n = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int send_request(struct smh_client *client, Smh__Request *req, int64_t deadline)
{
	ssize_t len;
	int err;

	req->id = ++client->next_id;
	len = wire_pack_request(req, client->msg);
	if (len < 0)
		return (int)len; /* -EMSGSIZE: ours, the connection is fine */
	while ((err = wire_send(client->sock, client->msg, (size_t)len, NULL, 0)) == -EAGAIN) {
		err = wait_for(client->sock, POLLOUT, deadline);
		if (err < 0)
			break;
	}
	return err < 0 ? transport_error(client, err) : 0;
}

static ssize_t recv_datagram(struct smh_client *client, struct wire_fds *fds, int64_t deadline)
{
	ssize_t n;

	while ((n = wire_recv(client->sock, client->msg, sizeof(client->msg), fds, NULL)) ==
	       -EAGAIN) {
		int err = wait_for(client->sock, POLLIN, deadline);

		if (err < 0)
			return transport_error(client, err);
	}
	if (n == 0) {
		/* A hang-up carries no fds; an empty datagram from a hostile peer might. */
		wire_fds_close(fds);
		return transport_error(client, -ECONNRESET);
	}
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
	client_registry_lock();
	for (size_t i = 0; i < fds->n; i++)
		client_slot_set_fd(client, resp->fd_regions[i], fds->fds[i]);
	client_registry_unlock();
	fds->n = 0;
	return 0;
}

/* Receives the Response to request @id. */
static int recv_response(struct smh_client *client, uint64_t id, int64_t deadline,
			 Smh__Response **respp)
{
	struct wire_fds fds = { .n = 0 };
	Smh__Response *resp = NULL;
	ssize_t n;
	int err;

	n = recv_datagram(client, &fds, deadline);
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

/* ---------------------------------------------------------------- the round trip */

/* What @resp says: 0, the daemon's refusal, or a protocol error. */
static int check_response(struct smh_client *client, const Smh__Response *resp,
			  Smh__Response__BodyCase expect)
{
	int status = resp->status;

	if (status > 0 || status < -4095)
		return client_proto_error(client, "a status that is not a negative errno");
	if (status < 0) {
		client_set_last_error(client, resp->message);
		client_log(SMH_LOG_DEBUG, "smh: the daemon refused: %s (%s)", resp->message,
			   smh_strerror(status));
		return status;
	}
	if (expect != SMH__RESPONSE__BODY__NOT_SET && resp->body_case != expect)
		return client_proto_error(client, "a reply with the wrong body");
	return 0;
}

int client_exchange(struct smh_client *client, Smh__Request *req, Smh__Response__BodyCase expect,
		    client_read_fn *reader, void *ctx)
{
	int64_t deadline = deadline_of(client);
	Smh__Response *resp = NULL;
	int err;

	err = send_request(client, req, deadline);
	if (err == 0)
		err = recv_response(client, req->id, deadline, &resp);
	if (err < 0)
		return err;
	err = check_response(client, resp, expect);
	if (err == 0 && reader)
		err = reader(client, resp, ctx);
	wire_free_response(resp);
	return err;
}
