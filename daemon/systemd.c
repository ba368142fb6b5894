/* SPDX-License-Identifier: MIT */
/*
 * The service manager through libsystemd (see systemd.h). Built when Meson finds libsystemd;
 * systemd-fallback.c replaces it otherwise.
 *
 * The passed fds are told apart by their names (LISTEN_FDNAMES): the socket carries its socket
 * unit's name (or FileDescriptorName=), stored regions the names smhd gave them; unnamed fds
 * (an old service manager) are sockets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/systemd.h"

/* Moves the fd named @name to @stored if it is a region's; returns whether it was. */
static bool take_stored(int fd, const char *name, struct systemd_stored *stored)
{
	const size_t plen = strlen(SYSTEMD_FDSTORE_PREFIX);

	if (strncmp(name, SYSTEMD_FDSTORE_PREFIX, plen) != 0)
		return false;
	if (stored->n == SYSTEMD_STORED_MAX || strlen(name + plen) >= DT_LABEL_MAX) {
		log_warning("Ignoring the stored fd %s: more than %d, or a label too long", name,
			    SYSTEMD_STORED_MAX);
		close(fd);
		return true;
	}
	stored->fds[stored->n] = fd;
	snprintf(stored->labels[stored->n++], DT_LABEL_MAX, "%s", name + plen);
	return true;
}

static void free_names(char **names, int n)
{
	for (int i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

/* Checks that @fd is the listening socket the unit should pass. Returns 0 or -EINVAL (logged). */
static int check_socket(int fd, const char *path)
{
	int ret = sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, path, 0);

	if (ret < 0) {
		log_error("Could not check the socket the service manager passed: %s",
			  strerror(-ret));
		return ret;
	}
	if (ret == 0) {
		log_error("The socket the service manager passed is not a listening SOCK_SEQPACKET "
			  "unix socket bound to %s: the unit needs ListenSequentialPacket=%s, or "
			  "smhd --socket the path the unit listens on",
			  path, path);
		return -EINVAL;
	}
	return 0;
}

int systemd_listen_fd(const char *path, int *fdp, struct systemd_stored *stored)
{
	char **names = NULL;
	/* 1: unset LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES, which are for this process only. */
	int n = sd_listen_fds_with_names(1, &names);
	int n_sockets = 0, sock = -1, ret = 0;

	stored->n = 0;
	if (n < 0) {
		log_error("Could not read the sockets the service manager passed: %s",
			  strerror(-n));
		return n;
	}
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;

		if (names && names[i] && take_stored(fd, names[i], stored))
			continue;
		n_sockets++;
		sock = sock < 0 ? fd : sock;
	}
	if (n_sockets > 1) {
		log_error("The service manager passed %d sockets; smhd listens on one "
			  "(ListenSequentialPacket=%s)",
			  n_sockets, path);
		ret = -EINVAL;
	} else if (n_sockets == 1) {
		ret = check_socket(sock, path);
	}
	free_names(names, n);
	if (ret < 0) {
		for (int i = 0; i < n; i++)
			close(SD_LISTEN_FDS_START + i);
		stored->n = 0;
		return ret;
	}
	if (n_sockets == 0)
		return 0;
	*fdp = sock;
	return 1;
}

void systemd_stored_close(struct systemd_stored *stored)
{
	for (size_t i = 0; i < stored->n; i++)
		if (stored->fds[i] >= 0)
			close(stored->fds[i]);
	stored->n = 0;
}

/* A positive count in @var. */
static bool env_positive(const char *var)
{
	const char *v = getenv(var);

	return v && strtol(v, NULL, 10) > 0;
}

bool systemd_fdstore_enabled(void)
{
	return systemd_notify_enabled() &&
	       (env_positive("FDSTORE") || env_positive("SMHD_FDSTORE"));
}

int systemd_fdstore_put(const char *label, int fd)
{
	char msg[64 + DT_LABEL_MAX];
	int ret;

	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s%s", SYSTEMD_FDSTORE_PREFIX, label);
	ret = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
	if (ret < 0) {
		log_warning("Could not hand region %s to the service manager's fd store: %s", label,
			    strerror(-ret));
		return ret;
	}
	return 0;
}

void systemd_fdstore_remove(const char *label)
{
	char msg[64 + DT_LABEL_MAX];

	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s%s", SYSTEMD_FDSTORE_PREFIX, label);
	systemd_notify(msg);
}

bool systemd_notify_enabled(void)
{
	const char *env = getenv("NOTIFY_SOCKET");

	return env && *env;
}

void systemd_notify(const char *state)
{
	int ret = sd_notify(0, state);

	if (ret < 0)
		log_warning("Could not notify the service manager (%.*s): %s",
			    (int)strcspn(state, "\n"), state, strerror(-ret));
}

uint64_t systemd_watchdog_usec(void)
{
	uint64_t usec = 0;

	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
