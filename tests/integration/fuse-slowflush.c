/* SPDX-License-Identifier: MIT */
/*
 * A FUSE filesystem of one file, /slow, whose FLUSH is answered only once the test lets it:
 * the test-integ-fdflush helper. Each FLUSH first appends "flush PID" (the pid of the process
 * that closed the file) to the file $SMH_FUSE_LOG, then reads the pipe $SMH_FUSE_GATE_FD until
 * the test closes its end (end of file: from then on every FLUSH is answered at once).
 *
 * usage: fuse-slowflush MOUNTPOINT (in the foreground, single-threaded; unmount to stop)
 */
#define FUSE_USE_VERSION 31

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char content[] = "slow\n";
static int gate_fd = -1;
static const char *log_path;

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/slow") == 0) {
		st->st_mode = S_IFREG | 0644;
		st->st_nlink = 1;
		st->st_size = sizeof(content) - 1;
		return 0;
	}
	return -ENOENT;
}

static int fs_open(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	return strcmp(path, "/slow") == 0 ? 0 : -ENOENT;
}

static int fs_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	size_t len = sizeof(content) - 1;

	(void)path;
	(void)fi;
	if ((size_t)off >= len)
		return 0;
	if (size > len - (size_t)off)
		size = len - (size_t)off;
	memcpy(buf, content + off, size);
	return (int)size;
}

static int fs_flush(const char *path, struct fuse_file_info *fi)
{
	char line[64], c;
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	(void)path;
	(void)fi;
	if (fd >= 0) {
		int n = snprintf(line, sizeof(line), "flush %d\n", (int)fuse_get_context()->pid);

		if (write(fd, line, (size_t)n) != n)
			perror("fuse-slowflush: log");
		close(fd);
	}
	for (;;) { /* until the test closes its end */
		ssize_t n = read(gate_fd, &c, 1);

		if (n == 0 || (n < 0 && errno != EINTR))
			return 0;
	}
}

static const struct fuse_operations ops = {
	.getattr = fs_getattr,
	.open = fs_open,
	.read = fs_read,
	.flush = fs_flush,
};

int main(int argc, char **argv)
{
	const char *gate = getenv("SMH_FUSE_GATE_FD");
	char *fargs[] = { argv[0], "-f", "-s", argc == 2 ? argv[1] : NULL, NULL };

	log_path = getenv("SMH_FUSE_LOG");
	if (argc != 2 || !gate || !log_path) {
		fprintf(stderr, "usage: SMH_FUSE_GATE_FD=N SMH_FUSE_LOG=FILE %s MOUNTPOINT\n",
			argv[0]);
		return 2;
	}
	gate_fd = atoi(gate);
	return fuse_main(4, fargs, &ops, NULL);
}
