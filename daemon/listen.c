/* SPDX-License-Identifier: MIT */
/* smhd's listening socket (see listen.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/listen.h"

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

int listen_open(const char *path, bool shared_dir_ok, int *fdp)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	mode_t old_mask;
	int fd, ret;

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
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The socket file is created by bind(): the umask gives it mode 0660 from the start. */
	old_mask = umask(0117);
	ret = bind(fd, (const struct sockaddr *)&addr, sizeof(addr));
	umask(old_mask);
	if (ret < 0 || listen(fd, SOMAXCONN) < 0) {
		ret = -errno;
		log_error("Could not listen on %s: %s", path, strerror(errno));
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

/*
 * The socket from the service manager: it is already bound and listening; it only needs to be
 * non-blocking, which systemd does not promise.
 */
int listen_adopt(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		log_error("Could not set up the socket the service manager passed: %s",
			  strerror(errno));
		return -errno;
	}
	return 0;
}
