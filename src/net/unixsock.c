#include "net/unixsock.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* mkdir -p of the socket's directory; what we create is ours alone. */
static dd_err_t make_parents(const char *path, const char *name, char *why,
			     size_t why_len)
{
	char dir[PATH_MAX];
	size_t n = strlen(path);

	/* libuv would cut a longer path and listen somewhere else. */
	if (n >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(why, why_len, "%s is longer than a unix socket path "
			 "may be (%zu bytes)", name,
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return DD_ERR_CONFIG;
	}
	memcpy(dir, path, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (dir[i] != '/')
			continue;
		dir[i] = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			snprintf(why, why_len, "making %s (%s)", dir,
				 strerror(errno));
			return DD_ERR_IO;
		}
		dir[i] = '/';
	}
	return DD_OK;
}

/*
 * A socket file left by a process that died is removed (as EasyEnclave
 * does); one that still answers, or a file of another kind, is not ours
 * to take.
 */
static dd_err_t clear_stale(const char *path, char *why, size_t why_len)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd, live;

	if (lstat(path, &st) != 0) {
		if (errno == ENOENT)
			return DD_OK;
		snprintf(why, why_len, "looking at %s (%s)", path,
			 strerror(errno));
		return DD_ERR_IO;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, why_len, "%s exists and is not a socket", path);
		return DD_ERR_EXISTS;
	}
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, why_len, "socket (%s)", strerror(errno));
		return DD_ERR_IO;
	}
	live = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ||
	       errno == EAGAIN;
	close(fd);
	if (live) {
		snprintf(why, why_len, "another process is listening on %s",
			 path);
		return DD_ERR_EXISTS;
	}
	if (unlink(path) != 0 && errno != ENOENT) {
		snprintf(why, why_len, "removing stale %s (%s)", path,
			 strerror(errno));
		return DD_ERR_IO;
	}
	return DD_OK;
}

dd_err_t dd_unixsock_prepare(const char *path, const char *name, char *why,
			     size_t why_len)
{
	dd_err_t rc = make_parents(path, name, why, why_len);

	if (rc == DD_OK)
		rc = clear_stale(path, why, why_len);
	return rc;
}

dd_err_t dd_unixsock_peer_uid(uv_pipe_t *pipe, uid_t *uid)
{
	struct ucred cred;
	socklen_t len = sizeof cred;
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)pipe, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return DD_ERR_IO;
	*uid = cred.uid;
	return DD_OK;
}

/*
 * The socket is bound here, not by uv_pipe_bind: libuv remembers a path
 * it bound and unlinks it when the handle closes, whoever's file is
 * there by then (a newer server's, after a restart). An fd handed over
 * with uv_pipe_open carries no path, so only dd_unixsock_unlink, which
 * checks the file is ours, ever removes it.
 */
static int bind_0600(const char *path, int *fd_out, struct stat *st)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, err = 0;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old = umask(0177);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
		err = -errno;
	umask(old);
	if (err) {
		close(fd);
		return err;
	}
	if (chmod(path, 0600) != 0 || stat(path, st) != 0) {
		err = -errno;
		(void)unlink(path);
		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}

dd_err_t dd_unixsock_listen(uv_pipe_t *l, const char *path, int backlog,
			    uv_connection_cb cb, dd_unixsock_id *id, char *why,
			    size_t why_len)
{
	struct stat st;
	int fd = -1, err;

	memset(id, 0, sizeof *id);
	err = bind_0600(path, &fd, &st);
	if (err == 0) {
		err = uv_pipe_open(l, fd);
		if (err)
			close(fd);
		else
			err = uv_listen((uv_stream_t *)l, backlog, cb);
		if (err)
			(void)unlink(path);
	}
	if (err) {
		snprintf(why, why_len, "listening on %s: %s", path,
			 uv_strerror(err));
		return DD_ERR_IO;
	}
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	id->made = 1;
	return DD_OK;
}

void dd_unixsock_unlink(const char *path, const dd_unixsock_id *id)
{
	struct stat st;

	if (id->made && stat(path, &st) == 0 && st.st_dev == id->dev &&
	    st.st_ino == id->ino)
		(void)unlink(path);
}
