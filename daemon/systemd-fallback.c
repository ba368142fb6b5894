/* SPDX-License-Identifier: MIT */
/*
 * The service manager without libsystemd (see systemd.h): Meson's `systemd` feature is off.
 * smhd is never socket-activated (it listens on its own socket), notifies nothing and has no
 * fd store (memfd regions survive a crash through the keeper only); the units, which need
 * these, are not installed by such a build.
 */
#include <errno.h>
#include <stdlib.h>

#include "common/log.h"
#include "daemon/systemd.h"

int systemd_listen_fd(const char *path, int *fdp, struct systemd_stored *stored)
{
	stored->n = 0;
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

void systemd_stored_close(struct systemd_stored *stored)
{
	stored->n = 0;
}

bool systemd_fdstore_enabled(void)
{
	return false;
}

int systemd_fdstore_put(const char *label, int fd)
{
	return -ENOSYS;
}

void systemd_fdstore_remove(const char *label)
{
}
