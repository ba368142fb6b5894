/* SPDX-License-Identifier: MIT */
/*
 * smh-example: what a program using libsmh-client does, start to end.
 *
 *  1. connects to smhd ($SMH_SOCKET, else /run/smh/smhd.sock; --socket sets it);
 *  2. allocates 4 KiB of each attribute (cacheable, non-cacheable), maps both, writes a string
 *     through each mapping and prints where the buffers are (region, physical address);
 *  3. exports the non-cacheable one and runs itself again as a child with `--import TOKEN`.
 *     The child makes its own connection (a connection is never shared across fork), imports
 *     the token, maps the buffer, checks it reads what the parent wrote and writes a reply
 *     that the parent then reads: two processes, one piece of physical memory;
 *  4. uses the RTOS-compatible layer (shared_multi_heap_*), which hands out plain pointers;
 *  5. with --wait, keeps everything until stdin closes or SIGTERM arrives, so that a demo can
 *     run `smhctl map` or `smhctl allocs` meanwhile; then frees it all.
 *
 * Build it against an installed library with
 *     cc smh-example.c $(pkg-config --cflags --libs libsmh-client)
 *
 * Memory is read and written a byte at a time through volatile pointers: on arm64 a
 * non-cacheable region may be mapped as Device memory, where the unaligned accesses that
 * memcpy or strcpy may make fault.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* signalfd, setenv */
#endif
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <smh/client.h>
#include <smh/shared_multi_heap.h>

#define BUFFER_SIZE 4096
#define MESSAGE_MAX 128
/* Where in the shared buffer the child writes its reply. */
#define REPLY_OFFSET 2048

static const char *const attr_names[] = { "cacheable", "non-cacheable" };

static int fail(struct smh_client *client, const char *what, int err)
{
	const char *msg = client ? smh_last_error(client) : "";

	fprintf(stderr, "smh-example: error: %s: %s%s%s\n", what, smh_strerror(err),
		*msg ? ": " : "", msg);
	return 1;
}

/* Copies @s with its NUL into @dst, at most @room bytes, one byte at a time. */
static void put_string(volatile char *dst, size_t room, const char *s)
{
	size_t i = 0;

	for (; i + 1 < room && s[i]; i++)
		dst[i] = s[i];
	dst[i] = '\0';
}

/* Reads a NUL-terminated string of at most @size - 1 bytes from @src into @out. */
static void get_string(const volatile char *src, char *out, size_t size)
{
	size_t i = 0;

	for (; i + 1 < size && src[i]; i++)
		out[i] = src[i];
	out[i] = '\0';
}

static void expected_hello(char *buf, size_t size, pid_t parent)
{
	snprintf(buf, size, "hello from pid %ld through non-cacheable memory", (long)parent);
}

static int connect_to_smhd(struct smh_client **clientp)
{
	const char *env = getenv("SMH_SOCKET");
	/* What smh_connect(NULL, ...) uses, for the message. */
	const char *path = env && *env ? env : "/run/smh/smhd.sock";
	int err = smh_connect(NULL, clientp);

	if (err < 0)
		fprintf(stderr, "smh-example: error: cannot connect to smhd at %s: %s%s\n", path,
			smh_strerror(err),
			err == -ENOENT || err == -ECONNREFUSED
				? " (is smhd running? set SMH_SOCKET or --socket)"
				: "");
	return err < 0 ? 1 : 0;
}

/* ---------------------------------------------------------------- the child */

static int child_check(struct smh_buffer *buf)
{
	char hello[MESSAGE_MAX], expected[MESSAGE_MAX], reply[MESSAGE_MAX];

	get_string(buf->addr, hello, sizeof(hello));
	printf("child %ld: imported handle %" PRIu64 " (phys 0x%" PRIx64 "), read \"%s\"\n",
	       (long)getpid(), buf->handle, buf->phys_addr, hello);
	expected_hello(expected, sizeof(expected), getppid());
	if (strcmp(hello, expected) != 0) {
		fprintf(stderr, "smh-example: error: child read \"%s\", expected \"%s\"\n", hello,
			expected);
		return 1;
	}
	snprintf(reply, sizeof(reply), "reply from pid %ld", (long)getpid());
	put_string((volatile char *)buf->addr + REPLY_OFFSET, MESSAGE_MAX, reply);
	return 0;
}

/* `--import TOKEN`: what the parent runs in its child. */
static int run_child(const char *token_text)
{
	struct smh_client *client;
	struct smh_buffer buf;
	char *end;
	uint64_t token;
	int err, status;

	errno = 0;
	token = strtoull(token_text, &end, 0);
	if (errno || end == token_text || *end) {
		fprintf(stderr, "smh-example: error: --import %s: not a token\n", token_text);
		return 2;
	}
	if ((status = connect_to_smhd(&client)) != 0)
		return status;
	if ((err = smh_import(client, token, &buf)) < 0) {
		status = fail(client, "child: could not import the token", err);
		goto err_client;
	}
	if ((err = smh_map(&buf)) < 0)
		status = fail(NULL, "child: could not map the imported buffer", err);
	else if (buf.size < REPLY_OFFSET + MESSAGE_MAX)
		status = fail(NULL, "child: the imported buffer is too small", -EINVAL);
	else
		status = child_check(&buf);
	if ((err = smh_free(client, &buf)) < 0)
		status = fail(client, "child: could not release the imported buffer", err);
err_client:
	smh_disconnect(client);
	return status;
}

/* ---------------------------------------------------------------- the parent */

static int alloc_and_write(struct smh_client *client, enum smh_reg_attr attr,
			   struct smh_buffer *buf)
{
	char what[64], hello[MESSAGE_MAX];
	int err;

	snprintf(what, sizeof(what), "could not allocate %d bytes of %s memory", BUFFER_SIZE,
		 attr_names[attr]);
	if ((err = smh_alloc(client, attr, BUFFER_SIZE, 0, buf)) < 0)
		return fail(client, what, err);
	if ((err = smh_map(buf)) < 0) {
		smh_free(client, buf);
		return fail(NULL, "could not map the buffer", err);
	}
	snprintf(hello, sizeof(hello), "hello from pid %ld through %s memory", (long)getpid(),
		 attr_names[attr]);
	put_string(buf->addr, MESSAGE_MAX, hello);
	printf("%-13s  %" PRIu64 " bytes in region %s at phys 0x%" PRIx64 ", handle %" PRIu64
	       ", fd offset 0x%" PRIx64 "\n",
	       attr_names[attr], buf->size, buf->region, buf->phys_addr, buf->handle, buf->offset);
	return 0;
}

/* Runs `/proc/self/exe --import TOKEN` and waits for it; sets *pidp. Returns 0 or 1. */
static int run_importer(uint64_t token, pid_t *pidp)
{
	char arg[32];
	int wstatus;
	pid_t pid;

	snprintf(arg, sizeof(arg), "0x%016" PRIx64, token);
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return fail(NULL, "could not fork", -errno);
	if (pid == 0) {
		execl("/proc/self/exe", "smh-example", "--import", arg, (char *)NULL);
		fprintf(stderr, "smh-example: error: could not run /proc/self/exe: %s\n",
			strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &wstatus, 0) < 0) {
		if (errno != EINTR)
			return fail(NULL, "could not wait for the child", -errno);
	}
	if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
		fprintf(stderr, "smh-example: error: the importing child failed (status 0x%x)\n",
			(unsigned)wstatus);
		return 1;
	}
	*pidp = pid;
	return 0;
}

/* Exports @buf, lets a child import it, and reads the child's reply. Returns 0 or 1. */
static int share(struct smh_client *client, struct smh_buffer *buf)
{
	char reply[MESSAGE_MAX], expected[MESSAGE_MAX];
	uint64_t token;
	pid_t child = 0;
	int err;

	if ((err = smh_export(client, buf, &token)) < 0)
		return fail(client, "could not export the non-cacheable buffer", err);
	printf("exported handle %" PRIu64 " as token 0x%016" PRIx64 "\n", buf->handle, token);
	if (run_importer(token, &child) != 0)
		return 1;
	get_string((const volatile char *)buf->addr + REPLY_OFFSET, reply, sizeof(reply));
	printf("parent read the child's reply: \"%s\"\n", reply);
	snprintf(expected, sizeof(expected), "reply from pid %ld", (long)child);
	if (strcmp(reply, expected) != 0) {
		fprintf(stderr, "smh-example: error: expected \"%s\" from the child\n", expected);
		return 1;
	}
	return 0;
}

/* The RTOS layer: its own process-wide connection, plain pointers. Sets *blockp. */
static int rtos_alloc(void **blockp)
{
	uint64_t phys;
	void *block;
	int err;

	if ((err = shared_multi_heap_pool_init()) < 0 && err != -EALREADY)
		return fail(NULL, "shared_multi_heap_pool_init", err);
	block = shared_multi_heap_alloc(SMH_REG_ATTR_CACHEABLE, 1024);
	if (!block)
		return fail(NULL, "shared_multi_heap_alloc of 1 KiB cacheable", -errno);
	if ((err = smh_get_phys(block, &phys)) < 0) {
		shared_multi_heap_free(block);
		return fail(NULL, "smh_get_phys", err);
	}
	put_string(block, 1024, "written through the RTOS-compatible layer");
	printf("RTOS layer     1024 bytes at %p, phys 0x%" PRIx64 "\n", block, phys);
	*blockp = block;
	return 0;
}

/* Blocks until stdin reaches its end (or is closed) or SIGTERM/SIGINT arrives. */
static int wait_for_release(void)
{
	sigset_t set;
	char sink[256];
	int sfd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0 || (sfd = signalfd(-1, &set, SFD_CLOEXEC)) < 0)
		return fail(NULL, "could not watch for SIGTERM", -errno);
	printf("holding the buffers; close stdin or send SIGTERM (pid %ld) to release them\n",
	       (long)getpid());
	fflush(stdout);
	for (;;) {
		struct pollfd fds[2] = { { .fd = STDIN_FILENO, .events = POLLIN },
					 { .fd = sfd, .events = POLLIN } };

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents || (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)))
			break;
		if ((fds[0].revents & POLLIN) && read(STDIN_FILENO, sink, sizeof(sink)) <= 0)
			break;
	}
	close(sfd);
	return 0;
}

static int run_parent(bool wait)
{
	struct smh_buffer bufs[2];
	struct smh_client *client;
	void *block = NULL;
	int status, err;

	if ((status = connect_to_smhd(&client)) != 0)
		return status;
	if ((status = alloc_and_write(client, SMH_REG_ATTR_CACHEABLE, &bufs[0])) != 0)
		goto err_client;
	if ((status = alloc_and_write(client, SMH_REG_ATTR_NON_CACHEABLE, &bufs[1])) != 0)
		goto err_cacheable;
	if ((status = share(client, &bufs[1])) != 0 || (status = rtos_alloc(&block)) != 0)
		goto err_non_cacheable;
	if (wait)
		status = wait_for_release();
	shared_multi_heap_free(block);
err_non_cacheable:
	if ((err = smh_free(client, &bufs[1])) < 0)
		status = fail(client, "could not free the non-cacheable buffer", err);
err_cacheable:
	if ((err = smh_free(client, &bufs[0])) < 0)
		status = fail(client, "could not free the cacheable buffer", err);
err_client:
	smh_disconnect(client);
	if (status == 0)
		printf("released everything; all checks passed\n");
	return status;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: smh-example [--socket PATH] [--wait]\n"
		"Allocates, maps, shares and frees smhd buffers, printing each step.\n"
		"  --socket PATH  smhd's socket (default: $SMH_SOCKET, else /run/smh/smhd.sock)\n"
		"  --wait         keep the buffers until stdin closes or SIGTERM arrives\n"
		"  --import TOKEN (internal) the child's part: import TOKEN, check, reply\n");
}

int main(int argc, char **argv)
{
	bool wait = false;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--wait") == 0) {
			wait = true;
		} else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			/* The child and the RTOS layer read it from there too. */
			setenv("SMH_SOCKET", argv[++i], 1);
		} else if (strcmp(argv[i], "--import") == 0 && i + 1 < argc) {
			return run_child(argv[i + 1]);
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	return run_parent(wait);
}
