/* SPDX-License-Identifier: MIT */
/*
 * The service manager without libsystemd (see systemd.h): Meson's `systemd` feature is off.
 * smhd is never socket-activated (it listens on its own socket) and notifies nothing; the
 * units, which need both, are not installed by such a build.
 */
#include <stdlib.h>

#include "common/log.h"
#include "daemon/systemd.h"

int systemd_listen_fd(const char *path, int *fdp)
{
	if (getenv("LISTEN_FDS"))
		log_warning("smhd was built without libsystemd: ignoring the sockets the service "
			    "manager passed, listening on %s itself",
			    path);
	return 0;
}

bool systemd_notify_enabled(void)
{
	return false;
}

void systemd_notify(const char *state)
{
}

uint64_t systemd_watchdog_usec(void)
{
	return 0;
}
