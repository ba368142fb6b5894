/* SPDX-License-Identifier: MIT */
/*
 * The service manager through libsystemd (see systemd.h). Built when Meson finds libsystemd;
 * systemd-fallback.c replaces it otherwise.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>

#include "common/log.h"
#include "daemon/systemd.h"

int systemd_listen_fd(const char *path, int *fdp)
{
	/* 1: unset LISTEN_FDS and LISTEN_PID, which are for this process only. */
	int n = sd_listen_fds(1);
	int ret;

	if (n < 0) {
		log_error("Could not read the sockets the service manager passed: %s",
			  strerror(-n));
		return n;
	}
	if (n == 0)
		return 0;
	if (n > 1) {
		log_error("The service manager passed %d sockets; smhd listens on one "
			  "(ListenSequentialPacket=%s)",
			  n, path);
		return -EINVAL;
	}
	ret = sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_SEQPACKET, 1, path, 0);
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
	*fdp = SD_LISTEN_FDS_START;
	return 1;
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
