#include "runtime/release.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/alloc.h"
#include "core/strutil.h"

#define COPY_CHUNK 32768

struct dd_rt_fetch {
	uv_work_t work;
	atomic_int cancelled;
	dd_rt_fetch_cb cb;
	void *ud;
	char *releases_dir;
	char *dest_dir;
	dd_rt_release rel;       /* strings borrowed from the copies below */
	char *strs[5];
	uint64_t max_bytes;
	dd_err_t result;
	char path[PATH_MAX];
	char why[320];
};

/* errno in words, safe on a worker thread. */
static const char *err_text(int e, char *buf, size_t len)
{
	/* Not strerror_r: its return type differs between glibc and musl. */
	snprintf(buf, len, "%s", dd_strerrno(e));
	return buf;
}

/*
 * Kernels before 5.6 (and valgrind) lack openat2: resolve the path and
 * check that it stays under the directory. The names cannot climb
 * (proto.c), so only a symlink could lead out, and whoever can plant one
 * can replace the asset anyway, which the digest check is for.
 */
static int open_resolved(const char *dir, const char *rel)
{
	char real_dir[PATH_MAX], path[PATH_MAX], real[PATH_MAX];
	size_t n;
	int len;

	len = snprintf(path, sizeof path, "%s/%s", dir, rel);
	if (len < 0 || (size_t)len >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (realpath(dir, real_dir) == NULL || realpath(path, real) == NULL)
		return -1;
	n = strlen(real_dir);
	if (strncmp(real, real_dir, n) != 0 || real[n] != '/') {
		errno = EXDEV;
		return -1;
	}
	return open(real, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
}

/* The asset, beneath dir only: symlinks may not leave it. */
static int open_beneath(const char *dir, int dirfd, const char *rel)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof how);
	how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
	if (fd < 0 && errno == ENOSYS)
		return open_resolved(dir, rel);
	return (int)fd;
}

/* Copies src to dst while hashing; CANCELLED, TOO_LARGE or IO (*err). */
static dd_err_t copy_hash(int src, int dst, uint64_t max_bytes,
			  const atomic_int *cancel, uint8_t digest[32],
			  int *err)
{
	uint8_t buf[COPY_CHUNK];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint64_t total = 0;
	unsigned int dlen = 32;
	ssize_t n, w, off;
	dd_err_t rc = DD_ERR_IO;

	*err = EIO;
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	for (;;) {
		if (cancel != NULL && atomic_load(cancel)) {
			rc = DD_ERR_CANCELLED;
			goto out;
		}
		n = read(src, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*err = errno;
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (total > max_bytes) {
			rc = DD_ERR_TOO_LARGE;
			goto out;
		}
		if (EVP_DigestUpdate(md, buf, (size_t)n) != 1)
			goto out;
		for (off = 0; off < n; off += w) {
			w = write(dst, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR) {
				w = 0;
			} else if (w <= 0) {
				*err = w < 0 ? errno : EIO;
				goto out;
			}
		}
	}
	if (EVP_DigestFinal_ex(md, digest, &dlen) == 1 && dlen == 32)
		rc = DD_OK;
out:
	EVP_MD_CTX_free(md);
	OPENSSL_cleanse(buf, sizeof buf);
	return rc;
}

/* Makes the verified copy the program: executable, final name, alias. */
static int publish(int dest, int *dst, const char *part,
		   const dd_rt_release *rel)
{
	int fd = *dst;

	*dst = -1;
	if (fchmod(fd, 0755) != 0) {
		close(fd);
		return errno;
	}
	if (close(fd) != 0)
		return errno;
	if (renameat(dest, part, dest, rel->asset) != 0)
		return errno;
	if (rel->rename != NULL && strcmp(rel->rename, rel->asset) != 0 &&
	    symlinkat(rel->asset, dest, rel->rename) != 0)
		return errno;
	return 0;
}

/* Why an asset could not be opened, in words. */
static const char *open_error(int e, char *buf, size_t len)
{
	if (e == ENOENT || e == ENOTDIR)
		return "not in the local releases";
	if (e == EXDEV || e == ELOOP)
		return "leads outside the releases directory";
	return err_text(e, buf, len);
}

dd_err_t dd_rt_release_install(const char *releases_dir, const char *dest_dir,
			       const dd_rt_release *rel, uint64_t max_bytes,
			       const atomic_int *cancel, char *path_out,
			       size_t path_len, char *why, size_t why_len)
{
	const char *tag = rel->tag != NULL ? rel->tag : "latest";
	const char *prog = rel->rename != NULL ? rel->rename : rel->asset;
	char relpath[PATH_MAX], part[NAME_MAX + 16];
	char want[65], got[65], ebuf[128];
	uint8_t digest[32];
	int dir = -1, src = -1, dst = -1, dest = -1, made = 0, n, e;
	struct stat st;
	dd_err_t rc;

	why[0] = '\0';
	path_out[0] = '\0';
	n = snprintf(relpath, sizeof relpath, "%s/%s/%s/%s", rel->owner,
		     rel->repo, tag, rel->asset);
	if (n < 0 || (size_t)n >= sizeof relpath)
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "github_release: names too long");
	snprintf(part, sizeof part, ".%s.partial", rel->asset);
	n = snprintf(path_out, path_len, "%s/%s", dest_dir, prog);
	if (n < 0 || (size_t)n >= path_len) {
		path_out[0] = '\0';
		return dd_why(why, why_len, DD_ERR_INVALID,
			      "github_release: path too long");
	}
	dir = open(releases_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) {
		e = errno;
		rc = dd_why(why, why_len, DD_ERR_IO, "github_release: releases "
			    "directory %s: %s", releases_dir,
			    err_text(e, ebuf, sizeof ebuf));
		goto out;
	}
	src = open_beneath(releases_dir, dir, relpath);
	if (src < 0) {
		e = errno;
		rc = dd_why(why, why_len,
			    e == ENOENT || e == ENOTDIR ? DD_ERR_NOT_FOUND
							: DD_ERR_FORBIDDEN,
			    "github_release: %s/%s@%s asset %s: %s", rel->owner,
			    rel->repo, tag, rel->asset,
			    open_error(e, ebuf, sizeof ebuf));
		goto out;
	}
	if (fstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = dd_why(why, why_len, DD_ERR_FORBIDDEN,
			    "github_release: asset %s is not a regular file",
			    rel->asset);
		goto out;
	}
	if ((uint64_t)st.st_size > max_bytes) {
		rc = dd_why(why, why_len, DD_ERR_TOO_LARGE, "github_release: "
			    "asset larger than %llu bytes",
			    (unsigned long long)max_bytes);
		goto out;
	}
	if (mkdir(dest_dir, 0700) != 0) {
		e = errno;
		rc = dd_why(why, why_len, DD_ERR_IO,
			    "github_release: making %s: "
			    "%s", dest_dir, err_text(e, ebuf, sizeof ebuf));
		goto out;
	}
	made = 1;
	dest = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dest >= 0)
		dst = openat(dest, part, O_WRONLY | O_CREAT | O_EXCL |
					 O_CLOEXEC | O_NOFOLLOW, 0700);
	if (dst < 0) {
		e = errno;
		rc = dd_why(why, why_len, DD_ERR_IO,
			    "github_release: installing: "
			    "%s", err_text(e, ebuf, sizeof ebuf));
		goto out;
	}
	rc = copy_hash(src, dst, max_bytes, cancel, digest, &e);
	if (rc) {
		rc = dd_why(why, why_len, rc, "github_release: copying %s: %s",
			    rel->asset, rc == DD_ERR_CANCELLED ? "cancelled"
					: rc == DD_ERR_TOO_LARGE ? "too large"
					: err_text(e, ebuf, sizeof ebuf));
		goto out;
	}
	if (rel->has_sha256 && CRYPTO_memcmp(digest, rel->sha256, 32) != 0) {
		dd_hex_encode(rel->sha256, 32, want);
		dd_hex_encode(digest, 32, got);
		rc = dd_why(why, why_len, DD_ERR_CRYPTO,
			    "github_release: sha256 "
			    "mismatch for %s: expected %s, got %s", rel->asset,
			    want, got);
		goto out;
	}
	e = publish(dest, &dst, part, rel);
	if (e) {
		rc = dd_why(why, why_len, DD_ERR_IO,
			    "github_release: installing: "
			    "%s", err_text(e, ebuf, sizeof ebuf));
		goto out;
	}
	made = 0; /* it stays: the deployment runs it */
	rc = DD_OK;
out:
	if (dst >= 0)
		close(dst);
	if (src >= 0)
		close(src);
	if (dir >= 0)
		close(dir);
	if (dest >= 0)
		close(dest);
	if (made)
		dd_rt_remove_dir(dest_dir);
	if (rc)
		path_out[0] = '\0';
	return rc;
}

/* ---- on the thread pool ------------------------------------------------ */

static void fetch_free(dd_rt_fetch *f)
{
	for (size_t i = 0; i < 5; i++)
		dd_free(f->strs[i]);
	dd_free(f->releases_dir);
	dd_free(f->dest_dir);
	dd_free(f);
}

static void fetch_work(uv_work_t *w)
{
	dd_rt_fetch *f = w->data;

	f->result = dd_rt_release_install(f->releases_dir, f->dest_dir, &f->rel,
					  f->max_bytes, &f->cancelled, f->path,
					  sizeof f->path, f->why,
					  sizeof f->why);
}

static void fetch_done(uv_work_t *w, int status)
{
	dd_rt_fetch *f = w->data;

	if (atomic_load(&f->cancelled)) {
		if (f->result == DD_OK)
			dd_rt_remove_dir(f->dest_dir);
	} else {
		if (status != 0 && f->result == DD_OK) {
			f->result = DD_ERR_CANCELLED;
			snprintf(f->why, sizeof f->why, "github_release: %s",
				 uv_strerror(status));
		}
		f->cb(f->result, f->result == DD_OK ? f->path : NULL, f->why,
		      f->ud);
	}
	fetch_free(f);
}

static char *dup_or_null(const char *s, int *bad)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = dd_strdup(s);
	if (d == NULL)
		*bad = 1;
	return d;
}

dd_err_t dd_rt_fetch_start(uv_loop_t *loop, const char *releases_dir,
			   const char *dest_dir, const dd_rt_release *rel,
			   uint64_t max_bytes, dd_rt_fetch_cb cb, void *ud,
			   dd_rt_fetch **out)
{
	dd_rt_fetch *f = dd_calloc(1, sizeof *f);
	int bad = 0;

	*out = NULL;
	if (f == NULL)
		return DD_ERR_NOMEM;
	atomic_init(&f->cancelled, 0);
	f->cb = cb;
	f->ud = ud;
	f->max_bytes = max_bytes;
	f->rel = *rel;
	f->releases_dir = dup_or_null(releases_dir, &bad);
	f->dest_dir = dup_or_null(dest_dir, &bad);
	f->rel.owner = f->strs[0] = dup_or_null(rel->owner, &bad);
	f->rel.repo = f->strs[1] = dup_or_null(rel->repo, &bad);
	f->rel.tag = f->strs[2] = dup_or_null(rel->tag, &bad);
	f->rel.asset = f->strs[3] = dup_or_null(rel->asset, &bad);
	f->rel.rename = f->strs[4] = dup_or_null(rel->rename, &bad);
	if (bad) {
		fetch_free(f);
		return DD_ERR_NOMEM;
	}
	f->work.data = f;
	if (uv_queue_work(loop, &f->work, fetch_work, fetch_done) != 0) {
		fetch_free(f);
		return DD_ERR_IO;
	}
	*out = f;
	return DD_OK;
}

void dd_rt_fetch_cancel(dd_rt_fetch *f)
{
	if (f != NULL)
		atomic_store(&f->cancelled, 1);
}

/* ---- cleanup ----------------------------------------------------------- */

/* Unlinks every entry of dirfd; directories too when depth allows. */
static void empty_dir(int dirfd, int depth)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;
	struct stat st;
	int sub;

	if (d == NULL) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (!S_ISDIR(st.st_mode)) {
			(void)unlinkat(dirfd, de->d_name, 0);
			continue;
		}
		if (depth <= 0)
			continue;
		sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY |
						O_CLOEXEC | O_NOFOLLOW);
		if (sub >= 0)
			empty_dir(sub, depth - 1);
		(void)unlinkat(dirfd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d); /* closes dirfd */
}

void dd_rt_remove_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return;
	empty_dir(fd, 1);
	(void)rmdir(path);
}
